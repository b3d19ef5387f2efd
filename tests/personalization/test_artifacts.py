"""Subject files round-trip and refuse files made for another model or a newer format."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from personalization.artifacts import FORMAT_VERSION, load_subject, read_metadata, save_subject
from personalization.errors import ArtifactError
from personalization.modeling import LoadedModel
from personalization.subject import new_subject


def test_round_trip_keeps_vectors_and_metadata(tiny_loaded: LoadedModel, tmp_path: Path) -> None:
    bo = new_subject(tiny_loaded, display_name="Bo", kind="dog", k=3, facts="Bo is 3 and loves tennis balls")
    bo.threshold = 0.61
    bo.metrics = {"heldout_positives": 1, "heldout_positives_recognised": 1}
    path = save_subject(bo, tmp_path / "bo.safetensors", model_id="tiny")
    loaded = load_subject(path, model_id="tiny", hidden_size=tiny_loaded.hidden_size)
    assert torch.equal(loaded.input_vectors, bo.input_vectors)
    assert torch.equal(loaded.output_vectors, bo.output_vectors)
    assert (loaded.display_name, loaded.kind, loaded.facts, loaded.threshold) == (
        bo.display_name,
        "dog",
        bo.facts,
        0.61,
    )
    assert loaded.token_names == bo.token_names and loaded.metrics == bo.metrics
    metadata = read_metadata(path)
    assert metadata["base_model"] == "tiny" and metadata["k"] == "3"
    assert json.loads(metadata["latent_names"]) == bo.latent_names
    assert list(tmp_path.iterdir()) == [path], "no temporary files left behind"


def test_refuses_another_base_model(tiny_loaded: LoadedModel, tmp_path: Path) -> None:
    bo = new_subject(tiny_loaded, display_name="Bo", kind="dog", k=1)
    path = save_subject(bo, tmp_path / "bo.safetensors", model_id="llava-hf/llava-1.5-7b-hf")
    with pytest.raises(ArtifactError, match=r"trained for base model 'llava-hf/llava-1\.5-7b-hf'"):
        load_subject(path, model_id="toyworld", hidden_size=tiny_loaded.hidden_size)
    with pytest.raises(ArtifactError, match="hidden size"):
        load_subject(path, model_id="llava-hf/llava-1.5-7b-hf", hidden_size=tiny_loaded.hidden_size + 1)


def test_refuses_newer_format_and_foreign_files(tiny_loaded: LoadedModel, tmp_path: Path) -> None:
    bo = new_subject(tiny_loaded, display_name="Bo", kind="dog", k=1)
    path = save_subject(bo, tmp_path / "bo.safetensors", model_id="tiny")
    metadata = read_metadata(path)
    metadata["format_version"] = str(FORMAT_VERSION + 1)
    save_file(load_file(str(path)), str(path), metadata=metadata)
    with pytest.raises(ArtifactError, match="newer"):
        load_subject(path, model_id="tiny", hidden_size=tiny_loaded.hidden_size)

    other = tmp_path / "other.safetensors"
    save_file({"weight": torch.zeros(2)}, str(other))
    with pytest.raises(ArtifactError, match="not a yollava subject file"):
        load_subject(other, model_id="tiny", hidden_size=tiny_loaded.hidden_size)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not safetensors at all")
    with pytest.raises(ArtifactError, match="not a readable subject file"):
        load_subject(junk, model_id="tiny", hidden_size=tiny_loaded.hidden_size)
    with pytest.raises(ArtifactError, match="no such subject file"):
        load_subject(tmp_path / "missing.safetensors", model_id="tiny", hidden_size=tiny_loaded.hidden_size)


def test_members_round_trip_and_a_missing_member_is_a_clear_error(
    tiny_loaded: LoadedModel, tmp_path: Path
) -> None:
    bo = new_subject(tiny_loaded, display_name="Bo", kind="dog", k=2)
    bo.members = [(bo.input_vectors + 1, bo.output_vectors - 1), (bo.input_vectors * 2, bo.output_vectors)]
    path = save_subject(bo, tmp_path / "bo.safetensors", model_id="tiny")
    loaded = load_subject(path, model_id="tiny", hidden_size=tiny_loaded.hidden_size)
    assert len(loaded.members) == 2
    for (inputs, outputs), (saved_inputs, saved_outputs) in zip(loaded.members, bo.members, strict=True):
        assert torch.equal(inputs, saved_inputs) and torch.equal(outputs, saved_outputs)
    assert read_metadata(path)["members"] == "3"

    tensors = load_file(str(path))
    del tensors["members.2.output_vectors"]
    save_file(tensors, str(path), metadata=read_metadata(path))
    with pytest.raises(ArtifactError, match="member 3 of the subject is missing"):
        load_subject(path, model_id="tiny", hidden_size=tiny_loaded.hidden_size)


def test_a_file_without_members_loads_as_one_member(tiny_loaded: LoadedModel, tmp_path: Path) -> None:
    bo = new_subject(tiny_loaded, display_name="Bo", kind="dog", k=2)
    path = save_subject(bo, tmp_path / "bo.safetensors", model_id="tiny")
    metadata = read_metadata(path)
    del metadata["members"]  # as written before subjects had members
    save_file(load_file(str(path)), str(path), metadata=metadata)
    assert load_subject(path, model_id="tiny", hidden_size=tiny_loaded.hidden_size).members == []
