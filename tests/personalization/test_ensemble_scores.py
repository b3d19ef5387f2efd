"""benchmarks/ensemble_scores.py: single runs and their mean P(yes) on a hand-made report."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(report: Path, *args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "ensemble_scores.py"), str(report), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_the_ensemble_scores_the_mean_of_its_runs(tmp_path: Path) -> None:
    # Run a accepts its subject's photo (0.9) and wrongly another's (0.6); run b rejects the
    # other (0.2) but also its own second photo (0.45). Their mean gets all of them right at 0.5.
    a = {"bo": {"own": [0.9, 0.6], "others": [0.6], "lookalikes": [0.7]}}
    b = {"bo": {"own": [0.8, 0.45], "others": [0.2], "lookalikes": [0.1]}}
    report = tmp_path / "report.json"
    report.write_text(
        json.dumps(
            {
                "methods": {
                    "run a": {"subjects": {"bo": {"scores": a["bo"]}}},
                    "run b": {"subjects": {"bo": {"scores": b["bo"]}}},
                    "members": {"subjects": {"bo": {"scores": {}, "member_scores": [a["bo"], b["bo"]]}}},
                }
            }
        )
    )
    rows = _run(report, "--runs", "run a", "run b", "--thresholds", "0.5")
    assert rows[2] == "| run a | 0.500 (1.00/0.00), 0.00 |"
    assert rows[3] == "| run b | 0.750 (0.50/1.00), 1.00 |"
    assert rows[4] == "| ensemble of 2 | 1.000 (1.00/1.00), 1.00 |"
    members = _run(report, "--method", "members", "--thresholds", "0.5")
    assert members[2:] == [row.replace("run a", "member 1").replace("run b", "member 2") for row in rows[2:]]
