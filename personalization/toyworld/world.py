"""A procedurally rendered world of creatures and objects, deterministic from a seed.

Every entity is one of :data:`KINDS` and carries *named* attributes (a colour from
:data:`COLOURS`, a pattern from :data:`PATTERNS`, an accessory from :data:`ACCESSORIES`) and
*fine* attributes that no subject description names: a shade of its colour (lighter or darker),
where its single white marking sits, and a shape variant of one body part (a dog's ears, a mug's
handle, ...). A :class:`Subject` is one entity with a name; its look-alikes share its kind and named
attributes and differ only in fine attributes, or differ in exactly one named attribute.

:func:`render_scene` draws one to three entities onto a background with random position, scale,
rotation, flip, lighting, noise and partial occlusion. All randomness comes from the
``random.Random`` the caller passes, so a seed fixes every pixel.

This module knows Pillow and numpy only; it knows nothing about models or questions.
"""

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

IMAGE_SIZE = 96
"""Side of a rendered scene in pixels (the toy model's vision tower sees exactly this)."""

SUPERSAMPLE = 2
"""Scenes are drawn at this multiple of the output size, then downsampled (anti-aliasing)."""

ENTITY_CANVAS = 128
"""Side in pixels of the canvas one entity is drawn on before it is scaled into a scene."""

KINDS: tuple[str, ...] = ("dog", "cat", "bird", "fish", "car", "mug")
ANIMAL_KINDS: frozenset[str] = frozenset({"dog", "cat", "bird", "fish"})

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (205, 40, 40),
    "orange": (240, 130, 25),
    "yellow": (235, 210, 40),
    "green": (50, 160, 60),
    "teal": (20, 160, 160),
    "blue": (45, 85, 215),
    "purple": (135, 60, 180),
    "pink": (245, 135, 185),
    "brown": (135, 85, 40),
    "gray": (130, 130, 135),
}
PATTERNS: tuple[str, ...] = ("plain", "striped", "spotted", "checkered")
ACCESSORIES: tuple[str, ...] = ("none", "hat", "scarf", "bow", "glasses")

SHADES: dict[str, float] = {"light": 0.32, "medium": 0.0, "dark": -0.32}
"""Fine attribute: how far the body colour is blended toward white (+) or black (-)."""

MARKINGS: tuple[str, ...] = ("head", "back", "rear", "belly")
"""Fine attribute: where the entity's one white marking sits."""

SHAPE_VARIANTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "dog": ("ears", ("pointed", "floppy", "round")),
    "cat": ("tail", ("long", "curled", "short")),
    "bird": ("head", ("crested", "smooth", "tufted")),
    "fish": ("tail", ("forked", "round", "pointed")),
    "car": ("roof", ("sloped", "boxy", "low")),
    "mug": ("handle", ("round", "square", "tiny")),
}
"""Fine attribute: for each kind, the body part whose shape varies and the variants' words."""

NAMED_ATTRIBUTES: tuple[str, ...] = ("colour", "pattern", "accessory")
FINE_ATTRIBUTES: tuple[str, ...] = ("shade", "marking", "variant")

_OUTLINE = (25, 25, 25)
_MARK = (250, 250, 250)
_ACCESSORY = (30, 30, 34)

Point = tuple[float, float]


@dataclass(frozen=True)
class EntitySpec:
    """What one entity looks like: named attributes, then fine ones.

    ``variant`` indexes ``SHAPE_VARIANTS[kind][1]``; ``shade`` is a key of :data:`SHADES`.
    """

    kind: str
    colour: str
    pattern: str
    accessory: str
    shade: str = "medium"
    marking: str = "back"
    variant: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind={self.kind!r} is not one of {KINDS}")
        if self.colour not in COLOURS:
            raise ValueError(f"colour={self.colour!r} is not one of {tuple(COLOURS)}")
        if self.pattern not in PATTERNS:
            raise ValueError(f"pattern={self.pattern!r} is not one of {PATTERNS}")
        if self.accessory not in ACCESSORIES:
            raise ValueError(f"accessory={self.accessory!r} is not one of {ACCESSORIES}")
        if self.shade not in SHADES:
            raise ValueError(f"shade={self.shade!r} is not one of {tuple(SHADES)}")
        if self.marking not in MARKINGS:
            raise ValueError(f"marking={self.marking!r} is not one of {MARKINGS}")
        if not 0 <= self.variant < len(SHAPE_VARIANTS[self.kind][1]):
            raise ValueError(f"variant={self.variant} is out of range for kind={self.kind!r}")

    @property
    def is_animal(self) -> bool:
        return self.kind in ANIMAL_KINDS

    @property
    def part(self) -> str:
        """The body part whose shape varies (``ears`` for a dog)."""
        return SHAPE_VARIANTS[self.kind][0]

    @property
    def variant_word(self) -> str:
        """The word for this entity's shape variant (``floppy`` for a floppy-eared dog)."""
        return SHAPE_VARIANTS[self.kind][1][self.variant]

    def named(self) -> dict[str, str]:
        """The named attributes, as written in ``subjects.json``."""
        return {
            "kind": self.kind,
            "colour": self.colour,
            "pattern": self.pattern,
            "accessory": self.accessory,
        }

    def fine(self) -> dict[str, str]:
        """The fine attributes, in words (recorded for analysis, never used in subject prompts)."""
        return {"shade": self.shade, "marking": self.marking, self.part: self.variant_word}

    def describe(self) -> str:
        """A short noun phrase from the named attributes: ``a red striped dog with a hat``."""
        pattern = "" if self.pattern == "plain" else f" {self.pattern}"
        accessory = "" if self.accessory == "none" else f" with {accessory_phrase(self.accessory)}"
        return f"{article(self.colour)} {self.colour}{pattern} {self.kind}{accessory}"


