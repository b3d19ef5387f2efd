"""Pretraining's pieces: dense patch labels, ideal image tokens, and a whole (tiny) run."""

import itertools
import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pytest
import torch

import personalization.toyworld.pretrain as module
import personalization.toyworld.vision_warmup as warmup
from personalization.modeling import TinyLlavaSpec, build_llava, build_processor, load_model
from personalization.toyworld.corpus import (
    ANSWER_FORMS,
    COMPARISON_FORMS,
    DIRECT_MARK,
    LESSON_TOPICS,
    Conversation,
    comparison_turn,
    contrast_pair,
    conversations,
    lesson,
    lessons,
    random_scene_entities,
)
from personalization.toyworld.pretrain import (
    FINISHING_CHOICES,
    FINISHING_STAGES,
    REBINDING_STAGE,
    FinishingStage,
    PretrainConfig,
    answer,
    attribute_word_ids,
    build_toy_tokenizer,
    config_with,
    conversation_length,
    finishing_stages,
    generic_qa_report,
    grouped_batches,
    ideal_image_tokens,
    pretrain,
    save_model,
)
from personalization.toyworld.vision_warmup import (
    ATTRIBUTE_CLASSES,
    IGNORE,
    PatchHeads,
    VisionWarmupConfig,
    patch_labels,
    patch_weights,
    replace_in_pool,
    vision_scene,
)
from personalization.toyworld.world import COLOURS, KINDS, PATTERNS, EntitySpec, accessory_phrase


def _owner_map() -> np.ndarray:
    """A 24×24 map in 12-px patches: patch 0 shows entity 1, patch 3 entity 2, the rest nothing."""
    owner_map = np.zeros((24, 24), dtype=np.uint8)
    owner_map[:12, :12] = 1
    owner_map[12:, 12:] = 2
    return owner_map


DOG = EntitySpec("dog", "red", "striped", "hat", shade="dark", marking="back", variant=1)
MUG = EntitySpec("mug", "blue", "plain", "none", shade="medium", marking="head", variant=0)


def test_patch_labels_name_the_entity_on_each_patch_and_background_elsewhere() -> None:
    labels = patch_labels([DOG, MUG], np.array([1, 0, 0, 2]))
    columns = list(ATTRIBUTE_CLASSES)
    assert labels[0, columns.index("kind")] == KINDS.index("dog")
    assert labels[0, columns.index("colour")] == list(COLOURS).index("red")
    assert labels[0, columns.index("variant")] == 1
    assert labels[3, columns.index("kind")] == KINDS.index("mug")
    assert labels[1, columns.index("kind")] == len(KINDS)
    assert (labels[1, 1:] == IGNORE).all()


def test_entity_kind_accuracy_ignores_background_and_its_weight_adds_the_entity_kind_loss() -> None:
    torch.manual_seed(0)
    heads = PatchHeads(8)
    labels = patch_labels([DOG, MUG], np.array([1, 0, 0, 2]))[None]
    features = torch.randn(1, 4, 8)
    kind = heads.attributes["kind"]
    with torch.no_grad():
        # Every patch is called a dog: right on patch 0 only, of the two entity patches.
        kind.weight.zero_()
        kind.bias.zero_()
        kind.bias[KINDS.index("dog")] = 5.0
    counts = torch.tensor([2])
    plain, accuracy = heads.loss(features, labels, counts)
    weighted, _ = heads.loss(features, labels, counts, entity_kind_weight=2.0)
    assert accuracy["entity_kind"] == pytest.approx(0.5)
    assert accuracy["kind"] == pytest.approx(0.25)  # background patches count there
    entity_logits = kind(features[0, [0, 3]])
    truth = torch.tensor([KINDS.index("dog"), KINDS.index("mug")])
    extra = torch.nn.functional.cross_entropy(entity_logits, truth)
    assert float((weighted - plain).detach()) == pytest.approx(2.0 * float(extra.detach()), rel=1e-5)
    with pytest.raises(ValueError, match="entity_kind_weight"):
        VisionWarmupConfig(entity_kind_weight=-1.0)


