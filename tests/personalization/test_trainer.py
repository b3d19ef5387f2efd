"""Teaching: only the subject's vectors move, the loss falls, and the subject is really learnt."""

import random
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from PIL import Image

from personalization.config import TrainConfig, with_assignments
from personalization.engine import Engine
from personalization.errors import NotEnoughPhotos, TrainingCancelled
from personalization.images import list_images, load_image, zoomed_out
from personalization.modeling import LoadedModel
from personalization.negatives import index_bank
from personalization.subject import new_subject
from personalization.trainer import Trainer, TrainingProgress, learning_rate_at
from tests.conftest import SUBJECT_COLOUR, make_photo

FAST = TrainConfig(
    epochs=12,
    learning_rate=1e-2,
    positive_examples=24,
    hard_negatives_per_photo=6,
    easy_negatives=24,
    attribute_questions=("What color is the {kind}?",),
    qa_max_new_tokens=4,
)

SMALL = TrainConfig(
    epochs=2, positive_examples=8, hard_negatives_per_photo=2, easy_negatives=4, text_qa=False
)
"""A quick recipe for tests of the mechanics, not of learning."""


def _teach(
    loaded: LoadedModel, engine: Engine, photos: list[Image.Image], bank: Path, config: TrainConfig = FAST
):
    subject = new_subject(loaded, display_name="Bo", kind="dog", k=8, seed=config.seed)
    reports: list[TrainingProgress] = []
    result = Trainer(engine, config).teach(
        subject, photos, bank=index_bank(bank, engine), progress=reports.append
    )
    return result, reports


def test_training_moves_only_the_subject_and_learns_it(
    tiny_loaded: LoadedModel, tiny_engine: Engine, subject_photos: list[Image.Image], negative_bank: Path
) -> None:
    before = {name: tensor.clone() for name, tensor in tiny_loaded.model.state_dict().items()}
    result, reports = _teach(tiny_loaded, tiny_engine, subject_photos, negative_bank)

    after = tiny_loaded.model.state_dict()
    assert before.keys() == after.keys()
    for name, tensor in before.items():
        assert torch.equal(tensor, after[name]), f"base tensor {name} changed"
    assert not any(p.requires_grad for p in tiny_loaded.model.parameters())

    steps_per_epoch = len(result.losses) // FAST.epochs
    first, last = result.losses[:steps_per_epoch], result.losses[-steps_per_epoch:]
    assert sum(last) / len(last) < sum(first) / len(first) - 0.05, "training loss did not fall"

    bo = result.subject
    positives = [tiny_engine.recognize(photo, bo) for photo in subject_photos]
    negatives = [tiny_engine.recognize(load_image(p), bo) for p in list_images(negative_bank)]
    ordered = sum(p.probability > n.probability for p in positives for n in negatives)
    assert ordered >= 0.9 * len(positives) * len(negatives), "subject photos do not score above negatives"
    assert sum(r.present for r in positives) >= 4, [r.probability for r in positives]
    assert sum(not r.present for r in negatives) >= 0.8 * len(negatives), [r.probability for r in negatives]
    fresh = [make_photo(SUBJECT_COLOUR, 500 + s) for s in range(4)]
    assert sum(tiny_engine.recognize(p, bo).present for p in fresh) >= 3

    metrics = result.metrics
    assert metrics["heldout_positives"] == 1 and metrics["negative_bank"] is True
    assert metrics["hard_negatives"] > 0 and metrics["text_qa_examples"] > 0
    steps = [r.step for r in reports if r.phase == "training"]
    assert steps == list(range(1, len(steps) + 1)) and steps[-1] == reports[-1].total_steps
    assert reports[-1].phase == "done"
    assert all(r.eta_s is not None and r.eta_s >= 0 for r in reports if r.phase == "training")


def test_training_is_deterministic_under_a_seed(
    tiny_loaded: LoadedModel, tiny_engine: Engine, subject_photos: list[Image.Image], negative_bank: Path
) -> None:
    config = SMALL
    first, _ = _teach(tiny_loaded, tiny_engine, subject_photos, negative_bank, config)
    second, _ = _teach(tiny_loaded, tiny_engine, subject_photos, negative_bank, config)
    # Same data, order and initialisation; multithreaded CPU reductions may differ in the last bits.
    torch.testing.assert_close(
        first.subject.input_vectors, second.subject.input_vectors, atol=1e-4, rtol=1e-4
    )
    torch.testing.assert_close(
        first.subject.output_vectors, second.subject.output_vectors, atol=1e-4, rtol=1e-4
    )
    assert first.losses == pytest.approx(second.losses, abs=1e-4)
    assert first.metrics["hard_negatives"] == second.metrics["hard_negatives"]