@dataclass(frozen=True)
class Subject:
    """A named entity whose named and fine attributes are fixed."""

    name: str
    spec: EntitySpec


@dataclass(frozen=True)
class Lookalike:
    """An entity that resembles a subject; ``differs`` names the attributes that differ."""

    spec: EntitySpec
    differs: tuple[str, ...]

    @property
    def fine_only(self) -> bool:
        return all(name in FINE_ATTRIBUTES for name in self.differs)


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def accessory_phrase(accessory: str) -> str:
    """``hat`` → ``a hat``; ``glasses`` → ``glasses``; ``none`` → ``nothing``."""
    if accessory == "none":
        return "nothing"
    if accessory == "glasses":
        return "glasses"
    return f"{article(accessory)} {accessory}"


def random_entity(rng: random.Random, *, kind: str | None = None) -> EntitySpec:
    """An entity with every attribute drawn uniformly (``kind`` fixed if given)."""
    chosen_kind = kind or rng.choice(KINDS)
    return EntitySpec(
        kind=chosen_kind,
        colour=rng.choice(tuple(COLOURS)),
        pattern=rng.choice(PATTERNS),
        accessory=rng.choice(ACCESSORIES),
        shade=rng.choice(tuple(SHADES)),
        marking=rng.choice(MARKINGS),
        variant=rng.randrange(len(SHAPE_VARIANTS[chosen_kind][1])),
    )


def make_subject(rng: random.Random, *, name: str = "subject", kind: str | None = None) -> Subject:
    """A subject with random named and fine attributes.

    Example:
        >>> make_subject(random.Random(0), name="bo").spec.kind in KINDS
        True
    """
    return Subject(name=name, spec=random_entity(rng, kind=kind))


def make_lookalikes(
    subject: Subject, rng: random.Random, n: int, *, fine_only_fraction: float = 0.6
) -> list[Lookalike]:
    """``n`` distinct look-alikes of ``subject``, none identical to it.

    About ``fine_only_fraction`` of them share the kind and every named attribute and differ in
    one or two fine attributes (shade, marking, shape variant); the rest keep every fine attribute
    and differ in exactly one named attribute (colour, pattern or accessory). ``differs`` records
    which attributes changed.
    """
    base = subject.spec
    found: dict[EntitySpec, Lookalike] = {}
    attempts = 0
    while len(found) < n:
        attempts += 1
        if attempts > 1000 * max(n, 1):
            raise ValueError(f"cannot find {n} distinct look-alikes of {subject.name!r}")
        if rng.random() < fine_only_fraction:
            changed = tuple(sorted(rng.sample(FINE_ATTRIBUTES, rng.choice((1, 1, 2)))))
        else:
            changed = (rng.choice(NAMED_ATTRIBUTES),)
        spec = base
        for attribute in changed:
            spec = _change(spec, attribute, rng)
        if spec != base and spec not in found:
            found[spec] = Lookalike(spec=spec, differs=changed)
    return list(found.values())


def _change(spec: EntitySpec, attribute: str, rng: random.Random) -> EntitySpec:
    """``spec`` with ``attribute`` set to a different random value."""
    choices: Sequence[object]
    if attribute == "colour":
        choices = tuple(COLOURS)
    elif attribute == "pattern":
        choices = PATTERNS
    elif attribute == "accessory":
        choices = ACCESSORIES
    elif attribute == "shade":
        choices = tuple(SHADES)
    elif attribute == "marking":
        choices = MARKINGS
    elif attribute == "variant":
        choices = range(len(SHAPE_VARIANTS[spec.kind][1]))
    else:
        raise ValueError(f"unknown attribute {attribute!r}")
    current = getattr(spec, attribute)
    change: dict[str, Any] = {attribute: rng.choice([c for c in choices if c != current])}
    return replace(spec, **change)


# --- drawing ---------------------------------------------------------------------------------


def _blend(colour: tuple[int, int, int], amount: float) -> tuple[int, int, int]:
    """Blend toward white (amount > 0) or black (amount < 0)."""
    target = 255 if amount > 0 else 0
    a = abs(amount)
    r, g, b = (round(c + (target - c) * a) for c in colour)
    return (r, g, b)


