"""The negative bank: generic photos indexed once, searched for hard negatives.

A bank is a folder of images an operator provides (a COCO subset, say; the toy world writes its
own). Each image is embedded with the *base model's own* vision tower and projector (the mean of
its projected patch features, L2-normalised); the index is cached on disk beside the images (or
in a cache directory) and re-used across subjects until the files or the model change.

Hard negatives for a subject are the top-m bank images by cosine similarity to each positive
photo; easy negatives are drawn at random from the rest. Never put users' photos in a bank.
"""

import hashlib
import json
import os
import random
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from personalization.engine import Engine
from personalization.errors import ImageError
from personalization.images import list_images, load_image

INDEX_FORMAT_VERSION = 1
EMBED_BATCH_SIZE = 32


def image_embeddings(features: Sequence[torch.Tensor]) -> torch.Tensor:
    """``[M, H]`` float32 unit vectors: the mean of each image's projected patch features."""
    pooled = torch.stack([f.float().mean(dim=0) for f in features])
    return torch.nn.functional.normalize(pooled, dim=-1).cpu()


@dataclass
class BankIndex:
    """Bank image paths and their unit embeddings ``[M, H]``."""

    paths: list[Path]
    embeddings: torch.Tensor

    def __len__(self) -> int:
        return len(self.paths)

    def hard_negatives(self, queries: torch.Tensor, *, per_query: int) -> list[int]:
        """Indices of the ``per_query`` most similar bank images to each query, deduplicated.

        Args:
            queries: ``[Q, H]`` unit embeddings of the positive photos.
        """
        if len(self) == 0 or per_query <= 0:
            return []
        similarity = queries.float() @ self.embeddings.T
        top = similarity.topk(min(per_query, len(self)), dim=-1).indices
        chosen: list[int] = []
        for index in top.flatten().tolist():
            if index not in chosen:
                chosen.append(index)
        return chosen

    def easy_negatives(self, count: int, *, exclude: set[int], rng: random.Random) -> list[int]:
        """``count`` random indices not in ``exclude`` (fewer if the bank is small)."""
        pool = [i for i in range(len(self)) if i not in exclude]
        return rng.sample(pool, min(count, len(pool)))


def _fingerprint(paths: Sequence[Path], model_id: str) -> str:
    digest = hashlib.sha256(f"v{INDEX_FORMAT_VERSION}|{model_id}".encode())
    for path in paths:
        stat = path.stat()
        digest.update(f"|{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def index_bank(
    directory: Path,
    engine: Engine,
    *,
    cache_dir: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> BankIndex:
    """Embed every image in ``directory`` once; later calls read the cached index.

    The cache file is named by a fingerprint of the file list and the model id, so a changed
    folder or another base model is re-indexed. Unreadable images are skipped.
    """
    paths = list_images(directory)
    if not paths:
        raise ImageError(f"{directory}: the negative bank has no images")
    fingerprint = _fingerprint(paths, engine.model_id)
    cache_root = cache_dir or directory
    cache_file = cache_root / f".yollava-bank-{fingerprint}.safetensors"
    if cache_file.is_file():
        stored = load_file(str(cache_file))
        names = json.loads((cache_file.with_suffix(".json")).read_text())
        return BankIndex([directory / name for name in names], stored["embeddings"])

    kept: list[Path] = []
    embeddings: list[torch.Tensor] = []
    for start in range(0, len(paths), EMBED_BATCH_SIZE):
        chunk, images = [], []
        for path in paths[start : start + EMBED_BATCH_SIZE]:
            try:
                images.append(load_image(path))
                chunk.append(path)
            except ImageError:
                continue
        if images:
            embeddings.append(image_embeddings(engine.image_features(images)))
            kept.extend(chunk)
        if progress is not None:
            progress(min(start + EMBED_BATCH_SIZE, len(paths)), len(paths))
    index = BankIndex(kept, torch.cat(embeddings) if embeddings else torch.zeros(0, 1))
    _write_index(cache_file, index)
    return index


def _write_index(cache_file: Path, index: BankIndex) -> None:
    """Atomic write of the embeddings and the file names; a failure leaves no partial cache."""
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        names = json.dumps([path.name for path in index.paths])
        for suffix, write in (
            (".json", lambda target: Path(target).write_text(names)),
            (
                ".safetensors",
                lambda target: save_file({"embeddings": index.embeddings.contiguous()}, target),
            ),
        ):
            handle, temporary = tempfile.mkstemp(dir=cache_file.parent, suffix=".tmp")
            os.close(handle)
            write(temporary)
            os.replace(temporary, cache_file.with_suffix(suffix))
    except OSError:
        # A read-only bank folder still works; it is just indexed again next time.
        return
