"""validate_photo: by content, with limits checked before decoding, and metadata stripped."""

import hashlib
import io
import random
import struct
import time
import zlib

import pytest
from PIL import Image, ImageCms, ImageFile

from bot.services.photos import PhotoLimits, PhotoRejected, ValidatedPhoto, validate_photo

LIMITS = PhotoLimits()
RED, BLUE = (255, 0, 0), (0, 0, 255)


def _encode(image: Image.Image, format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format, **options)
    return buffer.getvalue()


def _photo(size: tuple[int, int] = (96, 64), colour: tuple[int, int, int] = RED) -> Image.Image:
    return Image.new("RGB", size, colour)


def _noise(size: tuple[int, int] = (256, 256)) -> Image.Image:
    return Image.frombytes("RGB", size, random.Random(0).randbytes(size[0] * size[1] * 3))


def _png_header_claiming(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR for ``width``×``height``, with a few rows of data."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (1 + 3 * width) * 4)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def _rejection(data: bytes, filename: str = "photo.jpg", limits: PhotoLimits = LIMITS) -> str:
    with pytest.raises(PhotoRejected) as caught:
        validate_photo(data, filename=filename, limits=limits)
    assert filename.rsplit("/", 1)[-1] in caught.value.reason
    return caught.value.reason


def test_a_jpeg_is_accepted_and_its_hash_is_of_the_clean_bytes() -> None:
    photo = validate_photo(_encode(_photo(), "JPEG"), filename="bo.jpg", limits=LIMITS)
    assert (photo.width, photo.height, photo.format, photo.source_format) == (96, 64, "JPEG", "JPEG")
    assert (photo.mime, photo.suffix) == ("image/jpeg", "jpg")
    assert photo.sha256 == hashlib.sha256(photo.data).hexdigest()
    again = validate_photo(_encode(_photo(), "JPEG"), filename="copy.jpg", limits=LIMITS)
    assert again.sha256 == photo.sha256


def test_empty_file_is_refused() -> None:
    assert "empty" in _rejection(b"", "blank.jpg")


def test_text_renamed_png_is_refused() -> None:
    reason = _rejection(b"definitely not a picture\n" * 20, "cat.png")
    assert "isn't a photo I can read" in reason and "JPEG, PNG, WebP, GIF or BMP" in reason


def test_an_image_with_a_photo_extension_but_other_content_is_judged_by_content() -> None:
    photo = validate_photo(_encode(_photo(), "PNG"), filename="looks.jpg", limits=LIMITS)
    assert photo.source_format == "PNG"


@pytest.mark.parametrize("format", ["JPEG", "PNG"])
def test_truncated_file_is_refused(format: str) -> None:
    data = _encode(_noise(), format)
    reason = _rejection(data[: len(data) // 2], f"cut.{format.lower()}")
    assert "damaged or cut short" in reason


def test_png_bomb_is_refused_from_its_header_without_decoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bomb = _png_header_claiming(20_000, 20_000)
    assert len(bomb) < 1_000_000

    def no_decoding(self: ImageFile.ImageFile) -> None:
        raise AssertionError("the bomb was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    started = time.perf_counter()
    assert "too many pixels" in _rejection(bomb, "bomb.png")
    # Even with our own cap lifted, Pillow's bomb guard still refuses it, and we say so.
    lifted = PhotoLimits(max_pixels=1_000_000_000, max_side=30_000)
    assert "too many pixels" in _rejection(bomb, "bomb.png", lifted)
    assert time.perf_counter() - started < 1.0


def test_pixel_and_side_caps_are_checked_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: pytest.fail("decoded"))
    assert "49 megapixels" in _rejection(_png_header_claiming(7_000, 7_000), "big.png")
    assert "at most 8192" in _rejection(_png_header_claiming(9_000, 100), "wide.png")


def test_too_many_bytes_is_refused() -> None:
    reason = _rejection(_encode(_noise(), "PNG"), "huge.png", PhotoLimits(max_bytes=1000))
    assert "can be at most" in reason


def test_tiny_image_is_refused() -> None:
    assert "at least 32" in _rejection(_encode(_photo((16, 16)), "PNG"), "icon.png")


def test_heic_is_refused_with_advice() -> None:
    fake_heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 200
    reason = _rejection(fake_heic, "IMG_0001.HEIC")
    assert "HEIC" in reason and "Most Compatible" in reason


def test_avif_and_tiff_are_refused_as_unsupported() -> None:
    fake_avif = b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf" + b"\x00" * 200
    assert "AVIF" in _rejection(fake_avif, "photo.avif")
    assert "isn't a photo I can read" in _rejection(_encode(_photo(), "TIFF"), "scan.tiff")


def test_animated_gif_gives_its_first_frame() -> None:
    frames = [_photo(colour=RED), _photo(colour=BLUE)]
    gif = _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    photo = validate_photo(gif, filename="dance.gif", limits=LIMITS)
    assert (photo.source_format, photo.format) == ("GIF", "PNG")
    assert _decode(photo).getpixel((10, 10)) == RED


@pytest.mark.parametrize("format", ["WEBP", "BMP"])
def test_webp_and_bmp_are_accepted_as_png(format: str) -> None:
    photo = validate_photo(_encode(_photo(), format), filename="x", limits=LIMITS)
    assert (photo.source_format, photo.format, photo.mime) == (format, "PNG", "image/png")
    assert (photo.width, photo.height) == (96, 64)


def test_transparency_is_flattened_onto_white() -> None:
    image = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    photo = validate_photo(_encode(image, "PNG"), filename="cutout.png", limits=LIMITS)
    assert _decode(photo).getpixel((5, 5)) == (255, 255, 255)


def test_exif_orientation_is_applied_and_all_metadata_removed() -> None:
    # Stored landscape, left half red; orientation 6 says "turn 90° clockwise to view".
    image = Image.new("RGB", (64, 32), BLUE)
    image.paste(RED, (0, 0, 32, 32))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation
    exif[0x010F] = "SecretCam"  # Make
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = _encode(image, "JPEG", exif=exif, icc_profile=icc, quality=95)

    photo = validate_photo(data, filename="rotated.jpg", limits=LIMITS)

    clean = _decode(photo)
    assert (photo.width, photo.height) == clean.size == (32, 64)
    assert _close(clean.getpixel((16, 8)), RED) and _close(clean.getpixel((16, 56)), BLUE)
    assert len(clean.getexif()) == 0
    assert not {"exif", "icc_profile"} & set(clean.info)
    assert b"SecretCam" not in photo.data


def test_file_names_are_made_printable_in_reasons() -> None:
    with pytest.raises(PhotoRejected) as caught:
        validate_photo(b"", filename='../../evil\n"name.png', limits=LIMITS)
    assert caught.value.reason == '"evilname.png" is empty (0 bytes).'


def test_limits_name_the_bad_field() -> None:
    with pytest.raises(ValueError, match=r"PhotoLimits\.min_side"):
        PhotoLimits(min_side=0)
    with pytest.raises(ValueError, match=r"PhotoLimits\.allowed_formats"):
        PhotoLimits(allowed_formats=("TIFF",))


def _decode(photo: ValidatedPhoto) -> Image.Image:
    image = Image.open(io.BytesIO(photo.data))
    assert image.format == photo.format
    return image


def _close(pixel: object, expected: tuple[int, int, int], tolerance: int = 24) -> bool:
    assert isinstance(pixel, tuple)
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=True))
