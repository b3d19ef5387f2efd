"""The generic corpus: balanced yes/no, no subjects, and the chat format the processor uses."""

import random

import pytest
from PIL import Image

from personalization.modeling import build_processor, train_tokenizer
from personalization.toyworld.corpus import (
    Conversation,
    attribute_questions,
    corpus_texts,
    encode_conversation,
    image_turns,
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
