"""The generic corpus: balanced yes/no, no subjects, and the chat format the processor uses."""

import itertools
import random

import numpy as np
import pytest
from PIL import Image

from personalization.modeling import build_processor, train_tokenizer
from personalization.toyworld.corpus import (
    Conversation,
    ScenePool,
    attribute_questions,
    conversations,
    corpus_texts,
    encode_conversation,
    image_turns,
    lesson,
    lessons,
    make_conversation,
    random_scene_entities,
)
from personalization.toyworld.world import KINDS


def test_existence_answers_are_balanced_yes_and_no() -> None:
    rng = random.Random(0)
    answers = [
        answer
        for _ in range(300)
        for _question, answer in image_turns(random_scene_entities(rng), rng, max_turns=20)
        if answer in ("Yes", "No")
    ]
    share_yes = answers.count("Yes") / len(answers)
    assert len(answers) > 500
    assert 0.4 < share_yes < 0.6


def test_corpus_never_mentions_a_subject_tag() -> None:
    for text in corpus_texts(seed=1, n=300):
        assert "<" not in text.replace("</s>", "")


@pytest.mark.parametrize("kind", KINDS)
def test_attribute_questions_name_the_kind(kind: str) -> None:
    questions = attribute_questions(kind)
    assert len(questions) >= 3
    assert all(kind in q for q in questions[:3])


def test_conversations_are_deterministic_for_a_seed() -> None:
    first = make_conversation(random.Random(4), text_only_probability=0.0)
    again = make_conversation(random.Random(4), text_only_probability=0.0)
    assert first.turns == again.turns
    assert first.image is not None and again.image is not None
    assert first.image.tobytes() == again.image.tobytes()


def test_encoding_matches_the_processor_and_labels_only_answers() -> None:
    tokenizer = train_tokenizer(corpus_texts(seed=0, n=200), vocab_size=400)
    processor = build_processor(tokenizer, image_size=96, patch_size=12)
    image = Image.new("RGB", (96, 96), (200, 30, 30))
    question, reply = "What colour is the dog?", "Red"
    prompt = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}],
        add_generation_prompt=True,
    )
    expected = processor(images=[image], text=prompt, return_tensors="pt")["input_ids"][0].tolist()

    encoded = encode_conversation(
        Conversation(image, [(question, reply)]),
        lambda text: tokenizer.encode(text, add_special_tokens=False),
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        image_token_count=64,
        eos_token_id=tokenizer.eos_token_id,
    )
    assert encoded.input_ids[: len(expected)] == expected
    answer_ids = [t for t in encoded.labels if t != -100]
    assert tokenizer.decode(answer_ids) == f" {reply}</s>"


def test_image_examples_carry_what_the_image_shows() -> None:
    conversation = make_conversation(random.Random(9), text_only_probability=0.0)
    assert conversation.image is not None and conversation.entities and conversation.owners is not None
    assert conversation.owners.shape == (conversation.image.height, conversation.image.width)
    assert int(conversation.owners.max()) <= len(conversation.entities)
    text_only = make_conversation(random.Random(9), text_only_probability=1.0)
    assert text_only.image is None and text_only.entities is None and text_only.owners is None


def _images(stream: list[Conversation]) -> list[bytes]:
    return [c.image.tobytes() for c in stream if c.image is not None]


@pytest.mark.parametrize("topic", [None, "binding"])
def test_a_stream_without_reuse_renders_exactly_what_it_did_before_pools(topic: str | None) -> None:
    # The pool must not touch the random stream unless reuse is asked for: the shipped recipe's
    # examples stay the same whatever the default pool.
    stream = conversations(3) if topic is None else lessons(3, topic)
    rng = random.Random(3 if topic is None else 3 ^ 0xB1D)
    before = [make_conversation(rng) if topic is None else lesson(rng, topic) for _ in range(12)]
    now = list(itertools.islice(stream, 12))
    assert [c.turns for c in now] == [c.turns for c in before]
    assert _images(now) == _images(before)


def test_a_pool_renders_a_quarter_of_the_scenes_and_asks_about_them_again() -> None:
    pool = ScenePool(0.25, size=20)
    rng = random.Random(0)
    examples = [make_conversation(rng, text_only_probability=0.0, pool=pool) for _ in range(420)]
    # The first 20 fill the pool; of the 400 after them about a quarter are new.
    assert 20 + 60 < pool.rendered < 20 + 140
    distinct = {id(c.image) for c in examples}
    assert len(distinct) == pool.rendered
    by_image: dict[int, list[Conversation]] = {}
    for example in examples:
        by_image.setdefault(id(example.image), []).append(example)
    repeated = [group for group in by_image.values() if len(group) > 1]
    assert repeated
    for group in repeated:
        # A re-asked scene keeps what its image shows; its questions are new.
        first = group[0]
        assert all(c.entities == first.entities and np.array_equal(c.owners, first.owners) for c in group)
        assert any(c.turns != first.turns for c in group[1:])


def test_a_pooled_stream_is_deterministic_and_reuses_scenes() -> None:
    first = list(itertools.islice(lessons(5, "binding", 0.25, 8), 60))
    again = list(itertools.islice(lessons(5, "binding", 0.25, 8), 60))
    assert [c.turns for c in first] == [c.turns for c in again]
    assert _images(first) == _images(again)
    assert len({id(c.image) for c in first}) < 40


@pytest.mark.parametrize("share", [0.0, 1.5])
def test_a_pool_refuses_a_share_outside_its_range(share: float) -> None:
    with pytest.raises(ValueError, match="fresh_share"):
        ScenePool(share)
