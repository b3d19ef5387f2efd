"""Pure rendering: service results in, message text / embeds / montage bytes out.

Nothing here talks to Discord, the services or the disk; every function is deterministic and
unit-tested. Subject names come from users, so they are markdown-escaped before they reach a
message (mentions are disabled bot-wide by ``allowed_mentions``).
"""

import io
import math
from collections.abc import Sequence

import discord
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from bot.services.api import (
    AskResult,
    ForgetResult,
    JobSummary,
    JobUpdate,
    RecognitionHit,
    StatusReport,
    SubjectSummary,
    TeachReceipt,
)

MESSAGE_LIMIT_CHARS = 2000
EMBED_DESCRIPTION_LIMIT_CHARS = 4096
PROGRESS_BAR_WIDTH = 16
BAR_FILLED = "█"
BAR_EMPTY = "░"
EMBED_COLOUR = discord.Colour.blurple()

MONTAGE_TILE_PX = 96
MONTAGE_MAX_COLUMNS = 5
MONTAGE_LABEL_PX = 140
MONTAGE_GAP_PX = 4
MONTAGE_BACKGROUND = (43, 45, 49)  # Discord's dark theme, so the montage blends in
MONTAGE_PLACEHOLDER = (80, 82, 88)
MONTAGE_TEXT = (235, 235, 235)
MONTAGE_FILENAME = "subjects.png"

GENERIC_ERROR = "Something went wrong on my side; it has been logged. Please try again in a moment."


def name(text: str) -> str:
    """A user-given name, safe to put in bold inside a message."""
    return discord.utils.escape_markdown(text)


def clip(text: str, limit: int = MESSAGE_LIMIT_CHARS) -> str:
    """``text`` cut to ``limit`` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def percent(fraction: float) -> str:
    return f"{round(100 * fraction)}%"


# --------------------------------------------------------------------------- progress


def progress_bar(fraction: float, width: int = PROGRESS_BAR_WIDTH) -> str:
    """A text bar of ``width`` cells: ``progress_bar(0.5, 8) == "████░░░░"``.

    ``fraction`` is clamped to 0..1; a bar is only full at 1.0 (0.99 never shows complete).
    """
    fraction = 0.0 if math.isnan(fraction) else min(max(fraction, 0.0), 1.0)
    filled = math.floor(fraction * width)
    if fraction >= 1.0:
        filled = width
    return BAR_FILLED * filled + BAR_EMPTY * (width - filled)


def format_eta(seconds: float | None) -> str:
    """Time left, said the way a person would: ``"estimating…"``, ``"any moment now"``,
    ``"about 40 s left"``, ``"about 3 min left"``, ``"about 1 h 05 min left"`` (rounded up)."""
    if seconds is None or math.isnan(seconds) or seconds < 0:
        return "estimating…"
    if seconds < 5:
        return "any moment now"
    if seconds < 60:
        return f"about {math.ceil(seconds / 5) * 5} s left"
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return f"about {minutes} min left"
    hours, minutes = divmod(minutes, 60)
    return f"about {hours} h left" if minutes == 0 else f"about {hours} h {minutes:02d} min left"


def format_loss(loss: float | None) -> str | None:
    if loss is None or math.isnan(loss):
        return None
    return f"loss {loss:.3f}" if loss < 100 else f"loss {loss:.3g}"


def queue_phrase(position: int | None) -> str:
    """``0`` → training now; ``n`` → queued #n."""
    if position is None:
        return "finished"
    return "training now" if position == 0 else f"queued #{position}"


def teach_heading(receipt: TeachReceipt) -> str:
    """``"Learning Bo from 5 photos"``: the top line of a training message."""
    return f"Learning **{name(receipt.display_name)}** from {plural(receipt.total_photos, 'photo')}"


def teach_receipt(receipt: TeachReceipt) -> str:
    """The first answer to /teach: ``"Learning Bo from 5 photos · queued #2"``."""
    lines = [f"{teach_heading(receipt)} · {queue_phrase(receipt.queue_position)}"]
    if not receipt.is_new_subject:
        lines.append(f"Added {plural(receipt.photos_added, 'new photo')} to what I already had.")
    lines.extend(f"-# {name(skipped)}" for skipped in receipt.photos_skipped)
    return clip("\n".join(lines))


def progress_line(step: int, total_steps: int, loss: float | None, eta_seconds: float | None) -> str:
    """``"`████░░░░` 50% · step 60/120 · loss 0.412 · about 2 min left"``."""
    fraction = step / total_steps if total_steps > 0 else 0.0
    parts = [f"`{progress_bar(fraction)}` {percent(fraction)}", f"step {step}/{total_steps}"]
    loss_text = format_loss(loss)
    if loss_text:
        parts.append(loss_text)
    parts.append(format_eta(eta_seconds))
    return " · ".join(parts)