def test_entity_balance_gives_every_entity_the_same_share_of_the_attribute_loss() -> None:
    # The dog covers three patches, the mug one, the last patch is background.
    labels = patch_labels([DOG, MUG], np.array([1, 1, 1, 2, 0]))[None]
    balanced = patch_weights(labels, 1.0)[0]
    assert balanced[:3].sum() == pytest.approx(float(balanced[3]))
    assert float(balanced[:4].mean()) == pytest.approx(1.0)
    assert float(balanced[4]) == 1.0
    assert patch_weights(labels, 0.0)[0].tolist() == pytest.approx([1.0] * 5)
    torch.manual_seed(0)
    heads = PatchHeads(8).requires_grad_(False)
    features, counts = torch.randn(1, 5, 8), torch.tensor([2])
    plain, _ = heads.loss(features, labels, counts, entity_kind_weight=2.0)
    unbalanced, _ = heads.loss(features, labels, counts, entity_kind_weight=2.0, entity_balance=0.0)
    halfway, _ = heads.loss(features, labels, counts, entity_kind_weight=2.0, entity_balance=0.5)
    assert float(unbalanced) == float(plain)
    # The colour loss by hand: the mug's one patch weighs as much as the dog's three.
    colour = list(ATTRIBUTE_CLASSES).index("colour")
    losses = torch.nn.functional.cross_entropy(
        heads.attributes["colour"](features[0, :4]), labels[0, :4, colour], reduction="none"
    )
    weight = balanced[:4]
    by_hand = float((losses * weight).sum() / weight.sum())
    assert by_hand == pytest.approx(float((losses[:3].mean() + losses[3]) / 2), rel=1e-5)
    assert float(halfway) != pytest.approx(float(plain))
    with pytest.raises(ValueError, match="entity_balance"):
        VisionWarmupConfig(entity_balance=-0.5)


def test_vision_scenes_follow_the_crowded_share_with_distinct_kinds() -> None:
    rng = random.Random(3)
    alone = [len(vision_scene(rng, 0.0)) for _ in range(50)]
    crowded = [vision_scene(rng, 1.0, three_share=0.25) for _ in range(400)]
    assert set(alone) == {1}
    assert {len(entities) for entities in crowded} == {2, 3}
    assert 0.15 < sum(len(entities) == 3 for entities in crowded) / 400 < 0.35
    assert all(len({e.kind for e in entities}) == len(entities) for entities in crowded)
    mixed = [len(vision_scene(rng, 0.7)) for _ in range(1000)]
    assert 0.25 < mixed.count(1) / 1000 < 0.35
    with pytest.raises(ValueError, match="crowded_share"):
        VisionWarmupConfig(crowded_share=1.5)


def test_ideal_tokens_sum_the_attribute_words_of_each_patch_and_are_zero_on_background() -> None:
    tokenizer = build_toy_tokenizer(0)
    word_ids = attribute_word_ids(tokenizer)
    assert {"dog", "red", "striped", "hat", "dark", "back", "floppy"} <= set(word_ids)
    embeddings = torch.randn(len(tokenizer), 16, generator=torch.Generator().manual_seed(0))
    batch = [
        Conversation(image=None, turns=[("Hi?", "Hello")]),
        Conversation(image=object(), turns=[], entities=[DOG, MUG], owners=_owner_map()),  # type: ignore[arg-type]
    ]
    tokens = ideal_image_tokens(batch, embeddings, word_ids, patch_size=12)
    assert tokens.shape == (1, 4, 16)  # the text-only example has no image tokens

    def word(w: str) -> torch.Tensor:
        return embeddings[word_ids[w]].mean(dim=0)

    dog = sum(word(w) for w in ("dog", "red", "striped", "hat", "dark", "back", "floppy"))
    mug = sum(word(w) for w in ("mug", "blue", "plain", "medium", "head", "round"))  # no word for "none"
    torch.testing.assert_close(tokens[0, 0], dog)
    torch.testing.assert_close(tokens[0, 3], mug)
    assert tokens[0, 1].abs().sum() == 0 and tokens[0, 2].abs().sum() == 0


def test_ideal_tokens_refuse_images_without_an_owner_map() -> None:
    tokenizer = build_toy_tokenizer(0)
    batch = [Conversation(image=object(), turns=[])]  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="owner map"):
        ideal_image_tokens(batch, torch.zeros(len(tokenizer), 4), attribute_word_ids(tokenizer), 12)


