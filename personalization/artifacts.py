"""Subject files: one safetensors file holding a subject's two tensors and its metadata.

Metadata (all strings, as safetensors requires): format version, base model id, hidden size, k,
token names, display name, kind, facts, threshold, held-out metrics. A subject trained as
several members keeps the further members' tensors as ``members.<n>.input_vectors`` /
``members.<n>.output_vectors`` (n from 1); a reader that ignores them still has a working subject
(the first member). Loading refuses a file made
for another base model, another hidden size or a newer format, with a message that says which.
Files are written atomically (temporary file, then rename).
"""

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from personalization.errors import ArtifactError, SubjectError
from personalization.subject import Subject

FORMAT_VERSION = 1
FORMAT_NAME = "yollava-subject"


def save_subject(subject: Subject, path: Path, *, model_id: str) -> Path:
    """Write ``subject`` for base model ``model_id`` to ``path`` atomically; return ``path``."""
    metadata = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "base_model": model_id,
        "hidden_size": str(subject.hidden_size),
        "k": str(subject.k),
        "identifier": subject.identifier,
        "latent_names": json.dumps(subject.latent_names),
        "display_name": subject.display_name,
        "kind": subject.kind,
        "facts": subject.facts,
        "threshold": repr(float(subject.threshold)),
        "metrics": json.dumps(subject.metrics),
    }
    tensors = {
        "input_vectors": _stored(subject.input_vectors),
        "output_vectors": _stored(subject.output_vectors),
    }
    for number, (inputs, outputs) in enumerate(subject.members, 1):
        tensors[f"members.{number}.input_vectors"] = _stored(inputs)
        tensors[f"members.{number}.output_vectors"] = _stored(outputs)
    metadata["members"] = str(1 + len(subject.members))
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        save_file(tensors, temporary, metadata=metadata)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return path


def _stored(tensor: torch.Tensor) -> torch.Tensor:
    # A copy of its own: safetensors refuses two names for one storage (members may share one).
    return tensor.detach().to("cpu", torch.float32).clone().contiguous()


def read_metadata(path: Path) -> dict[str, str]:
    """The metadata of a subject file without loading its tensors."""
    try:
        with _open(path) as handle:
            return dict(handle.metadata() or {})
    except (OSError, SafetensorError) as error:
        raise ArtifactError(f"{path}: not a readable subject file") from error


def _open(path: Path) -> Any:
    return safe_open(str(path), framework="pt")


def load_subject(path: Path, *, model_id: str, hidden_size: int) -> Subject:
    """Read a subject saved by :func:`save_subject` for base model ``model_id``.

    Raises:
        ArtifactError: unreadable file, not a subject file, a newer format, or made for another
            base model or hidden size.
    """
    if not path.is_file():
        raise ArtifactError(f"{path}: no such subject file")
    metadata = read_metadata(path)
    if metadata.get("format") != FORMAT_NAME:
        raise ArtifactError(f"{path}: not a yollava subject file")
    version = int(metadata.get("format_version", "0"))
    if version > FORMAT_VERSION:
        raise ArtifactError(
            f"{path}: subject file format {version} is newer than this yollava understands "
            f"({FORMAT_VERSION}); upgrade yollava"
        )
    if metadata["base_model"] != model_id:
        raise ArtifactError(
            f"{path}: this subject was trained for base model {metadata['base_model']!r}, "
            f"not {model_id!r}; teach it again on this model"
        )
    if int(metadata["hidden_size"]) != hidden_size:
        raise ArtifactError(
            f"{path}: hidden size {metadata['hidden_size']} does not match the model's {hidden_size}"
        )
    try:
        tensors = load_file(str(path))
    except (OSError, SafetensorError) as error:
        raise ArtifactError(f"{path}: the tensors cannot be read") from error
    members = []
    for number in range(1, int(metadata.get("members", "1"))):
        try:
            inputs = tensors[f"members.{number}.input_vectors"]
            outputs = tensors[f"members.{number}.output_vectors"]
        except KeyError:
            raise ArtifactError(f"{path}: member {number + 1} of the subject is missing") from None
        members.append((inputs.to(torch.float32), outputs.to(torch.float32)))
    try:
        return Subject(
            display_name=metadata["display_name"],
            kind=metadata["kind"],
            identifier=metadata["identifier"],
            latent_names=list(json.loads(metadata["latent_names"])),
            input_vectors=tensors["input_vectors"].to(torch.float32),
            output_vectors=tensors["output_vectors"].to(torch.float32),
            facts=metadata.get("facts", ""),
            threshold=float(metadata["threshold"]),
            metrics=dict(json.loads(metadata.get("metrics", "{}"))),
            members=members,
        )
    except SubjectError as error:
        raise ArtifactError(f"{path}: {error}") from error
