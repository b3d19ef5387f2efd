"""The splice forward equals the resize-vocabulary formulation and never touches the base model."""

import copy

import torch

from personalization.engine import Engine
from personalization.modeling import LoadedModel
from personalization.prompts import personal_prompt
from personalization.splice import SubjectTable
from personalization.subject import new_subject
from personalization.trainer import answer_loss
from tests.conftest import make_photo


def _resized_logits(
    loaded: LoadedModel, engine: Engine, input_ids: torch.Tensor, table: SubjectTable, pixel_values
):
    """Reference: a copy of the model whose vocabulary is resized to hold the subject rows."""
    spliced = engine.spliced
    model = copy.deepcopy(loaded.model)
    base_vocab = spliced.vocab_size
    model.resize_token_embeddings(base_vocab + table.size)
    with torch.no_grad():
        model.get_input_embeddings().weight[base_vocab:] = table.input_matrix()
        model.lm_head.weight[base_vocab:] = table.output_matrix()
    ids = torch.where(
        input_ids >= spliced.first_slot_id, input_ids - spliced.first_slot_id + base_vocab, input_ids
    )
    with torch.no_grad():
        return model(input_ids=ids, pixel_values=pixel_values).logits


def test_splice_forward_equals_resized_vocabulary(tiny_loaded: LoadedModel, tiny_engine: Engine) -> None:
    bo = new_subject(tiny_loaded, display_name="Bo", kind="dog", k=4, seed=1)
    mam = new_subject(tiny_loaded, display_name="Mam", kind="cat", k=2, seed=2)
    bo.output_vectors.normal_(0, 0.1)
    mam.output_vectors.normal_(0, 0.1)
    table = SubjectTable.of([bo, mam])
    prompt = tiny_engine.encoder.user_turn(
        f"{personal_prompt(bo)} {personal_prompt(mam)} Are {bo.identifier} and {mam.identifier} here?",
        with_image=True,
    )
    encoded = tiny_engine.encoder.encode(prompt, f"Yes, {bo.identifier} and {mam.identifier} are.", table)
    input_ids = torch.tensor([encoded.input_ids])
    image = make_photo((200, 30, 30), 0)
    pixel_values = tiny_engine.pixel_values([image])

    with torch.no_grad():
        embeds = tiny_engine.spliced.embed(input_ids, table, tiny_engine.spliced.image_features(pixel_values))
        hidden, _ = tiny_engine.spliced.hidden_states(embeds)
        spliced_logits = tiny_engine.spliced.logits(hidden, table)
    reference = _resized_logits(tiny_loaded, tiny_engine, input_ids, table, pixel_values)

    assert spliced_logits.shape == reference.shape
    torch.testing.assert_close(spliced_logits, reference, atol=1e-4, rtol=1e-4)
    # Both subjects' identifiers and latents really are in the prompt.
    slots = (
        input_ids[0][input_ids[0] >= tiny_engine.spliced.first_slot_id] - tiny_engine.spliced.first_slot_id
    )
    assert set(slots.tolist()) == set(range(table.size))


def test_batch_with_different_subjects_equals_each_alone(
    tiny_loaded: LoadedModel, tiny_engine: Engine
) -> None:
    bo = new_subject(tiny_loaded, display_name="Bo", kind="dog", k=3, seed=3)
    mam = new_subject(tiny_loaded, display_name="Mam", kind="cat", k=5, seed=4)
    features = tiny_engine.image_features([make_photo((200, 30, 30), 1), make_photo((30, 30, 200), 2)])
    samples = []
    for subject, feature in ((bo, features[0]), (mam, features[1])):
        prompt = tiny_engine.encoder.user_turn(
            f"{personal_prompt(subject)} Is {subject.identifier} here?", with_image=True
        )
        samples.append((subject, feature, prompt, f"Yes, {subject.identifier} is here."))

    joint_table = SubjectTable.of([bo, mam])
    joint = answer_loss(
        tiny_engine.spliced,
        [tiny_engine.encoder.encode(p, a, joint_table) for _, _, p, a in samples],
        joint_table,
        [[s] for s, _, _, _ in samples],
        [f for _, f, _, _ in samples],
        pad_id=tiny_engine.pad_id,
        reduction="none",
    )
    alone = []
    for subject, feature, prompt, answer in samples:
        table = SubjectTable.of([subject])
        alone.append(
            answer_loss(
                tiny_engine.spliced,
                [tiny_engine.encoder.encode(prompt, answer, table)],
                table,
                [[subject]],
                [feature],
                pad_id=tiny_engine.pad_id,
                reduction="none",
            )
        )
    torch.testing.assert_close(joint, torch.cat(alone), atol=1e-5, rtol=1e-5)


def test_untrained_subject_reads_like_its_kind(tiny_loaded: LoadedModel) -> None:
    bo = new_subject(tiny_loaded, display_name="Bo", kind="dog", k=4)
    tokenizer = tiny_loaded.processor.tokenizer
    dog_ids = tokenizer.encode(" dog", add_special_tokens=False)
    expected = tiny_loaded.model.get_input_embeddings().weight[dog_ids].float().mean(0)
    torch.testing.assert_close(bo.input_vectors[0], expected)
    assert bo.input_vectors.dtype == torch.float32 and bo.input_vectors.shape == (5, tiny_loaded.hidden_size)
    assert len(set(bo.token_names)) == 5
    other = new_subject(tiny_loaded, display_name="Bo", kind="dog", k=4)
    assert other.identifier != bo.identifier, "two subjects named Bo must not share token names"