def body_colour(spec: EntitySpec) -> tuple[int, int, int]:
    return _blend(COLOURS[spec.colour], SHADES[spec.shade])


def luminance(colour: tuple[int, int, int]) -> float:
    """Perceived brightness, 0–255 (ITU-R BT.601 weights)."""
    r, g, b = colour
    return 0.299 * r + 0.587 * g + 0.114 * b


PATTERN_CONTRAST = 0.5
"""How far a pattern's colour is blended away from the body colour: toward black on a body
brighter than mid-grey, toward white on a darker one."""


def pattern_colour_for(body: tuple[int, int, int]) -> tuple[int, int, int]:
    """The colour a pattern is drawn in on ``body``.

    Darkening alone (the first world's rule) left a dark brown or blue body's pattern only ~30
    levels of brightness from the body, and the shipped model read the pattern of dark entities
    right 0.62 of the time (light ones 0.78); lightening a dark body's pattern instead keeps every
    pattern at least ~64 levels from its body.
    """
    amount = -PATTERN_CONTRAST if luminance(body) >= 128 else PATTERN_CONTRAST
    return _blend(body, amount)


@dataclass(frozen=True)
class _Shape:
    """A filled primitive in unit coordinates: ``ellipse`` or ``rect`` (box) or ``polygon``."""

    kind: str
    points: tuple[Point, ...]
    body: bool = True
    fill: tuple[int, int, int] | None = None
    width: float = 0.0


@dataclass(frozen=True)
class _Layout:
    shapes: tuple[_Shape, ...]
    eyes: tuple[Point, ...]
    head_top: Point
    neck: Point
    markings: dict[str, Point]


def _ellipse(cx: float, cy: float, rx: float, ry: float, **kw: object) -> _Shape:
    return _Shape("ellipse", ((cx - rx, cy - ry), (cx + rx, cy + ry)), **kw)  # type: ignore[arg-type]


def _rect(x0: float, y0: float, x1: float, y1: float, **kw: object) -> _Shape:
    return _Shape("rect", ((x0, y0), (x1, y1)), **kw)  # type: ignore[arg-type]


def _poly(*points: Point, **kw: object) -> _Shape:
    return _Shape("polygon", tuple(points), **kw)  # type: ignore[arg-type]


def _dog(variant: int) -> _Layout:
    legs = tuple(_rect(x, 0.58, x + 0.07, 0.86) for x in (0.22, 0.33, 0.55, 0.64))
    ears = (
        (
            _poly((0.68, 0.26), (0.72, 0.08), (0.78, 0.22)),
            _poly((0.80, 0.21), (0.87, 0.07), (0.90, 0.25)),
        ),
        (_ellipse(0.67, 0.36, 0.05, 0.12), _ellipse(0.90, 0.36, 0.05, 0.12)),
        (_ellipse(0.70, 0.20, 0.06, 0.06), _ellipse(0.87, 0.20, 0.06, 0.06)),
    )[variant]
    shapes = (
        _poly((0.20, 0.46), (0.05, 0.26), (0.09, 0.24), (0.24, 0.42)),
        *legs,
        _ellipse(0.44, 0.50, 0.28, 0.15),
        _ellipse(0.79, 0.33, 0.13, 0.13),
        _ellipse(0.91, 0.40, 0.07, 0.055),
        *ears,
        _ellipse(0.975, 0.38, 0.02, 0.02, body=False, fill=_OUTLINE),
    )
    return _Layout(
        shapes=shapes,
        eyes=((0.76, 0.30), (0.85, 0.30)),
        head_top=(0.79, 0.20),
        neck=(0.66, 0.44),
        markings={
            "head": (0.80, 0.40),
            "back": (0.45, 0.40),
            "rear": (0.24, 0.50),
            "belly": (0.48, 0.60),
        },
    )


def _cat(variant: int) -> _Layout:
    tail = (
        _poly((0.62, 0.85), (0.84, 0.70), (0.90, 0.36), (0.95, 0.38), (0.90, 0.74), (0.64, 0.90)),
        _ellipse(0.78, 0.80, 0.14, 0.07),
        _ellipse(0.72, 0.84, 0.07, 0.05),
    )[variant]
    shapes = (
        tail,
        _ellipse(0.50, 0.66, 0.22, 0.26),
        _poly((0.34, 0.28), (0.36, 0.06), (0.47, 0.20)),
        _poly((0.53, 0.20), (0.64, 0.06), (0.66, 0.28)),
        _ellipse(0.50, 0.30, 0.17, 0.15),
        _rect(0.38, 0.84, 0.46, 0.93),
        _rect(0.54, 0.84, 0.62, 0.93),
    )
    return _Layout(
        shapes=shapes,
        eyes=((0.44, 0.28), (0.56, 0.28)),
        head_top=(0.50, 0.14),
        neck=(0.50, 0.44),
        markings={
            "head": (0.50, 0.36),
            "back": (0.62, 0.58),
            "rear": (0.40, 0.80),
            "belly": (0.50, 0.66),
        },
    )