@pytest.mark.parametrize("topic", LESSON_TOPICS)
def test_lessons_ask_about_what_the_image_shows(topic: str) -> None:
    rng = random.Random(4)
    for _ in range(20):
        conversation = lesson(rng, topic)
        assert conversation.image is not None and conversation.entities is not None
        kinds = [entity.kind for entity in conversation.entities]
        assert len(kinds) == len(set(kinds))
        assert {
            "reading": {1},
            "binding": {2, 3},
            "spotting": {1, 2, 3},
            "comparison": {1, 2, 3},
            "checking": {1, 2, 3},
            "existence": {1, 2, 3},
        }[topic] >= {len(kinds)}
        for question, reply in conversation.turns:
            if topic in ("comparison", "existence"):
                assert reply in ("Yes", "No")
            elif topic in ("checking", "spotting"):
                assert reply.rstrip(".").split()[-1] in ("Yes", "No")
                if topic == "spotting":
                    assert question.startswith("Is there a") and reply.startswith(("The ", "There is no "))
            else:
                assert any(kind in question for kind in kinds) or question.startswith("What")


@pytest.mark.parametrize("answers", ANSWER_FORMS)
def test_comparison_questions_are_balanced_and_answered_by_the_named_attributes(answers: str) -> None:
    rng = random.Random(8)
    decisions: dict[str, list[str]] = {form: [] for form in COMPARISON_FORMS}
    for index in range(400):
        entities = random_scene_entities(rng)
        form = COMPARISON_FORMS[index % 2]
        question, reply = comparison_turn(entities, rng, form=form, answers=answers)
        decision = reply.rstrip(".").split()[-1]
        decisions[form].append(decision)
        kind = next(k for k in KINDS if f" {k}" in question)
        shown = [e for e in entities if e.kind == kind]
        if form == "colour":
            colour = question.removeprefix("Is there ").split()[1]
            truth = any(e.colour == colour for e in shown)
        else:
            truth = any(
                f"{e.colour} {e.pattern} {kind} with " in question
                and question.split(" with ")[1].startswith(
                    "no accessory" if e.accessory == "none" else accessory_phrase(e.accessory)
                )
                for e in shown
            )
        assert decision == ("Yes" if truth else "No"), (question, reply, entities)
        if answers == "direct":
            assert reply in ("Yes", "No")
        elif not shown:
            assert reply == f"There is no {kind}. No."
        elif answers == "reading-first":
            assert reply.startswith(f"The {kind} is {shown[0].colour}")
        else:
            assert reply.startswith(f"The {kind}: {shown[0].colour} ")
            assert (" not " in reply) == (decision == "No"), reply
    for form, said in decisions.items():
        assert 0.4 < said.count("Yes") / len(said) < 0.6, form


def _fits_description(entity: EntitySpec, description: str) -> tuple[bool, int]:
    """Does ``entity`` fit ``a red striped dog with a hat`` (any named attribute may be left out)?
    Also returns how many named attributes the description gives."""
    kind = next(k for k in KINDS if f" {k}" in f" {description}")
    before, _, after = description.partition(f" {kind}")
    words = before.split()[1:]  # drop the article
    colours = [w for w in words if w in COLOURS]
    patterns = [w for w in words if w in PATTERNS]
    wearing = after.removeprefix(" with ") if after else None
    worn = "no accessory" if entity.accessory == "none" else accessory_phrase(entity.accessory)
    fits = (
        entity.kind == kind
        and all(entity.colour == c for c in colours)
        and all(entity.pattern == p for p in patterns)
        and wearing in (None, worn)
    )
    return fits, len(colours) + len(patterns) + (wearing is not None)


def test_partial_descriptions_name_one_to_three_attributes_and_are_answered_by_them() -> None:
    rng = random.Random(9)
    sizes: list[int] = []
    decisions: list[str] = []
    for _ in range(400):
        entities = random_scene_entities(rng)
        question, reply = comparison_turn(entities, rng, form="partial", answers="checked")
        description = question.split(" is ", 1)[1].split(". Is ")[0]
        fitting = [_fits_description(e, description) for e in entities]
        sizes.append(fitting[0][1])
        decision = reply.rstrip(".").split()[-1]
        decisions.append(decision)
        assert decision == ("Yes" if any(f for f, _ in fitting) else "No"), (question, reply, entities)
        if not reply.startswith("There is no"):
            assert reply.count(" yes") + reply.count(" not ") == sizes[-1], reply
    assert {0, 1, 2, 3} == set(sizes)
    assert 0.4 < decisions.count("Yes") / len(decisions) < 0.6


