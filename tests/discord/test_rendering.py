"""The pure rendering: progress bars, ETAs, receipts, answers, status and the montage."""

import io

import pytest
from PIL import Image

from bot.discord import rendering
from bot.services.api import (
    AskResult,
    ForgetResult,
    JobSummary,
    JobUpdate,
    RecognitionHit,
    StatusReport,
    TeachReceipt,
    WorkerHealth,
)
from tests.discord.fake_services import photo_bytes


@pytest.mark.parametrize(
    ("fraction", "width", "bar"),
    [
        (0.0, 8, "░░░░░░░░"),
        (0.5, 8, "████░░░░"),
        (0.99, 8, "███████░"),
        (1.0, 8, "████████"),
        (1.7, 4, "████"),
        (-1.0, 4, "░░░░"),
        (float("nan"), 4, "░░░░"),
    ],
)
def test_progress_bar(fraction: float, width: int, bar: str) -> None:
    assert rendering.progress_bar(fraction, width) == bar


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "estimating…"),
        (-3, "estimating…"),
        (2, "any moment now"),
        (41, "about 45 s left"),
        (60, "about 1 min left"),
        (61, "about 2 min left"),
        (3599, "about 1 h left"),
        (3600, "about 1 h left"),
        (3900, "about 1 h 05 min left"),
    ],
)
def test_format_eta(seconds: float | None, text: str) -> None:
    assert rendering.format_eta(seconds) == text


def receipt(position: int, *, new: bool = True, skipped: list[str] | None = None) -> TeachReceipt:
    return TeachReceipt(
        subject_id="s1",
        job_id=7,
        display_name="Bo_the*dog",
        is_new_subject=new,
        photos_added=5 if new else 2,
        photos_skipped=skipped or [],
        queue_position=position,
        total_photos=5,
    )


def test_teach_receipt_escapes_names_and_says_the_queue_place() -> None:
    assert rendering.teach_receipt(receipt(2)) == r"Learning **Bo\_the\*dog** from 5 photos · queued #2"
    assert rendering.teach_receipt(receipt(0)).endswith("· training now")
    more = rendering.teach_receipt(receipt(1, new=False, skipped=["b.png is a duplicate."]))
    assert more.splitlines()[1:] == ["Added 2 new photos to what I already had.", "-# b.png is a duplicate."]


def update(kind: str, **fields: object) -> JobUpdate:
    return JobUpdate(event_id=1, job_id=7, owner_id=1, subject_id="s1", subject="Bo", kind=kind, **fields)  # type: ignore[arg-type]


def test_job_update_texts() -> None:
    running = rendering.job_update(
        update("progress", step=30, total_steps=120, loss=0.41234, eta_seconds=100), "Learning **Bo**"
    )
    assert running == "Learning **Bo**\n`████░░░░░░░░░░░░` 25% · step 30/120 · loss 0.412 · about 2 min left"
    assert rendering.job_update(update("started"), "Learning **Bo**") == "Learning **Bo**\nStarting…"
    assert "back in the queue" in rendering.job_update(update("requeued"))
    counts = {
        "heldout_positives": 4,
        "heldout_positives_recognised": 4,
        "heldout_negatives": 50,
        "heldout_negatives_rejected": 47,
    }
    done = rendering.job_update(update("succeeded", metrics=counts))
    assert done.startswith(
        "**Bo** is ready (job #7). Recognised 4/4 of your held-out photos, rejected 47/50 look-alikes."
    )
    summary = "recognised 3/3 of your held-out photos (trained in 40 s)"
    from_summary = rendering.job_update(update("succeeded", metrics={**counts, "summary": summary}))
    assert from_summary.startswith(
        "**Bo** is ready (job #7). Recognised 3/3 of your held-out photos (trained in 40 s)."
    )
    assert rendering.heldout_summary({}) is None
    assert rendering.job_update(update("failed", message="out of memory")) == (
        "Training **Bo** failed (job #7): out of memory"
    )
    assert rendering.job_update(update("cancelled")) == "Training **Bo** was cancelled (job #7)."
    assert [rendering.is_terminal(update(k)) for k in ("progress", "succeeded", "failed", "cancelled")] == [
        False,
        True,
        True,
        True,
    ]


def test_answers_and_recognition() -> None:
    assert rendering.answer(AskResult("Yes, Bo is here.", ["Bo"], True)) == "Yes, Bo is here."
    noted = rendering.answer(AskResult("Bo is brown.", ["Bo"], False, note="Bo is still training."))
    assert noted == "Bo is brown.\n-# Bo is still training."
    assert rendering.answer(AskResult("x" * 5000, [], False)).endswith("…")
    assert len(rendering.answer(AskResult("x" * 5000, [], False))) == rendering.MESSAGE_LIMIT_CHARS
    hits = [
        RecognitionHit("Mam", 0.7, True),
        RecognitionHit("Bo", 0.95, True),
        RecognitionHit("Rex", 0.2, False),
    ]
    assert rendering.recognition([("a.png", hits)]) == "In this image: Bo (95%), Mam (70%)"
    assert rendering.recognition([]) == "That message has no images I can look at."


def test_forget_texts() -> None:
    assert rendering.forget_prompt("all").startswith("Forget **all** your subjects?")
    result = ForgetResult(["Bo", "Mam"], photos_deleted=8, files_deleted=10, jobs_cancelled=1)
    assert rendering.forget_done(result) == (
        "Forgotten: **Bo**, **Mam**. Deleted 8 photos and cancelled 1 training; nothing of it is left."
    )


def test_status_shows_operators_more() -> None:
    job = JobSummary(3, "s1", "Bo", "running", 50, 100, 0.3, 30.0, 0, owner_id=42, attempts=2)
    queued = JobSummary(4, "s2", "Rex", "queued", 0, 0, None, None, 1, owner_id=43)
    report = StatusReport(
        jobs=[job, queued],
        queue_length=1,
        workers=[WorkerHealth("local", False, "toyworld", "cpu", restarts=2, detail="restarting")],
        negative_bank="No negative bank.",
    )
    user = rendering.status(report, is_operator=False)
    assert user.splitlines()[1].startswith("#3 **Bo** · running · `████████░░░░░░░░` 50%")
    assert "attempt 2" in user and "<@42>" not in user and "local" not in user
    operator = rendering.status(report, is_operator=True)
    assert "#4 **Rex** · queued · queued #1 · <@43>" in operator
    assert "`local` down · toyworld · cpu · 2 restarts · restarting" in operator
    assert operator.endswith("⚠️ No negative bank.")


def test_montage_size_and_bad_thumbnails() -> None:
    rows = [
        ("Bo", [photo_bytes((200, 0, 0), size=300, fmt="JPEG")] * 7),
        ("A very long subject name indeed", [photo_bytes((0, 0, 200), size=20), b"not an image"]),
    ]
    png = rendering.montage(rows, tile_px=64, max_columns=5)
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        assert image.size == (rendering.MONTAGE_LABEL_PX + 5 * (64 + 4) + 4, 2 * (64 + 4) + 4)
        first_tile = image.getpixel((rendering.MONTAGE_LABEL_PX + 4 + 32, 4 + 32))
        broken_tile = image.getpixel((rendering.MONTAGE_LABEL_PX + 4 + 68 + 32, 72 + 32))
    assert first_tile[0] > 150 and first_tile[2] < 50  # type: ignore[index]
    assert broken_tile == rendering.MONTAGE_PLACEHOLDER
    with pytest.raises(ValueError):
        rendering.montage([])