def _bird(variant: int) -> _Layout:
    head_part = (
        (
            _poly((0.62, 0.22), (0.60, 0.04), (0.67, 0.18)),
            _poly((0.67, 0.19), (0.70, 0.02), (0.73, 0.18)),
            _poly((0.73, 0.20), (0.80, 0.05), (0.79, 0.22)),
        ),
        (),
        (_ellipse(0.62, 0.20, 0.05, 0.06), _ellipse(0.80, 0.20, 0.05, 0.06)),
    )[variant]
    shapes = (
        _poly((0.30, 0.55), (0.06, 0.44), (0.06, 0.66)),
        _rect(0.42, 0.70, 0.45, 0.90, body=False, fill=_OUTLINE),
        _rect(0.55, 0.70, 0.58, 0.90, body=False, fill=_OUTLINE),
        _ellipse(0.48, 0.55, 0.24, 0.19),
        *head_part,
        _ellipse(0.71, 0.32, 0.13, 0.13),
        _poly((0.82, 0.28), (0.97, 0.34), (0.82, 0.38), body=False, fill=(245, 175, 20)),
        _poly((0.30, 0.48), (0.58, 0.50), (0.40, 0.66), body=False, fill=None, width=0.02),
    )
    return _Layout(
        shapes=shapes,
        eyes=((0.74, 0.29),),
        head_top=(0.71, 0.19),
        neck=(0.62, 0.42),
        markings={
            "head": (0.66, 0.36),
            "back": (0.44, 0.42),
            "rear": (0.30, 0.58),
            "belly": (0.52, 0.68),
        },
    )


def _fish(variant: int) -> _Layout:
    tail = (
        _poly((0.26, 0.50), (0.04, 0.26), (0.14, 0.50), (0.04, 0.74)),
        _ellipse(0.14, 0.50, 0.12, 0.18),
        _poly((0.26, 0.50), (0.02, 0.36), (0.02, 0.64)),
    )[variant]
    shapes = (
        tail,
        _poly((0.40, 0.32), (0.52, 0.14), (0.64, 0.32)),
        _ellipse(0.52, 0.50, 0.32, 0.20),
        _poly((0.46, 0.60), (0.40, 0.76), (0.56, 0.64)),
    )
    return _Layout(
        shapes=shapes,
        eyes=((0.72, 0.45),),
        head_top=(0.68, 0.30),
        neck=(0.64, 0.50),
        markings={
            "head": (0.74, 0.55),
            "back": (0.52, 0.38),
            "rear": (0.34, 0.50),
            "belly": (0.54, 0.62),
        },
    )


def _car(variant: int) -> _Layout:
    roof = (
        _poly((0.22, 0.48), (0.36, 0.26), (0.64, 0.26), (0.80, 0.48)),
        _rect(0.14, 0.20, 0.78, 0.48),
        _poly((0.30, 0.48), (0.42, 0.36), (0.62, 0.36), (0.72, 0.48)),
    )[variant]
    windows = (
        _poly((0.30, 0.46), (0.39, 0.31), (0.61, 0.31), (0.71, 0.46), body=False, fill=(190, 225, 245)),
        _rect(0.20, 0.26, 0.72, 0.42, body=False, fill=(190, 225, 245)),
        _poly((0.40, 0.46), (0.46, 0.40), (0.60, 0.40), (0.65, 0.46), body=False, fill=(190, 225, 245)),
    )[variant]
    shapes = (
        roof,
        windows,
        _rect(0.06, 0.46, 0.94, 0.72),
        _ellipse(0.28, 0.72, 0.10, 0.10, body=False, fill=(30, 30, 30)),
        _ellipse(0.72, 0.72, 0.10, 0.10, body=False, fill=(30, 30, 30)),
        _ellipse(0.90, 0.52, 0.03, 0.025, body=False, fill=(255, 240, 150)),
    )
    return _Layout(
        shapes=shapes,
        eyes=((0.50, 0.38), (0.58, 0.38)),
        head_top=(0.50, 0.24 if variant != 2 else 0.36),
        neck=(0.50, 0.50),
        markings={
            "head": (0.82, 0.56),
            "back": (0.50, 0.54),
            "rear": (0.14, 0.56),
            "belly": (0.50, 0.66),
        },
    )


def _mug(variant: int) -> _Layout:
    handle = (
        _ellipse(0.76, 0.54, 0.13, 0.16, body=True, width=0.055),
        _poly((0.70, 0.38), (0.90, 0.38), (0.90, 0.70), (0.70, 0.70), width=0.055),
        _ellipse(0.72, 0.50, 0.06, 0.07, body=True, width=0.04),
    )[variant]
    shapes = (
        handle,
        _rect(0.24, 0.28, 0.72, 0.86),
        _ellipse(0.48, 0.28, 0.24, 0.05, body=False, fill=(90, 55, 30)),
    )
    return _Layout(
        shapes=shapes,
        eyes=((0.40, 0.44), (0.56, 0.44)),
        head_top=(0.48, 0.24),
        neck=(0.48, 0.62),
        markings={
            "head": (0.48, 0.42),
            "back": (0.34, 0.58),
            "rear": (0.60, 0.74),
            "belly": (0.40, 0.78),
        },
    )


