"""Photo validation: turn untrusted upload bytes into a clean, upright RGB image, or refuse.

The format is decided by content (Pillow's sniffing, restricted to the allowed decoders), never
by the file name. Size limits are checked on the compressed bytes first, then on the dimensions
read from the header *before* any pixel is decoded, so a decompression bomb (a tiny PNG claiming
20000×20000) is refused without allocating it. The accepted image has its EXIF orientation
applied and is re-encoded without any metadata (no EXIF, GPS, ICC or text chunks): JPEG for JPEG
sources (a photo stays a photo-sized file), PNG for the rest. Its SHA-256 is that of the clean
bytes, which is what the file store and the database deduplicate on.

No discord here: callers pass bytes and a name. CPU-bound: call it via ``asyncio.to_thread``.
"""

import hashlib
import io
import os
import struct
import unicodedata
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

# Pillow's format ids we accept, and how to name them to a user.
SUPPORTED_FORMATS: dict[str, str] = {
    "JPEG": "JPEG",
    "PNG": "PNG",
    "WEBP": "WebP",
    "GIF": "GIF",
    "BMP": "BMP",
}
_JPEG_FAMILY = frozenset({"JPEG", "MPO"})  # MPO: multi-picture JPEGs from many cameras
# ISO-BMFF brands of HEIF-family files (iPhone photos are HEIC): sniffed to explain the refusal.
_HEIC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
MEBIBYTE = 1024 * 1024


@dataclass(frozen=True)
class PhotoLimits:
    """What a photo may be. Errors name the bad field."""

    max_bytes: int = 10 * MEBIBYTE
    max_pixels: int = 40_000_000
    max_side: int = 8192
    min_side: int = 32
    allowed_formats: tuple[str, ...] = tuple(SUPPORTED_FORMATS)
    jpeg_quality: int = 95

    def __post_init__(self) -> None:
        for field in ("max_bytes", "max_pixels", "max_side", "min_side"):
            if getattr(self, field) < 1:
                raise ValueError(f"PhotoLimits.{field} must be at least 1, got {getattr(self, field)}")
        if self.min_side > self.max_side:
            raise ValueError(f"PhotoLimits.min_side ({self.min_side}) exceeds max_side ({self.max_side})")
        unknown = set(self.allowed_formats) - set(SUPPORTED_FORMATS)
        if unknown or not self.allowed_formats:
            raise ValueError(
                f"PhotoLimits.allowed_formats must be a non-empty subset of "
                f"{sorted(SUPPORTED_FORMATS)}, got {list(self.allowed_formats)}"
            )
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"PhotoLimits.jpeg_quality must be 1-100, got {self.jpeg_quality}")


