"""Render an ``yollava eval`` JSON report as the Markdown table used in docs/RESULTS.md."""

import json
import sys
from pathlib import Path


def cell(value: object) -> str:
    return "–" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def table(report: dict) -> str:
    rows = [
        "| method | positive | negative | weighted | weighted @0.5 | look-alikes rejected "
        "| text QA | visual QA | text QA by answer | visual QA by answer | train s/subject |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, result in report["methods"].items():
        keys = (
            "positive",
            "negative",
            "weighted",
            "weighted_at_0.5",
            "lookalike_rejection",
            "text_qa",
            "visual_qa",
            "text_qa_by_answer",
            "visual_qa_by_answer",
        )
        # Reports written before the by-answer scores existed show "–" there.
        values = [cell(result.get(key)) for key in keys]
        rows.append(f"| {name} | " + " | ".join(values) + f" | {cell(result['train_seconds_per_subject'])} |")
    return "\n".join(rows)


BREAKDOWN = (
    ("positive_alone", "subject alone"),
    ("positive_with_others", "subject among others"),
    ("lookalike_named_rejected", "look-alike, one named attribute differs"),
    ("lookalike_fine_rejected", "look-alike, fine attributes only"),
)


def breakdown_table(report: dict) -> str:
    """Positives accepted by scene and look-alikes rejected by kind, pooled over subjects (toy
    world datasets written since the eleventh session); empty when no method has them."""
    methods = {name: result.get("breakdown") or {} for name, result in report["methods"].items()}
    if not any(value is not None for values in methods.values() for value in values.values()):
        return ""
    rows = [
        "| method | " + " | ".join(label for _, label in BREAKDOWN) + " |",
        "|---|" + "---|" * len(BREAKDOWN),
    ]
    for name, values in methods.items():
        rows.append(f"| {name} | " + " | ".join(cell(values.get(key)) for key, _ in BREAKDOWN) + " |")
    return "\n".join(rows)


if __name__ == "__main__":
    loaded = json.loads(Path(sys.argv[1]).read_text())
    print(table(loaded))
    if extra := breakdown_table(loaded):
        print()
        print(extra)
