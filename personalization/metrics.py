"""Recognition metrics: accuracies and the threshold that best separates yes from no."""

import itertools
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class RecognitionScore:
    """Accuracy on positives and negatives; ``weighted`` = 0.5·positive + 0.5·negative (paper)."""

    positive: float
    negative: float

    @property
    def weighted(self) -> float:
        return 0.5 * self.positive + 0.5 * self.negative


def recognition_score(
    positive_probabilities: Sequence[float],
    negative_probabilities: Sequence[float],
    threshold: float,
) -> RecognitionScore:
    """Accuracies at ``threshold``; an empty side counts as 0 (nothing to be right about)."""
    positive = sum(p >= threshold for p in positive_probabilities)
    negative = sum(p < threshold for p in negative_probabilities)
    return RecognitionScore(
        positive=positive / len(positive_probabilities) if positive_probabilities else 0.0,
        negative=negative / len(negative_probabilities) if negative_probabilities else 0.0,
    )


def choose_threshold(
    positive_probabilities: Sequence[float], negative_probabilities: Sequence[float]
) -> tuple[float, float]:
    """The threshold with the best balanced accuracy, and that accuracy.

    Candidates are 0.5 and the midpoints between neighbouring scores; among equally accurate
    candidates the one farthest from any score wins (the widest gap generalises best).
    Without both positives and negatives the threshold stays 0.5.
    """
    if not positive_probabilities or not negative_probabilities:
        return 0.5, 0.0
    scores = sorted({*positive_probabilities, *negative_probabilities})
    candidates = {0.5}
    candidates.update((low + high) / 2 for low, high in itertools.pairwise(scores))

    def quality(threshold: float) -> tuple[float, float]:
        accuracy = recognition_score(positive_probabilities, negative_probabilities, threshold).weighted
        gap = min(abs(threshold - score) for score in scores)
        return accuracy, gap

    best = max(sorted(candidates), key=quality)
    return best, quality(best)[0]