class PhotoRejected(Exception):
    """The upload is not an acceptable photo. ``reason`` is a sentence to show the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ValidatedPhoto:
    """A clean photo: ``data`` is ``format``-encoded RGB, upright, with no metadata."""

    data: bytes
    sha256: str
    width: int
    height: int
    format: str  # of ``data``: "JPEG" or "PNG"
    source_format: str  # what was uploaded, e.g. "WEBP"

    @property
    def mime(self) -> str:
        return "image/jpeg" if self.format == "JPEG" else "image/png"

    @property
    def suffix(self) -> str:
        return "jpg" if self.format == "JPEG" else "png"

    @property
    def size_bytes(self) -> int:
        return len(self.data)


def validate_photo(data: bytes, *, filename: str, limits: PhotoLimits) -> ValidatedPhoto:
    """Check ``data`` against ``limits`` and return the cleaned photo.

    ``filename`` is used only to word the refusal. Animated images give their first frame.

    Raises:
        PhotoRejected: empty, too many bytes, not an image or not an allowed format (HEIC and
            AVIF are named as such), damaged or truncated, too many pixels, a side too long or
            too short, or an unusual colour format.
    """
    name = _printable_name(filename)
    if not data:
        raise PhotoRejected(f'"{name}" is empty (0 bytes).')
    if len(data) > limits.max_bytes:
        raise PhotoRejected(
            f'"{name}" is {len(data) / MEBIBYTE:.3g} MB; a photo can be at most '
            f"{limits.max_bytes / MEBIBYTE:.3g} MB."
        )
    accepted = _format_list(limits.allowed_formats)
    heif_kind = _heif_family(data)
    if heif_kind is not None:
        raise PhotoRejected(
            f'"{name}" is a {heif_kind} image, which I can\'t read. Please send it as {accepted} '
            "(on an iPhone: Settings → Camera → Formats → Most Compatible)."
        )
    try:
        with Image.open(io.BytesIO(data), formats=list(limits.allowed_formats)) as image:
            _check_dimensions(name, image.size, limits)
            source_format = "JPEG" if image.format in _JPEG_FAMILY else str(image.format)
            image.seek(0)
            image.load()
            clean = _upright_rgb(image)
    except UnidentifiedImageError:
        raise PhotoRejected(f'"{name}" isn\'t a photo I can read. Please send {accepted}.') from None
    except Image.DecompressionBombError:
        raise PhotoRejected(
            f'"{name}" has far too many pixels; the limit is {limits.max_pixels / 1e6:.0f} megapixels.'
        ) from None
    except (OSError, SyntaxError, EOFError, ValueError, struct.error) as error:
        raise PhotoRejected(
            f'"{name}" looks damaged or cut short; please send the original file again.'
        ) from error
    except _UnsupportedMode as error:
        raise PhotoRejected(
            f'"{name}" uses a colour format I can\'t read ({error}); please send a regular JPEG or PNG.'
        ) from None
    encoded_format = "JPEG" if source_format == "JPEG" else "PNG"
    buffer = io.BytesIO()
    if encoded_format == "JPEG":
        clean.save(buffer, "JPEG", quality=limits.jpeg_quality)
    else:
        clean.save(buffer, "PNG")
    clean_bytes = buffer.getvalue()
    return ValidatedPhoto(
        data=clean_bytes,
        sha256=hashlib.sha256(clean_bytes).hexdigest(),
        width=clean.width,
        height=clean.height,
        format=encoded_format,
        source_format=source_format,
    )


class _UnsupportedMode(Exception):
    """The decoded pixels are in a mode that does not convert to RGB."""


def _check_dimensions(name: str, size: tuple[int, int], limits: PhotoLimits) -> None:
    width, height = size
    if width * height > limits.max_pixels:
        raise PhotoRejected(
            f'"{name}" is {width}×{height} pixels ({width * height / 1e6:.0f} megapixels); '
            f"the limit is {limits.max_pixels / 1e6:.0f} megapixels."
        )
    if max(width, height) > limits.max_side:
        raise PhotoRejected(
            f'"{name}" is {width}×{height} pixels; each side can be at most {limits.max_side}.'
        )
    if min(width, height) < limits.min_side:
        raise PhotoRejected(
            f'"{name}" is only {width}×{height} pixels; each side must be at least {limits.min_side}.'
        )


def _upright_rgb(image: Image.Image) -> Image.Image:
    """Orientation applied, alpha flattened onto white, RGB, and no metadata left in ``info``."""
    upright = ImageOps.exif_transpose(image) or image
    has_alpha = upright.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        upright.mode == "P" and "transparency" in upright.info
    )
    try:
        if has_alpha:
            rgba = upright.convert("RGBA")
            clean = Image.new("RGB", rgba.size, (255, 255, 255))
            clean.paste(rgba, mask=rgba.getchannel("A"))
        else:
            clean = upright.convert("RGB")
    except ValueError as error:
        raise _UnsupportedMode(upright.mode) from error
    clean.info = {}  # convert() copies info (EXIF, ICC, text); save() would write some back
    return clean


def _heif_family(data: bytes) -> str | None:
    """ "HEIC" or "AVIF" if ``data`` starts with an ISO-BMFF ``ftyp`` box of that family."""
    if len(data) < 12 or data[4:8] != b"ftyp":
        return None
    box_size = int.from_bytes(data[:4], "big")
    brands = {data[8:12]}
    brands.update(data[i : i + 4] for i in range(16, min(box_size, len(data), 64) - 3, 4))
    if brands & _AVIF_BRANDS:
        return "AVIF"
    if brands & _HEIC_BRANDS:
        return "HEIC/HEIF"
    return None


def _format_list(formats: tuple[str, ...]) -> str:
    names = [SUPPORTED_FORMATS[f] for f in formats]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def _printable_name(filename: str) -> str:
    """The base name without control characters or quotes, at most 80 characters."""
    base = os.path.basename(filename.replace("\\", "/")) or "your file"
    visible = "".join(c for c in base if unicodedata.category(c)[0] != "C" and c not in '"`')
    return visible[:77] + "…" if len(visible) > 80 else visible or "your file"
