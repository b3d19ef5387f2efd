"""Subjects as the worker's model needs them, loaded from their files and cached by content hash.

A trained subject is read from the shared data directory (the file store path the database
records) once per file: the cache is keyed by the file's SHA-256, so a retrained subject is a new
entry and an old one simply ages out. A subject with no file yet gets fresh, untrained tokens
initialised from its kind, cached by id, name and kind. The owner's *current* facts and name
always come from the request, not the file (they may have changed since training).
"""

import dataclasses
from collections import OrderedDict
from collections.abc import Sequence

from bot.worker.protocol import SubjectRef
from personalization.artifacts import load_subject
from personalization.engine import Engine
from personalization.subject import Subject, new_subject
from storage.files import FileStore

DEFAULT_CACHE_SIZE = 256


class SubjectCache:
    """Loads :class:`SubjectRef` s into :class:`Subject` s. Not thread-safe: use under the gate.

    Args:
        engine: the model the subjects are for (files made for another model are refused).
        files: the file store over the shared data directory.
        latent_tokens: k for untrained subjects.
        capacity: how many subjects to keep in memory.
    """

    def __init__(
        self, engine: Engine, files: FileStore, *, latent_tokens: int, capacity: int = DEFAULT_CACHE_SIZE
    ) -> None:
        self.engine = engine
        self.files = files
        self.latent_tokens = latent_tokens
        self.capacity = capacity
        self._entries: OrderedDict[tuple[str, ...], Subject] = OrderedDict()

    def subjects(self, refs: Sequence[SubjectRef]) -> list[Subject]:
        """The subjects for ``refs``, in order, with the refs' names and facts.

        Raises:
            ArtifactError: a subject file is missing, unreadable or made for another model.
            UnsafePath: a path leaves the data directory.
        """
        return [self._with_owner_words(self._load(ref), ref) for ref in refs]

    def _load(self, ref: SubjectRef) -> Subject:
        if ref.artifact_path is None:
            key: tuple[str, ...] = ("untrained", ref.subject_id, ref.name, ref.kind)
        else:
            key = ("trained", ref.artifact_sha256 or ref.artifact_path)
        cached = self._entries.get(key)
        if cached is not None:
            self._entries.move_to_end(key)
            return cached
        if ref.artifact_path is None:
            subject = new_subject(
                self.engine.loaded, display_name=ref.name, kind=ref.kind, k=self.latent_tokens
            )
        else:
            subject = load_subject(
                self.files.path(ref.artifact_path),
                model_id=self.engine.model_id,
                hidden_size=self.engine.loaded.hidden_size,
            )
        self._entries[key] = subject
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
        return subject

    @staticmethod
    def _with_owner_words(subject: Subject, ref: SubjectRef) -> Subject:
        return dataclasses.replace(subject, display_name=ref.name, facts=ref.facts.strip())
