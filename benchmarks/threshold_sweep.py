"""Weighted recognition of ``yollava eval`` reports at other global thresholds.

Reports written since the sixteenth session keep every P(yes) share per subject ("scores"), so a
threshold can be tried without scoring again. Weighted accuracy is computed as the evaluation
does it: positive and negative rates per subject, averaged over subjects, then halved and summed.
Choose a threshold on development reports only and check it on a seed that did not choose it.

    python benchmarks/threshold_sweep.py REPORT.json [REPORT.json ...] [--method learned-k16]

With several reports (e.g. training seeds 0-2) it also prints their mean per threshold.
"""

import argparse
import json
import statistics
from pathlib import Path

from personalization.metrics import recognition_score

THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


def weighted_at(subjects: dict, threshold: float) -> tuple[float, float, float]:
    """(positive, negative, weighted) over subjects at one global ``threshold``."""
    per_subject = []
    for result in subjects.values():
        scores = result.get("scores")
        if scores is None:
            raise SystemExit("this report has no per-photo scores (written before the sixteenth session)")
        per_subject.append(recognition_score(scores["own"], scores["others"], threshold))
    positive = statistics.mean(s.positive for s in per_subject)
    negative = statistics.mean(s.negative for s in per_subject)
    return positive, negative, 0.5 * positive + 0.5 * negative


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path)
    parser.add_argument("--method", default="learned-k16")
    args = parser.parse_args()
    weighted: dict[float, list[float]] = {t: [] for t in THRESHOLDS}
    print("| report | " + " | ".join(f"{t:.1f}" for t in THRESHOLDS) + " |")
    print("|---|" + "---|" * len(THRESHOLDS))
    for path in args.reports:
        subjects = json.loads(path.read_text())["methods"][args.method]["subjects"]
        cells = []
        for t in THRESHOLDS:
            positive, negative, value = weighted_at(subjects, t)
            weighted[t].append(value)
            cells.append(f"{value:.3f} ({positive:.2f}/{negative:.2f})")
        print(f"| {path.name} | " + " | ".join(cells) + " |")
    if len(args.reports) > 1:
        print("| mean | " + " | ".join(f"{statistics.mean(weighted[t]):.3f}" for t in THRESHOLDS) + " |")


if __name__ == "__main__":
    main()