_LAYOUTS = {"dog": _dog, "cat": _cat, "bird": _bird, "fish": _fish, "car": _car, "mug": _mug}


def _px(point: Point) -> tuple[float, float]:
    return (point[0] * ENTITY_CANVAS, point[1] * ENTITY_CANVAS)


def _draw_shape(draw: ImageDraw.ImageDraw, shape: _Shape, fill: object, outline: object, width: int) -> None:
    points = [_px(p) for p in shape.points]
    if shape.width:
        ring = max(2, round(shape.width * ENTITY_CANVAS))
        if shape.kind == "ellipse":
            draw.ellipse(points, outline=fill, width=ring)  # type: ignore[arg-type]
        else:
            draw.line([*points, points[0]], fill=fill, width=ring, joint="curve")  # type: ignore[arg-type]
        return
    if shape.kind == "ellipse":
        draw.ellipse(points, fill=fill, outline=outline, width=width)  # type: ignore[arg-type]
    elif shape.kind == "rect":
        draw.rectangle(points, fill=fill, outline=outline, width=width)  # type: ignore[arg-type]
    else:
        draw.polygon(points, fill=fill, outline=outline, width=width)  # type: ignore[arg-type]


SPOT_RADIUS = 5
"""Radius of a spot on the entity canvas (4 at first: spots then covered ~2 px of an entity in a
three-entity scene, and the shipped model called 0.30 of spotted entities plain)."""


_PATTERN_STEP = ENTITY_CANVAS // 8


def _pattern_offset(spec: EntitySpec, rng: random.Random) -> int:
    """The pattern's random shift on the entity canvas (drawn only for a patterned entity)."""
    return 0 if spec.pattern == "plain" else rng.randrange(_PATTERN_STEP)