def _count(metrics: dict[str, object], part: str, whole: str) -> tuple[int, int] | None:
    got, out_of = metrics.get(part), metrics.get(whole)
    if isinstance(got, int | float) and isinstance(out_of, int | float) and out_of > 0:
        return int(got), int(out_of)
    return None


def heldout_summary(metrics: dict[str, object]) -> str | None:
    """The held-out figures of a training in words: the trainer's own ``summary`` sentence, else
    "recognised 4/4 of your held-out photos, rejected 47/50 look-alikes" from the counts
    (``heldout_positives_recognised``/``heldout_positives``, ``heldout_negatives_rejected``/
    ``heldout_negatives``); None when there are no figures."""
    summary = metrics.get("summary")
    if isinstance(summary, str) and summary.strip():
        return summary.strip()
    positives = _count(metrics, "heldout_positives_recognised", "heldout_positives")
    negatives = _count(metrics, "heldout_negatives_rejected", "heldout_negatives")
    parts = []
    if positives:
        parts.append(f"recognised {positives[0]}/{positives[1]} of your held-out photos")
    if negatives:
        parts.append(f"rejected {negatives[0]}/{negatives[1]} look-alikes")
    return ", ".join(parts) if parts else None


def job_update(update: JobUpdate, header: str | None = None) -> str:
    """The text of a training message after ``update``. ``header`` is the receipt line it
    started with (kept on top while the job runs)."""
    subject = f"**{name(update.subject)}**"
    if update.kind in ("started", "progress"):
        top = header or f"Learning {subject}"
        if update.total_steps <= 0:
            return clip(f"{top}\nStarting…")
        return clip(
            f"{top}\n{progress_line(update.step, update.total_steps, update.loss, update.eta_seconds)}"
        )
    if update.kind == "requeued":
        return clip(
            f"{header or 'Learning ' + subject}\nThe trainer restarted; {subject} is back in the "
            "queue and will pick up again shortly."
        )
    if update.kind == "succeeded":
        detail = update.message or heldout_summary(update.metrics)
        text = f"{subject} is ready (job #{update.job_id})."
        if detail:
            text += f" {detail[0].upper()}{detail[1:]}"
            if not detail.endswith((".", "!")):
                text += "."
        return clip(text + f"\nAsk me about it with `/ask`, e.g. “Is {name(update.subject)} in this photo?”")
    if update.kind == "failed":
        reason = update.message or "the trainer stopped with an error"
        return clip(f"Training {subject} failed (job #{update.job_id}): {reason}")
    return clip(f"Training {subject} was cancelled (job #{update.job_id}).")


def is_terminal(update: JobUpdate) -> bool:
    return update.kind in ("succeeded", "failed", "cancelled")


# --------------------------------------------------------------------------- answers


def answer(result: AskResult) -> str:
    """The answer text, with the services' caveat (if any) below it in small print."""
    text = result.text.strip() or "I have no answer to that."
    if result.note:
        text += f"\n-# {result.note}"
    return clip(text)


def recognition(images: Sequence[tuple[str, Sequence[RecognitionHit]]]) -> str:
    """ "Who's in this?": one line per image, naming the subjects present (best first)."""
    if not images:
        return "That message has no images I can look at."
    lines = []
    for filename, hits in images:
        present = sorted((h for h in hits if h.present), key=lambda h: -h.probability)
        label = f"**{name(filename)}**" if len(images) > 1 else "In this image"
        if present:
            found = ", ".join(f"{name(h.subject)} ({percent(h.probability)})" for h in present)
            lines.append(f"{label}: {found}")
        else:
            lines.append(f"{label}: none of your subjects.")
    return clip("\n".join(lines))


# --------------------------------------------------------------------------- subjects


def subject_line(subject: SubjectSummary) -> str:
    status = subject.status
    if subject.job is not None and subject.job.status in ("queued", "running"):
        status += f" ({queue_phrase(subject.job.queue_position)})"
    parts = [f"**{name(subject.name)}** · {subject.kind} · {status} · {plural(subject.photo_count, 'photo')}"]
    figures = heldout_summary(subject.metrics)
    if figures:
        parts.append(f"-# {figures}")
    return "\n".join(parts)


def subjects_embed(subjects: Sequence[SubjectSummary], *, has_montage: bool) -> discord.Embed:
    """The /subjects embed; with ``has_montage`` it shows ``attachment://subjects.png``."""
    embed = discord.Embed(title="Your subjects", colour=EMBED_COLOUR)
    if not subjects:
        embed.description = "You haven't taught me anyone yet. Try `/teach` with a few photos."
        return embed
    embed.description = clip("\n".join(subject_line(s) for s in subjects), EMBED_DESCRIPTION_LIMIT_CHARS)
    if has_montage:
        embed.set_image(url=f"attachment://{MONTAGE_FILENAME}")
    return embed


