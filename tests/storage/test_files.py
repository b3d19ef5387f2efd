"""FileStore: content addressing, atomic writes, idempotent deletes, no path escapes."""

import hashlib
import os
from pathlib import Path

import pytest

from storage import FileStore, Namespace, UnsafePath


def _files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_put_stores_bytes_once_under_their_hash(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    data = b"\x89PNG pretend photo"
    digest = hashlib.sha256(data).hexdigest()

    first = store.put(data, suffix="png")
    second = store.put(data, suffix="png")

    assert first == second
    assert first.sha256 == digest and first.size == len(data)
    assert first.relative_path == f"photos/{digest[:2]}/{digest[2:4]}/{digest}.png"
    assert store.read(first.relative_path) == data
    assert store.exists(first.relative_path)
    assert _files_under(tmp_path) == [first.relative_path]  # no temp files left behind


def test_namespaces_keep_photos_and_subject_tensors_apart(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    photo = store.put(b"same bytes", suffix="png")
    tensors = store.put(b"same bytes", suffix="safetensors", namespace=Namespace.SUBJECTS)
    assert photo.relative_path.startswith("photos/")
    assert tensors.relative_path.startswith("subjects/")
    assert store.path(tensors.relative_path) == tmp_path.resolve() / tensors.relative_path


def test_a_failed_write_leaves_neither_file_nor_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = FileStore(tmp_path)

    def crash(source: str, target: str) -> None:
        raise OSError("disk vanished")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk vanished"):
        store.put(b"data", suffix="png")
    assert _files_under(tmp_path) == []


def test_delete_is_idempotent_and_prunes_only_empty_shards(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    kept = store.put(b"kept", suffix="png")
    gone = store.put(b"gone", suffix="png")

    store.delete(gone.relative_path)
    store.delete(gone.relative_path)

    assert not store.exists(gone.relative_path)
    assert not store.path(gone.relative_path).parent.parent.exists()
    assert store.read(kept.relative_path) == b"kept"
    store.delete(kept.relative_path)
    assert (tmp_path / "photos").is_dir()
    assert list((tmp_path / "photos").iterdir()) == []


@pytest.mark.parametrize(
    "relative",
    ["", ".", "../outside.png", "photos/../../outside.png", "/etc/passwd", "photos\\..\\x"],
)
def test_paths_that_leave_the_root_are_refused(tmp_path: Path, relative: str) -> None:
    store = FileStore(tmp_path / "data")
    with pytest.raises(UnsafePath):
        store.path(relative)


def test_symlinks_cannot_smuggle_a_path_out(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "secret").write_text("secret")
    (tmp_path / "data" / "photos").symlink_to(tmp_path)
    store = FileStore(tmp_path / "data")
    with pytest.raises(UnsafePath):
        store.read("photos/secret")


def test_suffix_must_be_a_plain_extension(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="suffix"):
        FileStore(tmp_path).put(b"x", suffix="../png")
