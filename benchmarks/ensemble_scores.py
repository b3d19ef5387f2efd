"""Recognition of single training runs and of their ensembles, read off ``yollava eval`` reports.

An ensemble scores each photo with the mean P(yes) of its members. Two sources of members:

* several runs of one method already in a report (``--runs``: method names, e.g. the three
  ``learned-k16 (training seed N)`` entries that ``benchmarks/toyworld_fresh_seed.sh`` merges),
  which is how the toy preset's three members and its 0.4 threshold were chosen (twentieth
  session, development reports only);
* a method trained with several members (``TrainConfig.members``), whose report keeps each
  member's own scores (``member_scores``).

    python benchmarks/ensemble_scores.py REPORT.json --runs "learned-k16 (training seed 0)" ...
    python benchmarks/ensemble_scores.py REPORT.json --method learned-k16

Prints weighted accuracy (positive / negative) and look-alikes rejected, per run and for the
ensemble, at the thresholds given (0.4 and 0.5 by default). Weighted accuracy is computed as the
evaluation does it: rates per subject, averaged over subjects, then halved and summed.
"""

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from personalization.metrics import recognition_score

Scores = dict[str, dict[str, list[float]]]
"""``{subject: {"own": [...], "others": [...], "lookalikes": [...]}}``"""


def figures(scores: Scores, threshold: float) -> tuple[float, float, float, float | None]:
    """(weighted, positive, negative, look-alikes rejected) at ``threshold``."""
    results = [recognition_score(s["own"], s["others"], threshold) for s in scores.values()]
    positive = statistics.mean(r.positive for r in results)
    negative = statistics.mean(r.negative for r in results)
    rejected = [
        sum(p < threshold for p in s["lookalikes"]) / len(s["lookalikes"])
        for s in scores.values()
        if s.get("lookalikes")
    ]
    return (
        0.5 * positive + 0.5 * negative,
        positive,
        negative,
        statistics.mean(rejected) if rejected else None,
    )


def mean_of(runs: list[Scores]) -> Scores:
    """Per photo, the mean P(yes) over ``runs`` (which must score the same photos)."""
    return {
        key: {
            group: [
                statistics.mean(values) for values in zip(*(run[key][group] for run in runs), strict=True)
            ]
            for group in runs[0][key]
        }
        for key in runs[0]
    }


def runs_of(report: dict[str, Any], names: list[str], method: str | None) -> dict[str, Scores]:
    methods = report["methods"]
    missing = [name for name in names or [method] if name not in methods]
    if missing:
        raise SystemExit(
            f"no such method in the report: {', '.join(map(str, missing))}; it has {', '.join(methods)}"
        )
    if names:
        if missing:
            raise SystemExit(
                f"no such method in the report: {', '.join(missing)}; it has {', '.join(methods)}"
            )
        return {name: _scores(methods[name]["subjects"], "scores") for name in names}
    assert method is not None
    subjects = methods[method]["subjects"]
    count = min(len(result.get("member_scores", [])) for result in subjects.values())
    if count < 2:
        raise SystemExit(f"{method} was trained with one member: give --runs instead")
    return {
        f"member {number + 1}": {key: result["member_scores"][number] for key, result in subjects.items()}
        for number in range(count)
    }


def _scores(subjects: dict[str, Any], field: str) -> Scores:
    if any(field not in result for result in subjects.values()):
        raise SystemExit("this report has no per-photo scores (written before the sixteenth session)")
    return {key: result[field] for key, result in subjects.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("--runs", nargs="*", default=[], help="methods of the report to ensemble")
    parser.add_argument("--method", default="learned-k16", help="a method trained with several members")
    parser.add_argument("--thresholds", nargs="*", type=float, default=[0.4, 0.5])
    args = parser.parse_args()
    runs = runs_of(json.loads(args.report.read_text()), args.runs, None if args.runs else args.method)
    rows = [*runs.items(), (f"ensemble of {len(runs)}", mean_of(list(runs.values())))]
    print(
        "| run | "
        + " | ".join(f"weighted @{t} (pos/neg), look-alikes rejected" for t in args.thresholds)
        + " |"
    )
    print("|---|" + "---|" * len(args.thresholds))
    for name, scores in rows:
        cells = []
        for threshold in args.thresholds:
            weighted, positive, negative, rejected = figures(scores, threshold)
            look = "-" if rejected is None else f"{rejected:.2f}"
            cells.append(f"{weighted:.3f} ({positive:.2f}/{negative:.2f}), {look}")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
