"""A content-addressed file store for photos and subject tensors.

Files are named by the SHA-256 of their bytes and sharded two levels deep, inside one folder per
namespace: ``photos/ab/cd/abcd….png``, ``subjects/12/34/1234….safetensors``. Equal bytes are stored
once. Writes are atomic (temp file in the same folder, fsync, ``os.replace``, fsync of the
folder): a crash leaves either the whole file or none, never a torn one. Paths handed back are
relative to the store's root (the data directory), which is what the database records.
"""

import contextlib
import enum
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from storage.errors import UnsafePath

_SUFFIX_PATTERN = re.compile(r"[a-z0-9]{1,16}")


class Namespace(enum.StrEnum):
    """Top-level folders of the store; each holds one kind of file."""

    PHOTOS = "photos"
    SUBJECTS = "subjects"


@dataclass(frozen=True)
class StoredFile:
    """What ``FileStore.put`` wrote: ``relative_path`` is the key to keep in the database."""

    sha256: str
    relative_path: str
    size: int


class FileStore:
    """Content-addressed files under ``root``. Thread- and process-safe for concurrent puts."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    def put(self, data: bytes, *, suffix: str, namespace: Namespace = Namespace.PHOTOS) -> StoredFile:
        """Store ``data`` as ``<namespace>/<h[:2]>/<h[2:4]>/<h>.<suffix>``; no-op if present.

        ``suffix`` is a bare lowercase extension such as ``"png"`` or ``"safetensors"``.
        """
        if not _SUFFIX_PATTERN.fullmatch(suffix):
            raise ValueError(f"suffix must be 1-16 lowercase letters or digits, got {suffix!r}")
        digest = hashlib.sha256(data).hexdigest()
        relative = f"{Namespace(namespace).value}/{digest[:2]}/{digest[2:4]}/{digest}.{suffix}"
        target = self.path(relative)
        for attempt in range(3):
            if target.exists():
                break
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                _write_atomically(target, data)
                break
            except FileNotFoundError:
                # A concurrent delete() pruned the empty shard folder between mkdir and write.
                if attempt == 2:
                    raise
        return StoredFile(sha256=digest, relative_path=relative, size=len(data))

    def path(self, relative: str) -> Path:
        """The absolute path of ``relative``.

        Raises:
            UnsafePath: ``relative`` is absolute, empty, contains ``..`` or resolves outside the
                root (e.g. through a symlink).
        """
        pure = PurePosixPath(relative)
        if not relative or pure.is_absolute() or "\\" in relative or ".." in pure.parts:
            raise UnsafePath(f"not a safe relative path: {relative!r}")
        candidate = (self.root / pure).resolve()
        if not candidate.is_relative_to(self.root) or candidate == self.root:
            raise UnsafePath(f"path leaves the file store: {relative!r}")
        return candidate

    def read(self, relative: str) -> bytes:
        """The bytes at ``relative``; ``FileNotFoundError`` if absent."""
        return self.path(relative).read_bytes()

    def exists(self, relative: str) -> bool:
        """Whether a file is stored at ``relative``."""
        return self.path(relative).is_file()

    def delete(self, relative: str) -> None:
        """Remove ``relative`` if present, then any shard folders it leaves empty.

        Idempotent. Namespace folders and the root are kept.
        """
        target = self.path(relative)
        target.unlink(missing_ok=True)
        namespace_dirs = {self.root / namespace.value for namespace in Namespace}
        folder = target.parent
        while folder != self.root and folder not in namespace_dirs:
            try:
                folder.rmdir()
            except OSError:  # not empty (or already gone): stop climbing
                break
            folder = folder.parent


def _write_atomically(target: Path, data: bytes) -> None:
    descriptor, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    _fsync_directory(target.parent)


def _fsync_directory(folder: Path) -> None:
    # Makes the rename itself durable; not possible (nor needed) on every platform.
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
