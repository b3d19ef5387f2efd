"""Which of the asker's subjects a question is about. Pure functions: no database, no model.

Rules, in order:

1. Every subject whose display name appears in the question as a whole word, case-insensitively
   ("is bo here?", "Bo's collar"). When one matching name lies inside another ("Bo" in "Bo Jr"),
   only the longer counts.
2. Otherwise "my <kind>" ("is my dog in this photo?") means the one subject of that kind; with
   several of that kind the question is ambiguous and the asker is asked which one.
3. Otherwise nobody: the question is answered without personal tokens.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.services.errors import AmbiguousSubject

_MY_KIND = re.compile(r"(?<!\w)my\s+([^\W\d_][\w-]*(?:\s+[^\W\d_][\w-]*)?)", re.IGNORECASE)


@dataclass(frozen=True)
class Candidate:
    """What resolution needs to know of a subject."""

    subject_id: str
    name: str
    kind: str


@dataclass(frozen=True)
class Resolution:
    """The subjects meant, and the question rewritten so that each is called by its name."""

    subjects: list[Candidate]
    question: str


def normalize_kind(kind: str) -> str:
    """How kinds are stored and compared: trimmed, single-spaced, lower case ("other" if empty)."""
    return " ".join(kind.split()).casefold() or "other"


def name_pattern(name: str) -> re.Pattern[str]:
    """A whole-word, case-insensitive pattern for ``name`` (any run of spaces matches a space)."""
    words = [re.escape(word) for word in name.split()]
    return re.compile(r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)", re.IGNORECASE)


def resolve(question: str, subjects: Sequence[Candidate]) -> Resolution:
    """The subjects ``question`` is about, by the rules of this module.

    Raises:
        AmbiguousSubject: "my <kind>" with several subjects of that kind.

    Example:
        >>> bo = Candidate("1", "Bo", "dog")
        >>> resolve("Is my dog in this photo?", [bo]).question
        'Is Bo in this photo?'
    """
    by_name = _named(question, subjects)
    if by_name:
        return Resolution(by_name, question)
    for match in _MY_KIND.finditer(question):
        phrase = normalize_kind(match.group(1))
        # "my dog" or, for a two-word kind, "my golden retriever"; the longest kind that fits.
        of_kind = _of_kind(phrase, subjects) or _of_kind(phrase.split()[0], subjects)
        if len(of_kind) > 1:
            raise AmbiguousSubject(sorted(candidate.name for candidate in of_kind))
        if of_kind:
            chosen = of_kind[0]
            end = match.end(1)
            if len(chosen.kind.split()) == 1:  # "my dog food": only "my dog" is replaced
                end = match.start(1) + len(match.group(1).split()[0])
            return Resolution([chosen], question[: match.start()] + chosen.name + question[end:])
    return Resolution([], question)


def _named(question: str, subjects: Sequence[Candidate]) -> list[Candidate]:
    spans: dict[str, list[tuple[int, int]]] = {}
    for candidate in subjects:
        found = [m.span() for m in name_pattern(candidate.name).finditer(question)]
        if found:
            spans[candidate.subject_id] = found
    chosen = []
    for candidate in subjects:
        own = spans.get(candidate.subject_id)
        if not own:
            continue
        others = [span for sid, many in spans.items() if sid != candidate.subject_id for span in many]
        if all(any(_inside(span, other) for other in others) for span in own):
            continue
        chosen.append(candidate)
    return chosen


def _inside(inner: tuple[int, int], outer: tuple[int, int]) -> bool:
    return outer[0] <= inner[0] and inner[1] <= outer[1] and inner != outer


def _of_kind(kind: str, subjects: Sequence[Candidate]) -> list[Candidate]:
    return [candidate for candidate in subjects if normalize_kind(candidate.kind) == kind]
