"""Reading user attachments during an interaction (their signed URLs expire later).

Sizes and declared types are checked *before* downloading, so an oversized upload or a PDF is
refused in one sentence without fetching it; the services then validate the bytes by content.
Refusals are the services' own :class:`InvalidPhoto`, so the user sees one consistent style.
"""

import asyncio
import mimetypes
from collections.abc import Sequence

import aiohttp
import discord

from bot.services.api import InvalidPhoto, PhotoUpload

MEBIBYTE = 1024 * 1024
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".heic", ".heif", ".avif"})


def looks_like_image(attachment: discord.Attachment) -> bool:
    """Whether Discord's declared type (or, without one, the file name) says image."""
    content_type = attachment.content_type or mimetypes.guess_type(attachment.filename)[0] or ""
    if content_type:
        return content_type.startswith("image/")
    return any(attachment.filename.lower().endswith(ext) for ext in IMAGE_EXTENSIONS)


def _size(n_bytes: int) -> str:
    return f"{n_bytes / MEBIBYTE:.1f} MB" if n_bytes >= MEBIBYTE else f"{max(n_bytes // 1024, 1)} KB"


def refusal(attachment: discord.Attachment, max_bytes: int) -> str | None:
    """Why ``attachment`` cannot be used as a photo, or None when it may be downloaded."""
    if not looks_like_image(attachment):
        declared = attachment.content_type or "an unknown type"
        return f"{attachment.filename} is not an image ({declared})."
    if attachment.size > max_bytes:
        return f"{attachment.filename} is {_size(attachment.size)}; the most I take is {_size(max_bytes)}."
    return None


async def read_photos(attachments: Sequence[discord.Attachment], *, max_bytes: int) -> list[PhotoUpload]:
    """Check every attachment, then download them all concurrently.

    Raises:
        InvalidPhoto: listing every refused attachment (nothing is downloaded then), or the ones
            whose download failed.
    """
    reasons = [reason for a in attachments if (reason := refusal(a, max_bytes)) is not None]
    if reasons:
        raise InvalidPhoto(reasons)
    results = await asyncio.gather(*(a.read() for a in attachments), return_exceptions=True)
    uploads, failed = [], []
    for attachment, result in zip(attachments, results, strict=True):
        if isinstance(result, discord.HTTPException | aiohttp.ClientError | TimeoutError):
            failed.append(
                f"{attachment.filename} could not be downloaded from Discord; please attach it again."
            )
        elif isinstance(result, BaseException):
            raise result
        else:
            uploads.append(PhotoUpload(filename=attachment.filename, data=result))
    if failed:
        raise InvalidPhoto(failed)
    return uploads


def upload_limit(interaction: discord.Interaction, photo_max_bytes: int) -> int:
    """The largest photo to accept in ``interaction``: the services' cap, or Discord's upload
    limit for this interaction when that is lower."""
    return min(photo_max_bytes, interaction.filesize_limit)