def test_uncalibrated_training_keeps_the_plain_threshold(
    tiny_loaded: LoadedModel, tiny_engine: Engine, subject_photos: list[Image.Image], negative_bank: Path
) -> None:
    config = TrainConfig(
        epochs=2,
        positive_examples=8,
        hard_negatives_per_photo=2,
        easy_negatives=4,
        text_qa=False,
        calibrate_threshold=False,
    )
    result, _ = _teach(tiny_loaded, tiny_engine, subject_photos, negative_bank, config)
    assert result.subject.threshold == 0.5 and result.metrics["threshold"] == 0.5
    calibrated, _ = _teach(
        tiny_loaded, tiny_engine, subject_photos, negative_bank, replace(config, calibrate_threshold=True)
    )
    assert calibrated.subject.threshold != 0.5  # the held-out split moves it on this data


def test_zoomed_out_views_add_positive_views_of_the_photo_small_on_bank_images(
    tiny_loaded: LoadedModel, tiny_engine: Engine, subject_photos: list[Image.Image], negative_bank: Path
) -> None:
    config = replace(SMALL, epochs=1)
    plain, _ = _teach(tiny_loaded, tiny_engine, subject_photos, negative_bank, config)
    zoomed, _ = _teach(
        tiny_loaded, tiny_engine, subject_photos, negative_bank, replace(config, zoomed_out_views=3)
    )
    train_photos = plain.metrics["train_photos"]
    assert plain.metrics["positive_views"] == train_photos * config.views_per_photo
    assert zoomed.metrics["positive_views"] == train_photos * (config.views_per_photo + 3)


def test_a_zoomed_out_view_shows_the_photo_small_on_the_background() -> None:
    photo = Image.new("RGB", (96, 96), (255, 0, 0))
    view = zoomed_out(photo, Image.new("RGB", (50, 70), (0, 0, 255)), rng=random.Random(3))
    assert view.size == photo.size
    colours = dict((colour, count) for count, colour in view.getcolors())
    share = colours[(255, 0, 0)] / (96 * 96)
    assert 0.45**2 - 0.01 <= share <= 0.7**2 + 0.01 and colours[(0, 0, 255)] == 96 * 96 - colours[(255, 0, 0)]
    with pytest.raises(ValueError, match="zoomed_out_views"):
        TrainConfig(zoomed_out_views=-1)


def test_cancel_stops_within_one_step(
    tiny_loaded: LoadedModel, tiny_engine: Engine, subject_photos: list[Image.Image], negative_bank: Path
) -> None:
    steps: list[int] = []
    subject = new_subject(tiny_loaded, display_name="Bo", kind="dog", k=2)

    def track(progress: TrainingProgress) -> None:
        if progress.phase == "training":
            steps.append(progress.step)

    with pytest.raises(TrainingCancelled):
        Trainer(tiny_engine, FAST).teach(
            subject,
            subject_photos,
            bank=index_bank(negative_bank, tiny_engine),
            progress=track,
            should_stop=lambda: len(steps) >= 3,
        )
    assert steps == [1, 2, 3]
    assert not subject.input_vectors.requires_grad


def test_averaged_epochs_keep_the_mean_of_the_last_epochs_vectors(
    tiny_loaded: LoadedModel, tiny_engine: Engine, subject_photos: list[Image.Image], negative_bank: Path
) -> None:
    config = replace(SMALL, epochs=3, averaged_epochs=2)
    subject = new_subject(tiny_loaded, display_name="Bo", kind="dog", k=4, seed=0)
    at_epoch_end: list[tuple[torch.Tensor, torch.Tensor]] = []

    def snapshot(progress: TrainingProgress) -> None:
        steps_per_epoch = progress.total_steps // config.epochs if progress.total_steps else 0
        if progress.phase == "training" and progress.step % steps_per_epoch == 0:
            at_epoch_end.append(
                (subject.input_vectors.detach().clone(), subject.output_vectors.detach().clone())
            )

    result = Trainer(tiny_engine, config).teach(
        subject, subject_photos, bank=index_bank(negative_bank, tiny_engine), progress=snapshot
    )
    assert len(at_epoch_end) == 3
    assert not torch.equal(at_epoch_end[1][0], at_epoch_end[2][0])  # the vectors did move
    torch.testing.assert_close(result.subject.input_vectors, (at_epoch_end[1][0] + at_epoch_end[2][0]) / 2)
    torch.testing.assert_close(result.subject.output_vectors, (at_epoch_end[1][1] + at_epoch_end[2][1]) / 2)
    assert result.metrics["averaged_epochs"] == 2


