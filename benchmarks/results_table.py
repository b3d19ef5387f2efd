"""Render an ``yollava eval`` JSON report as the Markdown table used in docs/RESULTS.md."""

import json
import sys
from pathlib import Path


def cell(value: object) -> str:
    return "–" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def table(report: dict) -> str:
    rows = [
        "| method | positive | negative | weighted | weighted @0.5 | look-alikes rejected "
        "| text QA | visual QA | train s/subject |",
        "|---|---|---|---|---|---|---|---|---|",
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
        )
        values = [cell(result[key]) for key in keys]
        rows.append(f"| {name} | " + " | ".join(values) + f" | {cell(result['train_seconds_per_subject'])} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table(json.loads(Path(sys.argv[1]).read_text())))
