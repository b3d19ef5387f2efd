"""Inference: greedy decoding matches transformers, names come back, recognition is calibrated."""

import random
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from personalization.config import TrainConfig
from personalization.engine import Engine, Recognition, recognition_sentence
from personalization.errors import ModelLoadError
from personalization.modeling import CONVENTIONS_FILE, LoadedModel, ModelConventions, load_model
from personalization.splice import SubjectTable
from personalization.subject import new_subject
from personalization.trainer import Trainer
from tests.conftest import make_photo


def test_greedy_decode_without_subjects_matches_generate(
    tiny_loaded: LoadedModel, tiny_engine: Engine
) -> None:
    image = make_photo((200, 30, 30), 5)
    table = SubjectTable.of([])
    encoded = tiny_engine.encoder.encode(
        tiny_engine.encoder.user_turn("What color is the dog?", with_image=True), None, table
    )
    ours = tiny_engine.generate(encoded, table, tiny_engine.image_features([image]), max_new_tokens=12)
    reference = tiny_loaded.model.generate(
        input_ids=torch.tensor([encoded.input_ids]),
        pixel_values=tiny_engine.pixel_values([image]),
        max_new_tokens=12,
        do_sample=False,
    )[0, len(encoded.input_ids) :].tolist()
    eos = tiny_loaded.processor.tokenizer.eos_token_id
    assert ours == [token for token in reference if token != eos][: len(ours)]
    assert len(ours) == len(reference) or reference[len(ours)] == eos


def test_decode_renders_identifiers_as_display_names(tiny_loaded: LoadedModel, tiny_engine: Engine) -> None:
    bo = new_subject(tiny_loaded, display_name="Bo", kind="dog", k=2)
    mam = new_subject(tiny_loaded, display_name="Mam", kind="cat", k=2)
    table = SubjectTable.of([bo, mam])
    prompt = tiny_engine.encoder.user_turn("x", with_image=False)
    encoded = tiny_engine.encoder.encode(prompt, f"Yes, {bo.identifier} is with {mam.identifier}.", table)
    answer_ids = encoded.input_ids[encoded.prompt_length :]
    assert tiny_engine.encoder.decode(answer_ids, table) == "Yes, Bo is with Mam."


def test_generated_identifier_comes_out_as_display_name(
    tiny_loaded: LoadedModel, tiny_engine: Engine
) -> None:
    bo = new_subject(tiny_loaded, display_name="Bo", kind="dog", k=2)
    table = SubjectTable.of([bo])
    encoded = tiny_engine.encoder.encode(
        tiny_engine.question_prompt("Who is Bo?", [bo], with_image=False), None, table
    )
    with torch.no_grad():
        embeds = tiny_engine.spliced.embed(torch.tensor([encoded.input_ids]), table)
        hidden, _ = tiny_engine.spliced.hidden_states(embeds)
    # Point the identifier's output row along the last hidden state: it becomes the argmax.
    last = hidden[0, -1].float()
    bo.output_vectors[0] = last / last.norm() ** 2 * 1000.0
    ids = tiny_engine.generate(encoded, table, [], max_new_tokens=1)
    assert ids == [tiny_engine.spliced.first_slot_id]
    assert tiny_engine.encoder.decode(ids, table) == "Bo"


def test_latent_tokens_are_never_generated(tiny_loaded: LoadedModel, tiny_engine: Engine) -> None:
    bo = new_subject(tiny_loaded, display_name="Bo", kind="dog", k=2)
    bo.output_vectors[1:] = 50.0  # latents would win if they were allowed
    table = SubjectTable.of([bo])
    encoded = tiny_engine.encoder.encode(
        tiny_engine.question_prompt("Hi Bo", [bo], with_image=False), None, table
    )
    ids = tiny_engine.generate(encoded, table, [], max_new_tokens=4)
    latent_slots = {tiny_engine.spliced.first_slot_id + row for row in table.slot_rows(bo)[1:]}
    assert not latent_slots & set(ids)


def test_recognition_probability_is_yes_over_yes_plus_no(
    tiny_loaded: LoadedModel, tiny_engine: Engine
) -> None:
    bo = new_subject(tiny_loaded, display_name="Bo", kind="dog", k=2)
    image = make_photo((200, 30, 30), 6)
    recognition = tiny_engine.recognize(image, bo)
    table = SubjectTable.of([bo])
    encoded = tiny_engine.encoder.encode(tiny_engine.recognition_prompt(bo), None, table)
    ids = torch.tensor([encoded.input_ids])
    with torch.no_grad():
        embeds = tiny_engine.spliced.embed(ids, table, tiny_engine.image_features([image]))
        hidden, _ = tiny_engine.spliced.hidden_states(embeds)
        logits = tiny_engine.spliced.logits(hidden[0, -1], table)
    p_yes, p_no = torch.softmax(logits, -1)[[tiny_engine.yes_token, tiny_engine.no_token]]
    assert abs(recognition.probability - float(p_yes / (p_yes + p_no))) < 1e-4
    assert recognition.present == (recognition.probability >= bo.threshold)


