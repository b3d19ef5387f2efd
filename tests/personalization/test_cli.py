"""The researcher's CLI, run as a real subprocess: teach then ask, and one clear line on bad input."""

import io
import subprocess
import sys
from pathlib import Path

import pytest

from personalization.cli_commands import ProgressBar
from personalization.trainer import TrainingProgress
from tests.conftest import SUBJECT_COLOUR, make_photo

# The console script installed beside this interpreter, as users run it.
CLI = [str(Path(sys.executable).with_name("yollava"))]


def yollava(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *map(str, args)], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture
def photos(tmp_path: Path) -> list[Path]:
    paths = []
    for seed in range(4):
        path = tmp_path / f"bo{seed}.png"
        make_photo(SUBJECT_COLOUR, seed).save(path)
        paths.append(path)
    return paths


def test_teach_then_ask_end_to_end(
    tiny_model_dir: Path, photos: list[Path], negative_bank: Path, tmp_path: Path
) -> None:
    out = tmp_path / "bo.safetensors"
    common = ["--model", tiny_model_dir, "--device", "cpu", "--dtype", "fp32", "--threads", "2"]
    taught = yollava(
        "teach",
        "Bo",
        *photos,
        "--kind",
        "dog",
        "--negatives",
        negative_bank,
        "--out",
        out,
        "--epochs",
        "3",
        "--lr",
        "1e-2",
        "--k",
        "4",
        "--no-text-qa",
        *common,
    )
    assert taught.returncode == 0, taught.stderr
    assert "Bo: recognised" in taught.stdout and "held-out" in taught.stdout
    assert "training" in taught.stderr, "a progress bar is shown while training"
    assert out.is_file()

    asked = yollava("ask", "Is Bo in this photo?", "--image", photos[0], "--subject", out, *common)
    assert asked.returncode == 0, asked.stderr
    assert asked.stdout.startswith(("Yes, Bo", "No, Bo"))

    told = yollava("ask", "What color is Bo?", "--subject", out, "--max-new-tokens", "5", *common)
    assert told.returncode == 0, told.stderr


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("not_an_image", "not a readable image"),
        ("too_few", "at least 3 photos"),
        ("missing_model", "cannot load model"),
        ("missing_photo", "cannot read file"),
    ],
)
def test_bad_teach_input_gives_one_clear_line(
    case: str, expected: str, tiny_model_dir: Path, photos: list[Path], tmp_path: Path
) -> None:
    model: str | Path = tiny_model_dir
    inputs: list[Path] = list(photos)
    if case == "not_an_image":
        fake = tmp_path / "notes.png"
        fake.write_text("this is text, not a picture")
        inputs[1] = fake
    elif case == "too_few":
        inputs = inputs[:2]
    elif case == "missing_model":
        model = tmp_path / "no-such-model"
    elif case == "missing_photo":
        inputs[0] = tmp_path / "gone.jpg"
    result = yollava(
        "teach", "Bo", *inputs, "--out", tmp_path / "x.safetensors", "--model", model, "--device", "cpu"
    )
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_ask_with_missing_subject_file_is_one_line(tiny_model_dir: Path, tmp_path: Path) -> None:
    result = yollava(
        "ask", "Is Bo here?", "--subject", tmp_path / "nope.safetensors", "--model", tiny_model_dir
    )
    assert result.returncode == 2 and "no such subject file" in result.stderr
    assert "Traceback" not in result.stderr


def test_progress_bar_writes_later_members_messages_on_their_own_lines() -> None:
    """A subject taught as several members prepares each in turn while the bar is open: each
    preparing message must come out whole, on its own line, and the bar must end at the total."""
    out = io.StringIO()
    bar = ProgressBar(file=out)

    def report(phase: str, step: int, message: str = "") -> None:
        loss = 0.5 if phase == "training" else None
        bar(TrainingProgress(phase, step, 6, (step + 2) // 3, 2, loss, 0.0, None, message))

    report("preparing", 0, "reading photos (model 1 of 2)")
    for step in (1, 2, 3):
        report("training", step)
    report("preparing", 3, "reading photos (model 2 of 2)")
    for step in (4, 5, 6):
        report("training", step)
    report("done", 6)

    lines = out.getvalue().replace("\r", "\n").splitlines()
    assert "  reading photos (model 1 of 2) …" in lines
    assert "  reading photos (model 2 of 2) …" in lines
    assert bar.bar is not None and bar.bar.n == 6
    assert any("6/6" in line for line in lines)