def test_negative_views_change_the_negatives_seen_from_the_second_epoch_on(
    tiny_loaded: LoadedModel, tiny_engine: Engine, subject_photos: list[Image.Image], negative_bank: Path
) -> None:
    plain, _ = _teach(tiny_loaded, tiny_engine, subject_photos, negative_bank, SMALL)
    framed, _ = _teach(
        tiny_loaded, tiny_engine, subject_photos, negative_bank, replace(SMALL, negative_views=3)
    )
    steps = len(plain.losses) // SMALL.epochs
    assert len(framed.losses) == len(plain.losses)  # same conversations per epoch
    # Epoch 1 shows every negative as it is; epoch 2 shows each one's mirror instead.
    assert framed.losses[:steps] == pytest.approx(plain.losses[:steps], abs=1e-4)
    assert framed.losses[steps:] != pytest.approx(plain.losses[steps:], abs=1e-4)


def test_cosine_schedule_decays_the_step_size_to_zero() -> None:
    cosine = TrainConfig(learning_rate=0.01, learning_rate_schedule="cosine")
    assert learning_rate_at(cosine, 0, 100) == pytest.approx(0.01)
    assert learning_rate_at(cosine, 50, 100) == pytest.approx(0.005)
    assert learning_rate_at(cosine, 99, 100) < 1e-5
    assert learning_rate_at(TrainConfig(learning_rate=0.01), 99, 100) == 0.01


def test_too_few_photos_is_refused(tiny_loaded: LoadedModel, tiny_engine: Engine) -> None:
    subject = new_subject(tiny_loaded, display_name="Bo", kind="dog", k=2)
    with pytest.raises(NotEnoughPhotos, match="at least 3"):
        Trainer(tiny_engine, FAST).teach(subject, [make_photo(SUBJECT_COLOUR, 1)] * 2, bank=None)