def _pattern_mask(pattern: str, offset: int) -> Image.Image:
    """A mask of where the pattern's colour (:func:`pattern_colour_for`) goes (white) on the entity canvas."""
    size = ENTITY_CANVAS
    mask = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask)
    step = _PATTERN_STEP
    if pattern == "striped":
        for x in range(-size, size * 2, step):
            draw.polygon(
                [
                    (x + offset, 0),
                    (x + offset + step // 2, 0),
                    (x + offset + step // 2 - 30, size),
                    (x + offset - 30, size),
                ],
                fill=255,
            )
    elif pattern == "spotted":
        for gy in range(0, size, step):
            for gx in range(0, size, step):
                cx = gx + (step // 2 if (gy // step) % 2 else 0) + offset // 3
                draw.ellipse(
                    [cx - SPOT_RADIUS, gy + 7 - SPOT_RADIUS, cx + SPOT_RADIUS, gy + 7 + SPOT_RADIUS], fill=255
                )
    elif pattern == "checkered":
        cell = size // 10
        for gy in range(0, size, cell):
            for gx in range(0, size, cell):
                if (gx // cell + gy // cell) % 2:
                    draw.rectangle([gx, gy, gx + cell - 1, gy + cell - 1], fill=255)
    return mask


ACCESSORY_SCALE = 1.6
"""How much larger than first drawn accessories are: at 1 a hat or bow on an entity of a
three-entity scene covered a few pixels of the 96-px image, and the vision tower read the
accessory on only ~0.67 of an entity's patches."""


def _draw_accessory(draw: ImageDraw.ImageDraw, spec: EntitySpec, layout: _Layout) -> None:
    u = ENTITY_CANVAS * ACCESSORY_SCALE
    line = round(2 * ACCESSORY_SCALE)
    if spec.accessory == "hat":
        x, y = _px(layout.head_top)
        draw.polygon(
            [(x - 0.10 * u, y + 0.02 * u), (x + 0.10 * u, y + 0.02 * u), (x, y - 0.20 * u)],
            fill=_ACCESSORY,
            outline=_OUTLINE,
        )
        draw.rectangle([x - 0.12 * u, y, x + 0.12 * u, y + 0.035 * u], fill=_ACCESSORY)
        draw.ellipse([x - 0.03 * u, y - 0.23 * u, x + 0.03 * u, y - 0.17 * u], fill=(240, 240, 240))
    elif spec.accessory == "scarf":
        x, y = _px(layout.neck)
        draw.rounded_rectangle(
            [x - 0.10 * u, y - 0.045 * u, x + 0.10 * u, y + 0.045 * u], radius=4, fill=_ACCESSORY
        )
        draw.rectangle([x - 0.02 * u, y, x + 0.03 * u, y + 0.16 * u], fill=_ACCESSORY)
        draw.line([(x - 0.09 * u, y), (x + 0.09 * u, y)], fill=(240, 240, 240), width=line)
    elif spec.accessory == "bow":
        x, y = _px(layout.head_top)
        y += 0.03 * u
        draw.polygon([(x, y), (x - 0.11 * u, y - 0.07 * u), (x - 0.11 * u, y + 0.07 * u)], fill=_ACCESSORY)
        draw.polygon([(x, y), (x + 0.11 * u, y - 0.07 * u), (x + 0.11 * u, y + 0.07 * u)], fill=_ACCESSORY)
        draw.ellipse([x - 0.03 * u, y - 0.03 * u, x + 0.03 * u, y + 0.03 * u], fill=(240, 240, 240))
    elif spec.accessory == "glasses":
        rims = (
            layout.eyes
            if len(layout.eyes) == 2
            else (layout.eyes[0], (layout.eyes[0][0] - 0.09, layout.eyes[0][1]))
        )
        centres = [_px(e) for e in rims]
        for cx, cy in centres:
            draw.ellipse(
                [cx - 0.05 * u, cy - 0.05 * u, cx + 0.05 * u, cy + 0.05 * u],
                outline=_ACCESSORY,
                width=round(3 * ACCESSORY_SCALE),
            )
        (ax, ay), (bx, by) = centres
        draw.line([(ax, ay), (bx, by)], fill=_ACCESSORY, width=line)


def render_entity(spec: EntitySpec, rng: random.Random) -> Image.Image:
    """One entity on a transparent ``ENTITY_CANVAS``² RGBA canvas, facing right, upright."""
    return _paint_entity(spec, _pattern_offset(spec, rng))


def _paint_entity(spec: EntitySpec, pattern_offset: int) -> Image.Image:
    layout = _LAYOUTS[spec.kind](spec.variant)
    size = ENTITY_CANVAS
    colour = body_colour(spec)
    pattern_colour = pattern_colour_for(colour)
    width = 2

    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    body_mask = Image.new("L", (size, size), 0)
    mask_draw = ImageDraw.Draw(body_mask)
    for shape in layout.shapes:
        fill = colour if shape.body else shape.fill
        _draw_shape(draw, shape, fill, _OUTLINE, width)
        if shape.body:
            _draw_shape(mask_draw, shape, 255, None, 0)
        else:
            _draw_shape(mask_draw, shape, 0, None, 0)

    if spec.pattern != "plain":
        pattern = ImageChops.multiply(_pattern_mask(spec.pattern, pattern_offset), body_mask)
        image.paste((*pattern_colour, 255), (0, 0), pattern)

    mx, my = _px(layout.markings[spec.marking])
    radius = 0.085 * size
    draw.ellipse([mx - radius, my - radius, mx + radius, my + radius], fill=_MARK, outline=_OUTLINE, width=1)

    for ex, ey in (_px(e) for e in layout.eyes):
        if spec.kind in ("car", "mug") and spec.accessory != "glasses":
            break
        draw.ellipse([ex - 3, ey - 3, ex + 3, ey + 3], fill=(15, 15, 15))
    if spec.kind == "cat":
        for dy in (-3, 3):
            draw.line(
                [(0.50 * size - 26, 0.36 * size + dy), (0.50 * size + 26, 0.36 * size - dy)],
                fill=_OUTLINE,
                width=1,
            )

    _draw_accessory(draw, spec, layout)
    return image


# --- scenes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _BackgroundPlan:
    style: str
    first: tuple[int, int, int]
    second: tuple[int, int, int]
    value: int = 0
    """The style's own draw: the horizon, the stripe or tile step, or the noise's seed."""


def _plan_background(rng: random.Random, size: int) -> _BackgroundPlan:
    def muted() -> tuple[int, int, int]:
        base = rng.randrange(120, 235)
        r, g, b = (max(0, min(255, base + rng.randrange(-45, 46))) for _ in range(3))
        return (r, g, b)

    style = rng.choice(("plain", "gradient", "ground", "stripes", "tiles", "noise"))
    first, second = muted(), muted()
    value = 0
    if style == "ground":
        value = rng.randrange(size // 3, 3 * size // 4)
    elif style == "stripes":
        value = rng.randrange(size // 12, size // 5)
    elif style == "tiles":
        value = rng.randrange(size // 10, size // 4)
    elif style == "noise":
        value = rng.getrandbits(32)
    return _BackgroundPlan(style, first, second, value)


def _paint_background(plan: _BackgroundPlan, size: int) -> Image.Image:
    style, first, second = plan.style, plan.first, plan.second
    image = Image.new("RGB", (size, size), first)
    draw = ImageDraw.Draw(image)
    if style == "gradient":
        for y in range(size):
            t = y / (size - 1)
            draw.line(
                [(0, y), (size, y)],
                fill=tuple(round(a + (b - a) * t) for a, b in zip(first, second, strict=True)),
            )
    elif style == "ground":
        horizon = plan.value
        draw.rectangle([0, horizon, size, size], fill=second)
    elif style == "stripes":
        step = plan.value
        for x in range(0, size, 2 * step):
            draw.rectangle([x, 0, x + step - 1, size], fill=second)
    elif style == "tiles":
        step = plan.value
        for y in range(0, size, step):
            draw.line([(0, y), (size, y)], fill=second, width=2)
        for x in range(0, size, step):
            draw.line([(x, 0), (x, size)], fill=second, width=2)
    elif style == "noise":
        grid = np.random.default_rng(plan.value).integers(0, 2, size=(8, 8), dtype=np.uint8) * 255
        blotches = Image.fromarray(grid, "L").resize((size, size), Image.Resampling.BICUBIC)
        image = Image.composite(Image.new("RGB", (size, size), second), image, blotches)
    return image


@dataclass(frozen=True)
class _OccluderPlan:
    rectangle: tuple[int, int, int, int]
    fill: tuple[int, int, int]


def _plan_occluder(rng: random.Random, box: tuple[int, int, int, int]) -> _OccluderPlan:
    """A neutral post or crate covering part (at most about a third) of ``box``."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    shade = rng.randrange(70, 200)
    fill = (shade, round(shade * 0.85), round(shade * 0.65))
    if rng.random() < 0.5:
        width = round(w * rng.uniform(0.12, 0.22))
        x = rng.choice((x0 + round(w * 0.02), x1 - width - round(w * 0.02)))
        rectangle = (x, y0 - h // 4, x + width, y1 + h // 4)
    else:
        height = round(h * rng.uniform(0.18, 0.30))
        rectangle = (x0 - w // 6, y1 - height, x1 + w // 6, y1 + h // 4)
    return _OccluderPlan(rectangle, fill)


def _paint_occluder(plan: _OccluderPlan, canvas: Image.Image, owners: Image.Image) -> None:
    """Draw ``plan`` on ``canvas`` and, as background (0), on the ``owners`` map."""
    ImageDraw.Draw(canvas).rectangle(list(plan.rectangle), fill=plan.fill, outline=_OUTLINE, width=2)
    ImageDraw.Draw(owners).rectangle(list(plan.rectangle), fill=0)


def _place(rng: random.Random, count: int, size: int) -> list[tuple[int, int, int]]:
    """``count`` (x, y, side) squares inside the canvas that overlap little."""
    low, high = {1: (0.55, 0.85), 2: (0.42, 0.56), 3: (0.36, 0.46)}[count]
    placed: list[tuple[int, int, int]] = []
    for _ in range(count):
        best: tuple[int, int, int] | None = None
        best_overlap = math.inf
        for _ in range(30):
            side = round(size * rng.uniform(low, high))
            x = rng.randrange(0, size - side + 1)
            y = rng.randrange(0, size - side + 1)
            overlap = sum(
                max(0, min(x + side, px + ps) - max(x, px)) * max(0, min(y + side, py + ps) - max(y, py))
                for px, py, ps in placed
            )
            if overlap < best_overlap:
                best, best_overlap = (x, y, side), overlap
            if overlap == 0:
                break
        assert best is not None
        placed.append(best)
    return placed


def render_scene(
    entities: Sequence[EntitySpec],
    rng: random.Random,
    size: int = IMAGE_SIZE,
    *,
    occlusion_probability: float = 0.2,
) -> Image.Image:
    """Render ``entities`` (one to three) in a random scene; returns an RGB ``size``² image.

    Example:
        >>> image = render_scene([EntitySpec("dog", "red", "striped", "hat")], random.Random(0))
        >>> image.size
        (96, 96)
    """
    return render_scene_with_owners(entities, rng, size, occlusion_probability=occlusion_probability)[0]


def render_scene_with_owners(
    entities: Sequence[EntitySpec],
    rng: random.Random,
    size: int = IMAGE_SIZE,
    *,
    occlusion_probability: float = 0.2,
) -> tuple[Image.Image, np.ndarray]:
    """:func:`render_scene`, also returning which entity each pixel shows.

    The second value is a ``size``×``size`` uint8 array: 0 for background (and occluders),
    ``i + 1`` where ``entities[i]`` is visible. It consumes ``rng`` exactly as
    :func:`render_scene` does, so both give the same image for the same state.
    """
    return paint_scene(plan_scene(entities, rng, size, occlusion_probability=occlusion_probability))


@dataclass(frozen=True)
class _SpritePlan:
    spec: EntitySpec
    square: tuple[int, int, int]
    """Where the sprite goes on the supersampled canvas: x, y and side."""
    pattern_offset: int
    flip: bool
    angle: float
    occluder: _OccluderPlan | None


@dataclass(frozen=True)
class ScenePlan:
    """Every random choice of one scene, drawn by :func:`plan_scene`; :func:`paint_scene` turns
    it into pixels without drawing anything more.

    Planning is cheap and must follow the random stream in order; painting is most of a scene's
    cost and can run anywhere (another process included: a plan pickles), so a stream of scenes
    can be planned in order and painted in parallel (:func:`paint_scenes`)."""

    size: int
    background: _BackgroundPlan
    sprites: tuple[_SpritePlan, ...]
    blur: float
    brightness: float
    tint: tuple[float, float, float]
    noise_seed: int
    noise_sigma: float


def plan_scene(
    entities: Sequence[EntitySpec],
    rng: random.Random,
    size: int = IMAGE_SIZE,
    *,
    occlusion_probability: float = 0.2,
) -> ScenePlan:
    """Draw every random choice of a scene of ``entities`` from ``rng``, in the order rendering
    has always drawn them (so a seed keeps its pixels)."""
    if not 1 <= len(entities) <= 3:
        raise ValueError(f"a scene holds one to three entities, got {len(entities)}")
    big = size * SUPERSAMPLE
    background = _plan_background(rng, big)
    sprites = []
    for spec, (x, y, side) in zip(entities, _place(rng, len(entities), big), strict=True):
        pattern_offset = _pattern_offset(spec, rng)
        flip = rng.random() < 0.5
        angle = rng.uniform(-15, 15)
        occluder = (
            _plan_occluder(rng, (x, y, x + side, y + side)) if rng.random() < occlusion_probability else None
        )
        sprites.append(_SpritePlan(spec, (x, y, side), pattern_offset, flip, angle, occluder))
    blur = rng.uniform(0.0, 0.6)
    brightness = rng.uniform(0.9, 1.1)
    tint = (rng.uniform(-8, 8), rng.uniform(-8, 8), rng.uniform(-8, 8))
    noise_seed = rng.getrandbits(32)
    noise_sigma = rng.uniform(0.0, 5.0)
    return ScenePlan(size, background, tuple(sprites), blur, brightness, tint, noise_seed, noise_sigma)


_SOLID = [255 if alpha >= 128 else 0 for alpha in range(256)]
"""Alpha to owner mask: a sprite's pixel belongs to its entity where it is at least half opaque."""


def paint_scene(plan: ScenePlan) -> tuple[Image.Image, np.ndarray]:
    """The image and owner map (see :func:`render_scene_with_owners`) of a planned scene."""
    size = plan.size
    big = size * SUPERSAMPLE
    canvas = _paint_background(plan.background, big)
    owners = Image.new("L", (big, big), 0)
    for index, sprite_plan in enumerate(plan.sprites, start=1):
        x, y, side = sprite_plan.square
        sprite = _paint_entity(sprite_plan.spec, sprite_plan.pattern_offset)
        if sprite_plan.flip:
            sprite = sprite.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        # Bilinear: half the cost of bicubic, and the LANCZOS resize below smooths the difference.
        sprite = sprite.rotate(sprite_plan.angle, resample=Image.Resampling.BILINEAR)
        sprite = sprite.resize((side, side), Image.Resampling.LANCZOS)
        canvas.paste(sprite, (x, y), sprite)
        solid = sprite.getchannel("A").point(_SOLID)
        owners.paste(index, (x, y, x + side, y + side), solid)
        if sprite_plan.occluder is not None:
            _paint_occluder(sprite_plan.occluder, canvas, owners)
    # Blurred after the downsampling, at half the radius: the same softness on a quarter of the
    # pixels (rendering is a large share of a pretraining step).
    image = canvas.resize((size, size), Image.Resampling.BOX)
    image = image.filter(ImageFilter.GaussianBlur(plan.blur / SUPERSAMPLE))
    owner_map = np.asarray(owners.resize((size, size), Image.Resampling.NEAREST), dtype=np.uint8)

    pixels = np.asarray(image, dtype=np.float32)
    tint = np.array(plan.tint, dtype=np.float32)
    noise = np.random.default_rng(plan.noise_seed).normal(0.0, plan.noise_sigma, pixels.shape)
    pixels = pixels * plan.brightness + tint + noise.astype(np.float32)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB"), owner_map.copy()


def patch_owners(owner_map: np.ndarray, patch_size: int, *, min_share: float = 0.2) -> np.ndarray:
    """Per image patch (row-major, as a ViT orders them), the entity it mostly shows: ``i + 1``
    for ``entities[i]`` when that entity covers at least ``min_share`` of the patch (the largest
    such entity wins), else 0 for background.

    Example:
        >>> patch_owners(np.ones((24, 24), dtype=np.uint8), 12).tolist()
        [1, 1, 1, 1]
    """
    rows, cols = owner_map.shape[0] // patch_size, owner_map.shape[1] // patch_size
    grid = owner_map[: rows * patch_size, : cols * patch_size].reshape(rows, patch_size, cols, patch_size)
    blocks = grid.transpose(0, 2, 1, 3).reshape(rows * cols, patch_size * patch_size)
    counts = np.stack([(blocks == value).sum(axis=1) for value in range(1, 4)], axis=1)
    best = counts.argmax(axis=1)
    share = counts.max(axis=1) / (patch_size * patch_size)
    return np.where(share >= min_share, best + 1, 0).astype(np.int64)
