"""Shared fixtures: a tiny random LLaVA built offline once per session, and synthetic photos."""

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw
from sqlalchemy.engine import Engine as DatabaseEngine
from transformers.utils import logging as transformers_logging

from personalization.engine import Engine
from personalization.modeling import LoadedModel, TinyLlavaSpec, build_tiny_llava, load_model
from storage import FileStore, create_db_engine, upgrade

TINY_CORPUS = [
    "USER: Is the dog in this photo? ASSISTANT: Yes, the dog is in the photo.",
    "USER: Is the cat here? ASSISTANT: No, the cat is not here.",
    "USER: What color is the dog? ASSISTANT: The dog is red with a white spot.",
    "USER: What is the mug made of? ASSISTANT: It is blue and made of clay.",
]
# A larger initialisation than a real model's makes the tiny random network expressive enough
# for a subject's tokens to separate its photos from others within a few epochs.
TINY_SPEC = TinyLlavaSpec(initializer_range=0.15)
SUBJECT_COLOUR = (220, 40, 40)
OTHER_COLOURS = [
    (40, 200, 60),
    (40, 60, 220),
    (230, 220, 40),
    (200, 40, 200),
    (40, 200, 200),
    (140, 140, 140),
]


@pytest.fixture(scope="session", autouse=True)
def _quiet_transformers() -> None:
    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llava(tmp_path_factory.mktemp("tiny-llava"), corpus=TINY_CORPUS * 20, spec=TINY_SPEC)


@pytest.fixture(scope="session")
def tiny_loaded(tiny_model_dir: Path) -> LoadedModel:
    return load_model(str(tiny_model_dir), device="cpu", dtype=torch.float32)


@pytest.fixture(scope="session")
def tiny_engine(tiny_loaded: LoadedModel) -> Engine:
    return Engine(tiny_loaded)


def make_photo(colour: tuple[int, int, int], seed: int, size: int = 48) -> Image.Image:
    """A square of ``colour`` with a white mark, at a seeded place on a seeded dark background."""
    rng = random.Random(seed)
    shade = rng.randint(0, 60)
    image = Image.new("RGB", (size, size), (shade, shade, shade))
    draw = ImageDraw.Draw(image)
    left = rng.randint(0, size // 3)
    side = size // 2 + rng.randint(0, size // 8)
    draw.rectangle([left, left, left + side, left + side], fill=colour)
    draw.ellipse([left + 3, left + 3, left + 9, left + 9], fill=(255, 255, 255))
    return image


@pytest.fixture
def db(tmp_path: Path) -> Iterator[DatabaseEngine]:
    """A migrated SQLite database file."""
    engine = create_db_engine(f"sqlite:///{tmp_path / 'db' / 'yollava.sqlite'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def files(tmp_path: Path) -> FileStore:
    """A content-addressed file store under the test's temporary directory."""
    return FileStore(tmp_path / "data")


@pytest.fixture
def subject_photos() -> list[Image.Image]:
    return [make_photo(SUBJECT_COLOUR, seed) for seed in range(5)]


@pytest.fixture
def negative_bank(tmp_path: Path) -> Iterator[Path]:
    bank = tmp_path / "bank"
    bank.mkdir()
    for number in range(36):
        make_photo(OTHER_COLOURS[number % len(OTHER_COLOURS)], 100 + number).save(
            bank / f"neg{number:03d}.png"
        )
    yield bank