def _tile(data: bytes, side_px: int) -> Image.Image:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", (side_px, side_px))  # JPEG: decode at reduced scale
            return ImageOps.fit(image.convert("RGB"), (side_px, side_px))
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return Image.new("RGB", (side_px, side_px), MONTAGE_PLACEHOLDER)


def montage(
    rows: Sequence[tuple[str, Sequence[bytes]]],
    *,
    tile_px: int = MONTAGE_TILE_PX,
    max_columns: int = MONTAGE_MAX_COLUMNS,
) -> bytes:
    """A PNG grid: one row per subject, its label then up to ``max_columns`` square thumbnails.

    Image size: width ``LABEL + columns·(tile+gap) + gap``, height ``rows·(tile+gap) + gap``
    where ``columns`` is the widest row (at least 1). Undecodable thumbnails become grey tiles.
    CPU-bound: call it via ``asyncio.to_thread``.
    """
    if not rows:
        raise ValueError("montage needs at least one row")
    columns = max(1, min(max_columns, max(len(thumbs) for _, thumbs in rows)))
    width = MONTAGE_LABEL_PX + columns * (tile_px + MONTAGE_GAP_PX) + MONTAGE_GAP_PX
    height = len(rows) * (tile_px + MONTAGE_GAP_PX) + MONTAGE_GAP_PX
    sheet = Image.new("RGB", (width, height), MONTAGE_BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=14)
    for row, (label, thumbs) in enumerate(rows):
        top = MONTAGE_GAP_PX + row * (tile_px + MONTAGE_GAP_PX)
        text = label if len(label) <= 16 else label[:15] + "…"
        draw.text((MONTAGE_GAP_PX * 2, top + tile_px // 2), text, fill=MONTAGE_TEXT, font=font, anchor="lm")
        for column, data in enumerate(thumbs[:columns]):
            left = MONTAGE_LABEL_PX + MONTAGE_GAP_PX + column * (tile_px + MONTAGE_GAP_PX)
            sheet.paste(_tile(data, tile_px), (left, top))
    out = io.BytesIO()
    sheet.save(out, format="PNG", optimize=True)
    return out.getvalue()


# --------------------------------------------------------------------------- forget


def forget_prompt(target: str) -> str:
    if target == "all":
        return (
            "Forget **all** your subjects? Their photos, learned tokens and training history "
            "will be deleted for good."
        )
    return (
        f"Forget **{name(target)}**? Its photos, learned tokens and training history will be "
        "deleted for good."
    )


def forget_done(result: ForgetResult) -> str:
    if not result.subjects:
        return "There was nothing to forget."
    names = ", ".join(f"**{name(s)}**" for s in result.subjects)
    text = f"Forgotten: {names}. Deleted {plural(result.photos_deleted, 'photo')}"
    if result.jobs_cancelled:
        text += f" and cancelled {plural(result.jobs_cancelled, 'training')}"
    return clip(text + "; nothing of it is left.")


# --------------------------------------------------------------------------- status


def job_line(job: JobSummary, *, show_owner: bool) -> str:
    text = f"#{job.job_id} **{name(job.subject)}** · {job.status}"
    if job.status == "queued":
        text += f" · {queue_phrase(job.queue_position)}"
    elif job.status == "running" and job.total_steps > 0:
        text += " · " + progress_line(job.step, job.total_steps, job.loss, job.eta_seconds)
    if job.attempts > 1:
        text += f" · attempt {job.attempts}"
    if job.error:
        text += f" · {name(job.error)}"
    if show_owner:
        text += f" · <@{job.owner_id}>"
    return text


def status(report: StatusReport, *, is_operator: bool) -> str:
    """/status: the user's jobs; an operator also sees every job's owner, the workers and the
    negative-bank warning."""
    lines = []
    if report.jobs:
        lines.append("**Training queue**" if is_operator else "**Your trainings**")
        lines.extend(job_line(job, show_owner=is_operator) for job in report.jobs)
    else:
        lines.append("Nothing is training for you right now." if not is_operator else "The queue is empty.")
    lines.append(f"{plural(report.queue_length, 'job')} waiting in the queue overall.")
    if is_operator:
        lines.append("**Workers**")
        if not report.workers:
            lines.append("No worker has reported in.")
        for worker in report.workers:
            health = "up" if worker.alive else "down"
            facts = [f"`{worker.name}` {health}"]
            facts += [value for value in (worker.model, worker.device) if value]
            if worker.current_job_id is not None:
                facts.append(f"training #{worker.current_job_id}")
            if worker.restarts:
                facts.append(f"{plural(worker.restarts, 'restart')}")
            if worker.detail:
                facts.append(worker.detail)
            lines.append(" · ".join(facts))
        if report.negative_bank:
            lines.append(f"⚠️ {report.negative_bank}")
    return clip("\n".join(lines))
