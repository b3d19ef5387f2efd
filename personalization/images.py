"""Reading images and making augmented views of them for training.

Images are decided by content, never by file name. Augmentation is deterministic for a seed.
"""

import io
import random
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from personalization.errors import ImageError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif"})


def load_image(source: Path | bytes, *, label: str | None = None) -> Image.Image:
    """Open ``source`` as an RGB image with EXIF orientation applied.

    Raises:
        ImageError: the file is missing, unreadable or not an image.
    """
    name = label or (str(source) if isinstance(source, Path) else "image")
    try:
        data = source.read_bytes() if isinstance(source, Path) else source
    except OSError as error:
        raise ImageError(f"{name}: cannot read file ({error.strerror or error})") from error
    if not data:
        raise ImageError(f"{name}: the file is empty")
    try:
        with Image.open(io.BytesIO(data)) as opened:
            opened.load()
            image = ImageOps.exif_transpose(opened).convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ImageError(f"{name}: not a readable image") from error
    return image


def list_images(directory: Path) -> list[Path]:
    """Image files directly in ``directory`` (by suffix), sorted for determinism."""
    if not directory.is_dir():
        raise ImageError(f"{directory}: not a directory")
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def augmented_views(image: Image.Image, *, count: int, seed: int) -> list[Image.Image]:
    """``count`` views of ``image``: the original, its mirror, then random crops (some mirrored).

    Crops keep 75–95% of each side, so the subject stays in view.
    """
    rng = random.Random(seed)
    views = [image]
    if count > 1:
        views.append(ImageOps.mirror(image))
    while len(views) < count:
        width, height = image.size
        scale = rng.uniform(0.75, 0.95)
        crop_w, crop_h = max(1, int(width * scale)), max(1, int(height * scale))
        left, top = rng.randint(0, width - crop_w), rng.randint(0, height - crop_h)
        view = image.crop((left, top, left + crop_w, top + crop_h))
        views.append(ImageOps.mirror(view) if rng.random() < 0.5 else view)
    return views[:count]


def zoomed_out(image: Image.Image, background: Image.Image, *, rng: random.Random) -> Image.Image:
    """``image`` shrunk to 45–70 % of each side and pasted at a random place on ``background``
    (resized to ``image``'s size), possibly mirrored: the subject smaller and among other things,
    as it often is in a photo someone asks about.

    Example:
        >>> photo, scene = Image.new("RGB", (96, 96), "red"), Image.new("RGB", (64, 64), "blue")
        >>> zoomed_out(photo, scene, rng=random.Random(0)).size
        (96, 96)
    """
    width, height = image.size
    canvas = background.convert("RGB").resize((width, height))
    scale = rng.uniform(0.45, 0.7)
    small = image.resize((max(1, round(width * scale)), max(1, round(height * scale))))
    if rng.random() < 0.5:
        small = ImageOps.mirror(small)
    canvas.paste(small, (rng.randint(0, width - small.width), rng.randint(0, height - small.height)))
    return canvas