def test_checking_lessons_mark_the_direct_questions_and_check_the_others() -> None:
    rng = random.Random(11)
    direct = checked = 0
    for _ in range(60):
        for question, reply in lesson(rng, "checking").turns:
            if question.endswith(DIRECT_MARK):
                direct += 1
                assert reply in ("Yes", "No"), (question, reply)
            else:
                checked += 1
                assert reply.startswith(("The ", "There is no ")) and reply.endswith((" Yes.", " No.")), reply
    assert direct > 40 and checked > 40


def test_comparison_refuses_an_unknown_form() -> None:
    entities = random_scene_entities(random.Random(0))
    with pytest.raises(ValueError, match="form"):
        comparison_turn(entities, random.Random(0), form="shade")
    with pytest.raises(ValueError, match="answers"):
        comparison_turn(entities, random.Random(0), answers="maybe")


def test_contrast_pairs_ask_the_same_questions_and_only_the_image_decides() -> None:
    rng = random.Random(6)
    for _ in range(30):
        present, absent = contrast_pair(rng)
        assert [q for q, _ in present.turns] == [q for q, _ in absent.turns]
        assert {a for _, a in present.turns} == {"Yes"}
        assert {a for _, a in absent.turns} == {"No"}
        assert present.image is not None and absent.image is not None
        assert present.image.tobytes() != absent.image.tobytes()


def test_the_contrast_stream_yields_both_halves_in_a_row() -> None:
    stream = lessons(0, "contrast")
    first, second = next(stream), next(stream)
    assert [q for q, _ in first.turns] == [q for q, _ in second.turns]
    assert first.turns[0][1] != second.turns[0][1]


def test_lessons_refuse_an_unknown_topic() -> None:
    with pytest.raises(ValueError, match="topic"):
        lesson(random.Random(0), "counting")


def test_comparison_lessons_are_interleaved_in_the_corpus_when_asked() -> None:
    config = PretrainConfig(
        steps=20, reading_steps=2, binding_steps=1, comparison_steps=2, comparison_every=3
    )
    topics = [config.topic_at(step) for step in range(config.steps)]
    assert topics[:5] == ["reading", "reading", "binding", "comparison", "comparison"]
    corpus = topics[5:]
    assert corpus == [None, None, "comparison"] * 5
    plain = PretrainConfig(steps=20, reading_steps=2, binding_steps=1, comparison_steps=2, binding_every=0)
    assert [plain.topic_at(step) for step in range(5, 20)] == [None] * 15
    checking = PretrainConfig(
        steps=12, reading_steps=2, binding_steps=0, checking_steps=2, comparison_every=4, binding_every=0
    )
    assert [checking.topic_at(step) for step in range(4, 12)] == [None, None, None, "checking"] * 2
    both = PretrainConfig(steps=14, reading_steps=2, binding_steps=0, comparison_every=4, binding_every=3)
    assert [both.topic_at(step) for step in range(2, 14)] == [
        *(None, None, "binding", "comparison", None, "binding"),
        *(None, "comparison", "binding", None, None, "comparison"),
    ]
    with pytest.raises(ValueError, match="comparison_every"):
        PretrainConfig(comparison_every=-1)
    with pytest.raises(ValueError, match="binding_every"):
        PretrainConfig(binding_every=-1)


def test_pretrain_settings_can_be_overridden_by_name() -> None:
    config = config_with(PretrainConfig(), ["comparison_steps=400", "vision_entity_kind_weight=2"])
    assert (config.comparison_steps, config.vision_entity_kind_weight) == (400, 2.0)
    assert isinstance(config.comparison_steps, int) and isinstance(config.vision_entity_kind_weight, float)
    for bad, message in (("nope=1", "FIELD one of"), ("steps=x", "not a number"), ("steps", "FIELD=VALUE")):
        with pytest.raises(ValueError, match=message):
            config_with(PretrainConfig(), [bad])
    with pytest.raises(ValueError, match="add up to more than"):
        config_with(PretrainConfig(), ["comparison_steps=5000"])
    for bad, message in (
        ("fresh_scene_share=0", "fresh_scene_share"),
        ("fresh_scene_share=1.2", "fresh_scene_share"),
        ("vision_fresh_per_step=-1", "vision_fresh_per_step"),
        ("attention=flash", "attention='flash' must be one of eager, sdpa"),
    ):
        with pytest.raises(ValueError, match=message):
            config_with(PretrainConfig(), [bad])
    assert config_with(PretrainConfig(), ["attention=eager"]).attention == "eager"