def test_bad_config_names_the_field() -> None:
    with pytest.raises(ValueError, match=r"TrainConfig\.epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match=r"TrainConfig\.holdout_fraction"):
        TrainConfig(holdout_fraction=1.0)
    with pytest.raises(ValueError, match=r"TrainConfig\.learning_rate_schedule"):
        TrainConfig(learning_rate_schedule="linear")
    with pytest.raises(ValueError, match=r"TrainConfig\.averaged_epochs"):
        TrainConfig(epochs=3, averaged_epochs=4)


def test_recipe_fields_are_set_by_name_and_parsed_by_their_type() -> None:
    config = with_assignments(
        TrainConfig(), ["epochs=3", "learning_rate=0.02", "text_qa=false", "answer_style=word"]
    )
    assert (config.epochs, config.learning_rate, config.text_qa, config.answer_style) == (
        3,
        0.02,
        False,
        "word",
    )
    assert with_assignments(TrainConfig(), ["reading_init=Yes"]).reading_init is True
    for bad, message in (
        ("text_qa=maybe", "not true or false"),
        ("epochs=x", "not a number"),
        ("attribute_questions=x", "FIELD one of"),
        ("epochs", "FIELD=VALUE"),
        ("epochs=0", r"TrainConfig\.epochs"),
        ("answer_style=shout", "answer_style"),
    ):
        with pytest.raises(ValueError, match=message):
            with_assignments(TrainConfig(), [bad])


def test_bank_index_is_cached_and_reused(tiny_engine: Engine, negative_bank: Path) -> None:
    first = index_bank(negative_bank, tiny_engine)
    cached = list(negative_bank.glob(".yollava-bank-*.safetensors"))
    assert len(cached) == 1
    mtime = cached[0].stat().st_mtime_ns
    second = index_bank(negative_bank, tiny_engine)
    assert cached[0].stat().st_mtime_ns == mtime
    assert torch.equal(first.embeddings, second.embeddings) and first.paths == second.paths
    hard = first.hard_negatives(second.embeddings[:2], per_query=3)
    assert hard[0] == 0 and len(hard) <= 6


@pytest.mark.parametrize("style", ["sentence", "word"])
def test_recognition_answers_follow_the_answer_style(
    tiny_loaded: LoadedModel, tiny_engine: Engine, style: str
) -> None:
    import random

    subject = new_subject(tiny_loaded, display_name="Bo", kind="dog", k=2, seed=0)
    config = TrainConfig(positive_examples=12, answer_style=style)
    conversations = Trainer(tiny_engine, config)._recognition_conversations(
        subject, positive_views=[0, 1], negative_images=[2, 3, 4], rng=random.Random(0)
    )
    answers = {role: {c.answer for c in conversations if c.role == role} for role in ("positive", "negative")}
    if style == "word":
        assert answers == {"positive": {"Yes"}, "negative": {"No"}}
    else:
        assert all(a.startswith("Yes, ") and subject.identifier in a for a in answers["positive"])
        assert all(a.startswith("No, ") for a in answers["negative"]) and len(answers["positive"]) > 1
    with pytest.raises(ValueError, match="answer_style"):
        TrainConfig(answer_style="shout")


def test_reading_init_starts_the_latent_tokens_at_what_the_model_said_most_often(
    tiny_loaded: LoadedModel, tiny_engine: Engine
) -> None:
    subject = new_subject(tiny_loaded, display_name="Bo", kind="dog", k=8, seed=0)
    before = subject.input_vectors.clone()
    readings = {
        "What colour is the dog?": ["Blue", "red.", "Red", ""],  # "red" twice, after clean-up
        "What is the dog wearing?": ["", ""],  # said nothing: no tokens
        "What pattern is the dog?": ["Striped"],
    }
    Trainer(tiny_engine, TrainConfig(reading_init=True))._initialise_from_readings(subject, readings)
    tokenizer = tiny_loaded.processor.tokenizer
    ids = (
        tokenizer.encode(" red", add_special_tokens=False)
        + tokenizer.encode(" striped", add_special_tokens=False)
    )[:8]
    embedding = tiny_loaded.model.get_input_embeddings().weight.detach().float()
    torch.testing.assert_close(subject.input_vectors[1 : 1 + len(ids)], embedding[ids])
    assert torch.equal(subject.input_vectors[0], before[0]), "the identifier keeps its start"
    assert torch.equal(subject.input_vectors[1 + len(ids) :], before[1 + len(ids) :])


def test_members_are_the_single_runs_of_successive_seeds_on_one_progress_bar(
    tiny_loaded: LoadedModel, tiny_engine: Engine, subject_photos: list[Image.Image], negative_bank: Path
) -> None:
    config = replace(SMALL, calibrate_threshold=False, recognition_threshold=0.45)
    ensemble, reports = _teach(
        tiny_loaded, tiny_engine, subject_photos, negative_bank, replace(config, members=2)
    )
    first, _ = _teach(tiny_loaded, tiny_engine, subject_photos, negative_bank, config)
    second, _ = _teach(tiny_loaded, tiny_engine, subject_photos, negative_bank, replace(config, seed=1))

    bo = ensemble.subject
    assert len(bo.members) == 1
    torch.testing.assert_close(bo.input_vectors, first.subject.input_vectors, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(bo.output_vectors, first.subject.output_vectors, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(bo.members[0][0], second.subject.input_vectors, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(bo.members[0][1], second.subject.output_vectors, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(bo.input_vectors, bo.members[0][0])
    assert ensemble.losses == pytest.approx(first.losses + second.losses, abs=1e-4)

    assert bo.threshold == 0.45 and ensemble.metrics["threshold"] == 0.45
    assert ensemble.metrics["members"] == 2
    assert len(ensemble.metrics["member_heldout_weighted_accuracy"]) == 2
    assert ensemble.metrics["steps"] == len(ensemble.losses)

    training = [r for r in reports if r.phase == "training"]
    assert [r.step for r in training] == list(range(1, len(ensemble.losses) + 1))
    assert {r.total_steps for r in training} == {len(ensemble.losses)}
    assert [r.epoch for r in training][-1] == 2 * SMALL.epochs == training[-1].epochs
    assert any("(model 2 of 2)" in r.message for r in reports if r.phase == "preparing")
    assert reports[-1].phase == "done" and reports[-1].step == reports[-1].total_steps

    photo = subject_photos[0]
    views = bo.member_views()
    alone = [tiny_engine.recognize(photo, view).probability for view in views]
    assert tiny_engine.recognize(photo, bo).probability == pytest.approx(sum(alone) / 2, abs=1e-5)


def test_members_and_threshold_are_checked() -> None:
    with pytest.raises(ValueError, match="members"):
        TrainConfig(members=0)
    with pytest.raises(ValueError, match="recognition_threshold"):
        TrainConfig(recognition_threshold=1.0)
    assert with_assignments(TrainConfig(), ["members=3", "recognition_threshold=0.4"]) == TrainConfig(
        members=3, recognition_threshold=0.4
    )


def test_members_ask_the_frozen_model_about_each_photo_once(
    tiny_loaded: LoadedModel,
    tiny_engine: Engine,
    subject_photos: list[Image.Image],
    negative_bank: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The frozen model's replies about a photo do not depend on the member training on it:
    three members must not ask about the same photo three times."""
    asked: list[tuple[int, str]] = []
    answer = tiny_engine.answer

    def counting(question: str, image: Image.Image | None = None, **kwargs: object) -> str:
        asked.append((id(image), question))
        return answer(question, image=image, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(tiny_engine, "answer", counting)
    config = replace(SMALL, text_qa=True, members=3, epochs=1)
    _teach(tiny_loaded, tiny_engine, subject_photos, negative_bank, config)

    questions = len(config.attribute_questions)
    assert len(asked) == len(set(asked)), "a photo was asked the same question twice"
    assert len(asked) <= len(subject_photos) * questions
    # Every training photo of every member was asked about (at seeds 0-2 all three members
    # happen to hold out the same photo of five, so that is four photos here).
    assert len(asked) >= (len(subject_photos) - 1) * questions
