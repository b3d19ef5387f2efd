"""Toy-world datasets come out in the Yo'LLaVA layout, deterministic for a seed."""

import hashlib
import json
from pathlib import Path

import pytest

from personalization.toyworld.dataset import DatasetSizes, write_dataset
from personalization.toyworld.world import FINE_ATTRIBUTES, NAMED_ATTRIBUTES

SMALL = DatasetSizes(
    train_photos=5, test_photos=10, test_lookalikes=3, bank_size=30, bank_lookalikes_per_subject=4
)


def _digest(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("toy-dataset")
    write_dataset(root, seed=3, n_subjects=2, sizes=SMALL)
    return root


def _load(root: Path, name: str) -> dict:
    return json.loads((root / name).read_text())


def test_layout_matches_the_papers(dataset: Path) -> None:
    subjects = _load(dataset, "subjects.json")
    assert len(subjects) == 2
    for name, record in subjects.items():
        assert {"kind", "colour", "pattern", "accessory", "description"} <= record.keys()
        assert len(list((dataset / "train" / name).glob("*.png"))) == 5
        assert len(list((dataset / "test" / name).glob("*.png"))) == 10
        assert len(list((dataset / "test_lookalikes" / name).glob("*.png"))) == 3
    assert len(list((dataset / "negatives").glob("*.png"))) == 30
    assert _load(dataset, "dataset.json")["subjects"] == list(subjects)


def test_qa_files_point_at_real_photos_and_valid_options(dataset: Path) -> None:
    subjects = _load(dataset, "subjects.json")
    text_qa = _load(dataset, "text_qa.json")
    visual_qa = _load(dataset, "visual_qa.json")
    for name in subjects:
        assert text_qa[name]
        for item in text_qa[name]:
            assert f"<{name}>" in item["question"]
            assert item["correct_answer"] in item["options"]
            assert len(set(item["options"].values())) == len(item["options"])
        assert sorted(visual_qa[name]) == sorted(f"test/{name}/{i}.png" for i in range(10))
        for path, item in visual_qa[name].items():
            assert (dataset / path).is_file()
            assert item["correct_answer"] in item["options"]
            assert len(set(item["options"].values())) == 2


def test_lookalikes_are_recorded_with_how_they_differ(dataset: Path) -> None:
    lookalikes = _load(dataset, "lookalikes.json")
    for entries in lookalikes.values():
        assert len(entries["test"]) == 3
        assert len(entries["negatives"]) == 4
        for entry in entries["test"] + entries["negatives"]:
            assert (dataset / entry["path"]).is_file()
            differs = set(entry["differs"])
            assert differs <= set(FINE_ATTRIBUTES) or (len(differs) == 1 and differs <= set(NAMED_ATTRIBUTES))
            assert entry["fine_only"] is (differs <= set(FINE_ATTRIBUTES))


def test_test_scenes_say_how_many_others_each_test_photo_shows(dataset: Path) -> None:
    scenes = _load(dataset, "test_scenes.json")
    assert sorted(scenes) == sorted(_load(dataset, "subjects.json"))
    counts = []
    for name, photos in scenes.items():
        assert sorted(photos) == sorted(f"test/{name}/{i}.png" for i in range(10))
        counts += [photo["others"] for photo in photos.values()]
    assert set(counts) <= {0, 1, 2}
    # Half the test photos show the subject alone (alone_probability=0.5): both kinds occur.
    assert 0 in counts and max(counts) > 0


def test_same_seed_writes_identical_files(dataset: Path, tmp_path: Path) -> None:
    write_dataset(tmp_path, seed=3, n_subjects=2, sizes=SMALL)
    assert _digest(tmp_path) == _digest(dataset)


def test_refuses_a_bank_too_small_for_its_lookalikes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="bank_size"):
        write_dataset(
            tmp_path, seed=0, n_subjects=3, sizes=DatasetSizes(bank_size=5, bank_lookalikes_per_subject=4)
        )