def test_a_tiny_pretraining_run_saves_a_model_that_loads_and_answers(tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = PretrainConfig(
        steps=9,
        reading_steps=1,
        binding_steps=1,
        comparison_steps=1,
        comparison_every=2,
        checking_steps=1,
        existence_steps=1,
        contrast_steps=2,
        vision_steps=2,
        vision_batch_size=4,
        vision_pool_size=8,
        vision_entity_kind_weight=1.0,
        batch_size=2,
        warmup_steps=1,
        max_turns=2,
        attention="eager",
    )
    seen: list[tuple[int, int, float]] = []
    result = pretrain(tmp_path, seed=0, minutes_budget=10, config=config, progress=lambda *a: seen.append(a))
    assert result.steps_done == 9 and not result.stopped_by_budget
    assert np.isfinite(result.final_loss)
    assert set(result.vision_probe_accuracy) == {*ATTRIBUTE_CLASSES, "entity_kind"}
    assert seen[-1][:2] == (11, 11)
    loaded = load_model(str(tmp_path), device="cpu", dtype=torch.float32)
    assert loaded.conventions.yes_no_suffix == DIRECT_MARK, "checking lessons teach the mark"
    # Trained with eager attention, saved without that choice: it loads with the default.
    assert loaded.model.config.text_config._attn_implementation == "sdpa"
    image = lesson(random.Random(0), "reading").image
    assert isinstance(answer(loaded, image, "What colour is the dog?", max_new_tokens=2), str)
    report = generic_qa_report(loaded, n_scenes=1, seed=3)
    assert {"colour", "named", "fine", "comparison", "comparison_marked"} <= set(report)
    assert all(0 <= value <= 1 for value in report.values())
    crowds = [key for key in report if key.startswith("named_")]
    assert len(crowds) == 1 and report[crowds[0]] == report["named"], "one scene: its split is the whole"


def test_fresh_scenes_replace_pool_slots_as_if_written_in_order() -> None:
    # A slot drawn twice in one step must keep its later scene, whatever the threads do: the
    # plain indexed assignment mixed the two on nearly every try with 2 threads.
    torch.set_num_threads(2)
    slots = torch.tensor([0, 1, 0, 2, 1, 0, 3, 0, 0, 1, 2, 0, 0, 1, 0, 0])
    pixels = torch.arange(16.0).view(16, 1, 1, 1).expand(16, 3, 96, 96).contiguous()
    labels = torch.arange(16).view(16, 1).expand(16, 64).contiguous()
    expected = (torch.full((8, 3, 96, 96), -1.0), torch.full((8, 64), -1))
    for position, slot in enumerate(slots.tolist()):
        expected[0][slot] = pixels[position]
        expected[1][slot] = labels[position]
    for _ in range(20):
        pool = (torch.full((8, 3, 96, 96), -1.0), torch.full((8, 64), -1))
        replace_in_pool(pool, slots, (pixels, labels))
        assert torch.equal(pool[0], expected[0]) and torch.equal(pool[1], expected[1])


_RUN_AND_HASH = """
import hashlib, sys
from pathlib import Path
from safetensors.torch import load_file
from personalization.toyworld.pretrain import PretrainConfig, pretrain
config = PretrainConfig(steps=3, reading_steps=1, binding_steps=1, vision_steps=4, vision_batch_size=4,
                        vision_pool_size=6, batch_size=2, warmup_steps=1, max_turns=2)
pretrain(Path(sys.argv[1]), seed=0, minutes_budget=10, config=config)
weights = load_file(Path(sys.argv[1]) / "model.safetensors")
digest = hashlib.sha256()
for name in sorted(weights):
    digest.update(weights[name].float().numpy().tobytes())
print(digest.hexdigest())
"""


def test_a_pretraining_run_is_repeated_exactly_by_a_new_process(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # The tower's pool (6 slots, 16 fresh scenes a step) gets repeated slots every step, and the
    # two processes hash strings differently: neither may change a single weight.
    digests = []
    for run in range(2):
        environment = {**os.environ, "PYTHONHASHSEED": str(run + 1)}
        done = subprocess.run(
            [sys.executable, "-c", _RUN_AND_HASH, str(tmp_path / f"run{run}")],
            capture_output=True,
            text=True,
            env=environment,
            timeout=300,
            check=True,
        )
        digests.append(done.stdout.split()[-1])
    assert digests[0] == digests[1]


TINY_MAIN = PretrainConfig(
    steps=4,
    reading_steps=1,
    binding_steps=1,
    binding_every=0,
    vision_steps=2,
    vision_batch_size=4,
    vision_pool_size=8,
    batch_size=2,
    warmup_steps=1,
    max_turns=2,
)


def test_a_saved_model_is_trained_further_without_touching_its_tower(tmp_path) -> None:  # type: ignore[no-untyped-def]
    tiny = {"batch_size": 2, "warmup_steps": 1, "max_turns": 2, "binding_every": 0}
    first = tmp_path / "first"
    pretrain(first, seed=0, minutes_budget=10, config=replace(TINY_MAIN, steps=2))
    seen: list[tuple[int, int, float]] = []
    result = pretrain(
        tmp_path / "further",
        seed=1,
        minutes_budget=10,
        config=PretrainConfig(steps=3, reading_steps=0, binding_steps=0, checking_steps=3, **tiny),  # type: ignore[arg-type]
        progress=lambda *a: seen.append(a),
        start_from=first,
    )
    assert result.steps_done == 3 and result.vision_probe_accuracy == {}
    assert seen[-1][:2] == (3, 3), "no tower steps are counted"
    # The weights are bfloat16, and every part of the saved config says so (a model loaded to
    # train further kept "float32" in its text and vision configs).
    saved = json.loads((tmp_path / "further" / "config.json").read_text())
    dtypes = [saved.get("dtype"), *(saved[part].get("dtype") for part in ("text_config", "vision_config"))]
    assert dtypes == ["bfloat16"] * 3, dtypes
    # Nor does it keep how its processor was loaded ("is_local": true was saved with it).
    tokenizer_config = json.loads((tmp_path / "further" / "tokenizer_config.json").read_text())
    assert not {"is_local", "local_files_only"} & set(tokenizer_config), tokenizer_config
    before = load_model(str(first), device="cpu", dtype=torch.float32).model
    after = load_model(str(tmp_path / "further"), device="cpu", dtype=torch.float32)
    assert after.conventions.yes_no_suffix == DIRECT_MARK
    tower_before = before.model.vision_tower.state_dict()
    for name, value in after.model.model.vision_tower.state_dict().items():
        assert torch.equal(value, tower_before[name]), name
    projector_before = before.model.multi_modal_projector.state_dict()
    assert any(
        not torch.equal(value, projector_before[name])
        for name, value in after.model.model.multi_modal_projector.state_dict().items()
    )


def test_training_further_refuses_a_model_of_another_geometry(tmp_path) -> None:  # type: ignore[no-untyped-def]
    tokenizer = build_toy_tokenizer(0)
    spec = TinyLlavaSpec()  # 32-px images, unlike the toy world's 96
    save_model(
        build_llava(tokenizer, spec),
        build_processor(tokenizer, image_size=spec.image_size, patch_size=spec.patch_size),
        tmp_path / "other",
    )
    with pytest.raises(ValueError, match="patches"):
        pretrain(tmp_path / "out", seed=0, minutes_budget=1, start_from=tmp_path / "other")
    with pytest.raises(ValueError, match="cannot load"):
        pretrain(tmp_path / "out", seed=0, minutes_budget=1, start_from=tmp_path / "missing")


def test_batches_group_examples_of_similar_length_and_lose_none() -> None:
    stream = [c for c, _ in zip(conversations(0), range(24), strict=False)]
    expected = sorted(tuple(c.turns[:3]) for c in stream)
    batches = grouped_batches(conversations(0), 6, max_turns=3, groups=4, rng=random.Random(1))
    drawn = [next(batches) for _ in range(4)]
    assert [len(batch) for batch in drawn] == [6, 6, 6, 6]
    assert sorted(tuple(c.turns) for batch in drawn for c in batch) == expected
    spans = sorted((min(map(conversation_length, b)), max(map(conversation_length, b))) for b in drawn)
    assert all(low_next >= high for (_, high), (low_next, _) in itertools.pairwise(spans))
    assert [c.turns for c in drawn[0]] != [c.turns[:3] for c in stream[:6]], "batches come out shuffled"
    in_order = grouped_batches(conversations(0), 6, max_turns=3, groups=1, rng=random.Random(1))
    assert [c.turns for c in next(in_order)] == [c.turns[:3] for c in stream[:6]]
    with pytest.raises(ValueError, match="groups"):
        next(grouped_batches(conversations(0), 6, max_turns=3, groups=0, rng=random.Random(1)))


def _finishing(steps: int) -> tuple[FinishingStage, ...]:
    config = PretrainConfig(
        steps=steps, reading_steps=0, binding_steps=0, checking_steps=2, binding_every=0,
        batch_size=2, warmup_steps=1, max_turns=2,
    )  # fmt: skip
    return (FinishingStage("check", config, seed_offset=5),)


def test_finishing_stages_train_the_same_model_after_the_main_run(tmp_path) -> None:  # type: ignore[no-untyped-def]
    seen: list[tuple[int, int, float]] = []
    result = pretrain(
        tmp_path,
        seed=0,
        minutes_budget=10,
        config=TINY_MAIN,
        finishing=_finishing(3),
        progress=lambda *a: seen.append(a),
    )
    assert [(s.name, s.steps_done, s.steps) for s in result.stages] == [("main", 4, 4), ("check", 3, 3)]
    assert result.steps_done == 7 and not result.stopped_by_budget
    assert seen[-1][:2] == (9, 9), "tower steps, then every stage's steps, on one count"
    assert (
        load_model(str(tmp_path), device="cpu", dtype=torch.float32).conventions.yes_no_suffix == DIRECT_MARK
    )


def test_a_finishing_stage_named_twice_trains_twice(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = pretrain(tmp_path, seed=0, minutes_budget=10, config=TINY_MAIN, finishing=_finishing(2) * 2)
    assert [(s.name, s.steps_done) for s in result.stages] == [("main", 4), ("check", 2), ("check", 2)]
    assert result.steps_done == 8


def test_the_main_run_leaves_the_finishing_stages_their_time(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Four main steps take well under a second, but the thousand finishing steps after them
    # would not fit in 6 s at that pace: the main run stops at once and the finishing stage
    # gets what is left.
    result = pretrain(tmp_path, seed=0, minutes_budget=0.1, config=TINY_MAIN, finishing=_finishing(1000))
    main, finishing = result.stages
    assert main.stopped_by_budget and main.steps_done <= 1
    assert finishing.stopped_by_budget and finishing.steps_done < 1000
    assert (tmp_path / "model.safetensors").exists(), "what was trained is saved"


def test_scene_reuse_is_the_runs_choice_for_every_stage_and_the_tower(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    shares: list[float] = []
    real_conversations, real_lessons = module.conversations, module.lessons

    def spy_conversations(seed: int, fresh_share: float = 1.0) -> Iterator[Conversation]:
        shares.append(fresh_share)
        return real_conversations(seed, fresh_share)

    def spy_lessons(seed: int, topic: str, fresh_share: float = 1.0) -> Iterator[Conversation]:
        shares.append(fresh_share)
        return real_lessons(seed, topic, fresh_share)

    fresh_per_step: list[int] = []
    real_later = warmup.later_scenes

    def spy_later(state: object, config: warmup.VisionWarmupConfig, patch_size: int):  # type: ignore[no-untyped-def]
        fresh_per_step.append(config.fresh_per_step)
        return real_later(state, config, patch_size)

    monkeypatch.setattr(module, "conversations", spy_conversations)
    monkeypatch.setattr(module, "lessons", spy_lessons)
    monkeypatch.setattr(warmup, "later_scenes", spy_later)
    config = replace(TINY_MAIN, fresh_scene_share=0.5, vision_fresh_per_step=3)
    result = pretrain(tmp_path, seed=0, minutes_budget=10, config=config, finishing=_finishing(2))
    assert [s.steps_done for s in result.stages] == [4, 2]
    assert shares and set(shares) == {0.5}, "the finishing stage draws its scenes as the run says"
    assert fresh_per_step == [3]


def test_finishing_stages_are_chosen_by_name_in_the_order_given() -> None:
    assert finishing_stages("spotting,checking,corpus,rebinding,corpus") == FINISHING_STAGES
    chosen = finishing_stages(" rebinding , spotting")
    assert [stage.name for stage in chosen] == ["rebinding", "spotting"]
    assert chosen[0] == REBINDING_STAGE
    rebinding = chosen[0].config
    assert {topic: steps for topic, steps in rebinding.lesson_plan if steps} == {"binding": 150}
    assert rebinding.binding_ideal_share == 0.0 and rebinding.steps == 150, (
        "every image on the projector's tokens"
    )
    offsets = [stage.seed_offset for stage in FINISHING_CHOICES.values()]
    assert len(set(offsets)) == len(offsets), "each stage draws its own streams"
    with pytest.raises(ValueError, match=r"unknown finishing stage.*polishing"):
        finishing_stages("spotting,polishing")
    again = finishing_stages("corpus,rebinding,corpus")
    assert again[0] == again[2] == FINISHING_STAGES[2], "a stage named again runs again, as it is"


def test_a_finishing_stage_takes_overrides_of_its_own_settings() -> None:
    (spotting,) = finishing_stages("spotting:binding_ideal_share=0:steps=200:spotting_steps=200")
    default = FINISHING_STAGES[0]
    assert spotting.name == default.name and spotting.seed_offset == default.seed_offset
    assert (spotting.config.binding_ideal_share, spotting.config.steps, spotting.config.spotting_steps) == (
        0,
        200,
        200,
    )
    assert spotting.config.ideal_share == default.config.ideal_share, "what is not named stays"
    with pytest.raises(ValueError, match=r"finishing stage spotting: .*steps=10"):
        finishing_stages("spotting:steps=10")  # fewer steps than its 300 lessons
    with pytest.raises(ValueError, match=r"finishing stage corpus: .*FIELD=VALUE"):
        finishing_stages("corpus:colour=red")


def test_finishing_stages_alone_train_a_saved_model(tmp_path) -> None:  # type: ignore[no-untyped-def]
    first = tmp_path / "first"
    pretrain(first, seed=0, minutes_budget=10, config=replace(TINY_MAIN, steps=2))
    result = pretrain(
        tmp_path / "finished",
        seed=0,
        minutes_budget=10,
        start_from=first,
        finishing=_finishing(2),
        main_stage=False,
    )
    assert [(s.name, s.steps_done) for s in result.stages] == [("check", 2)], "no main stage ran"
    with pytest.raises(ValueError, match="start from"):
        pretrain(tmp_path / "none", seed=0, minutes_budget=1, start_from=first, main_stage=False)
    with pytest.raises(ValueError, match="start from"):
        pretrain(tmp_path / "none", seed=0, minutes_budget=1, finishing=_finishing(2), main_stage=False)
    # The command: --steps 0 runs only the stages named, and the report says what it started from.
    (first / "pretrain_report.json").write_text(json.dumps({"stages": [{"name": "main"}]}))
    tiny = "checking:steps=2:checking_steps=2:batch_size=2:max_turns=2:warmup_steps=1"
    argv = ["--from", str(first), "--steps", "0", "--finishing", tiny, "--eval-scenes", "0"]
    assert module.main([*argv, "--out", str(tmp_path / "cli")]) == 0
    report = json.loads((tmp_path / "cli" / "pretrain_report.json").read_text())
    assert [stage["name"] for stage in report["stages"]] == ["checking"] and report["main_stage"] is False
    assert report["started_from_report"] == {"stages": [{"name": "main"}]}
    assert report["finishing"][0]["config"]["steps"] == 2


@pytest.mark.parametrize(
    "argv",
    [
        ["--steps", "0"],
        ["--steps", "0", "--finishing", "spotting"],
        ["--from", "somewhere", "--steps", "0", "--no-finishing"],
        ["--finishing", "spotting", "--no-finishing"],
        ["--finishing", "polishing"],
    ],
)
def test_the_command_refuses_finishing_options_that_contradict(argv: list[str], tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as exit_info:
        module.main([*argv, "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert "error" in capsys.readouterr().err
    assert not (tmp_path / "out").exists(), "nothing was trained"
