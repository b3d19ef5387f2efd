"""File clean-up shared by the use-cases: delete stored files no database row refers to.

Content addressing means two rows (even of two users) may share one file, so a file is only ever
deleted after checking that no photo row and no subject row references it.
"""

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from storage import FileStore, Namespace, Photo, Subject, session_scope


def referenced_paths(session: Session, paths: Iterable[str]) -> set[str]:
    """Those of ``paths`` that a photo or subject row refers to."""
    wanted = list(set(paths))
    if not wanted:
        return set()
    photos = session.exec(select(Photo.path).where(col(Photo.path).in_(wanted))).all()
    artifacts = session.exec(
        select(Subject.artifact_path).where(col(Subject.artifact_path).in_(wanted))
    ).all()
    return {path for path in [*photos, *artifacts] if path is not None}


def delete_unreferenced(db: Engine, files: FileStore, paths: Iterable[str]) -> int:
    """Delete each of ``paths`` no row refers to (after the caller committed); how many went."""
    candidates = list(dict.fromkeys(paths))
    if not candidates:
        return 0
    with session_scope(db) as session:
        keep = referenced_paths(session, candidates)
    removed = 0
    for path in candidates:
        if path not in keep and files.exists(path):
            files.delete(path)
            removed += 1
    return removed


def sweep_orphans(db: Engine, files: FileStore, *, older_than: datetime) -> int:
    """Delete stored files that no row refers to and that were written before ``older_than``.

    Catches what a crash between writing a file and committing its row left behind. The age
    guard keeps it away from a teach or a training that is writing right now.
    """
    cutoff = older_than.timestamp()
    found: list[str] = []
    for namespace in Namespace:
        folder = files.root / namespace.value
        if not folder.is_dir():
            continue
        for path in folder.rglob("*"):
            if not path.is_file() or path.stat().st_mtime >= cutoff:
                continue
            if path.name.startswith("."):  # a temporary file of a write that crashed
                path.unlink(missing_ok=True)
            else:
                found.append(path.relative_to(files.root).as_posix())
    return delete_unreferenced(db, files, found)