def test_recognition_sentences_start_with_yes_or_no() -> None:
    assert recognition_sentence([Recognition("Bo", 0.9, 0.5)]).startswith("Yes, Bo is in the photo")
    assert recognition_sentence([Recognition("Bo", 0.2, 0.5)]).startswith("No, Bo is not in the photo")
    both = recognition_sentence([Recognition("Bo", 0.9, 0.5), Recognition("Mam", 0.1, 0.5)])
    assert both.startswith("No, only Bo is in the photo, not Mam")


def test_recognition_sentences_show_each_threshold() -> None:
    """A calibrated "No" at 51 % must not read as a contradiction: the threshold is shown."""
    assert recognition_sentence([Recognition("Zemi", 0.51, 0.53)]) == (
        "No, Zemi is not in the photo. (Zemi 51%, needs 53%)"
    )
    assert recognition_sentence([Recognition("Zemi", 0.5312, 0.5338)]).endswith("(Zemi 53.1%, needs 53.4%)")
    both = recognition_sentence([Recognition("Bo", 0.9, 0.5), Recognition("Mam", 0.1, 0.45)])
    assert both.endswith("(Bo 90%, needs 50%; Mam 10%, needs 45%)")


def test_model_conventions_come_from_the_model_directory_and_reach_every_yes_no_question(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "marked"
    shutil.copytree(tiny_model_dir, copy)
    assert ModelConventions.read(copy) == ModelConventions()
    ModelConventions(yes_no_suffix=" Answer yes or no.").write(copy)
    loaded = load_model(str(copy), device="cpu", dtype=torch.float32)
    assert loaded.conventions.yes_no_suffix == " Answer yes or no."
    engine = Engine(loaded)
    bo = new_subject(loaded, display_name="Bo", kind="dog", k=2)
    assert engine.recognition_prompt(bo).endswith("in this photo? Answer yes or no. ASSISTANT:")
    trainer = Trainer(engine, TrainConfig(positive_examples=3))
    conversations = trainer._recognition_conversations(bo, [0], [1, 2], random.Random(0))
    assert len(conversations) == 5
    assert all(c.prompt.endswith("? Answer yes or no.") for c in conversations)
    ModelConventions().write(copy)
    assert not (copy / CONVENTIONS_FILE).exists()


@pytest.mark.parametrize("text", ['["x"]', '{"yes_no_suffix": 3}', '{"other": "x"}', "{nope"])
def test_a_malformed_conventions_file_is_a_clear_load_error(tmp_path: Path, text: str) -> None:
    (tmp_path / CONVENTIONS_FILE).write_text(text)
    with pytest.raises(ModelLoadError, match=r"yollava\.json is not valid"):
        ModelConventions.read(tmp_path)


def test_a_subject_with_members_scores_the_mean_of_its_members_in_any_batch(
    tiny_loaded: LoadedModel, tiny_engine: Engine
) -> None:
    bo = new_subject(tiny_loaded, display_name="Bo", kind="dog", k=2, seed=0)
    generator = torch.Generator().manual_seed(3)
    bo.members = [
        (bo.input_vectors + torch.randn(bo.input_vectors.shape, generator=generator), bo.output_vectors)
        for _ in range(2)
    ]
    mam = new_subject(tiny_loaded, display_name="Mam", kind="cat", k=3, seed=1)
    images = [make_photo((200, 30, 30), 6), make_photo((30, 30, 200), 7)]
    features = tiny_engine.image_features(images)

    views = bo.member_views()
    assert [v.token_names for v in views] == [bo.token_names] * 3
    each = [tiny_engine.yes_probabilities([(f, view) for f in features]) for view in views]
    assert len({round(scores[0], 4) for scores in each}) == 3, "the members should disagree"
    expected_bo = [sum(scores[i] for scores in each) / 3 for i in range(2)]
    expected_mam = tiny_engine.yes_probabilities([(f, mam) for f in features])

    pairs = [(features[0], bo), (features[0], mam), (features[1], bo), (features[1], mam)]
    for batch_size in (1, 3, 16):
        scores = tiny_engine.yes_probabilities(pairs, batch_size=batch_size)
        assert scores == pytest.approx(
            [expected_bo[0], expected_mam[0], expected_bo[1], expected_mam[1]], abs=1e-5
        )


def test_a_member_of_another_shape_is_refused(tiny_loaded: LoadedModel) -> None:
    from personalization.errors import SubjectError

    bo = new_subject(tiny_loaded, display_name="Bo", kind="dog", k=2)
    with pytest.raises(SubjectError, match="member 2"):
        replace(bo, members=[(bo.input_vectors[:2], bo.output_vectors[:2])])
