"""Resolution: names as whole words, "my <kind>" when unique, otherwise a clear question back."""

import pytest

from bot.services.errors import AmbiguousSubject
from bot.services.resolution import Candidate, resolve

BO = Candidate("1", "Bo", "dog")
BO_JR = Candidate("2", "Bo Jr", "dog")
MAM = Candidate("3", "Mam", "cat")
REX = Candidate("4", "Rex", "golden retriever")


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("Is Bo in this photo?", ["Bo"]),
        ("what colour is bo's collar", ["Bo"]),
        ("Is Bob here?", []),
        ("Is BOBO here?", []),
        ("Are Bo and Mam together?", ["Bo", "Mam"]),
        ("Is Bo  Jr here?", ["Bo Jr"]),
        ("Is Bo Jr with Bo?", ["Bo", "Bo Jr"]),
        ("What is the weather?", []),
    ],
)
def test_names_match_as_whole_words(question: str, expected: list[str]) -> None:
    assert sorted(c.name for c in resolve(question, [BO, BO_JR, MAM]).subjects) == expected


def test_my_kind_picks_the_only_one_and_names_it() -> None:
    resolution = resolve("Is my cat in this photo?", [BO, MAM])
    assert resolution.subjects == [MAM] and resolution.question == "Is Mam in this photo?"
    two_words = resolve("is my Golden  Retriever asleep?", [REX, BO])
    assert two_words.subjects == [REX] and two_words.question == "is Rex asleep?"
    assert resolve("is my hamster here?", [BO, MAM]).subjects == []


def test_my_kind_with_several_asks_which_one() -> None:
    with pytest.raises(AmbiguousSubject) as refused:
        resolve("is my dog here?", [BO_JR, BO, MAM])
    assert refused.value.user_message == "Which one do you mean: Bo or Bo Jr?"


def test_a_name_beats_my_kind() -> None:
    assert resolve("Is my dog Bo here?", [BO, BO_JR]).subjects == [BO]
