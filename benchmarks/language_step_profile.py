"""Where a pretraining language step spends its time, and whether another attention kernel helps.

Runs ``--steps`` corpus steps of stage 2 on the shipped toy model (``pretrain(start_from=...)``,
no lessons), once per ``--attention`` kernel (``PretrainConfig.attention``), each under
``torch.profiler`` (CPU), and writes the seconds a step and the operators' shares of the
profiled CPU time to a JSON file. The profiler adds a little time of its own, the same for every
kernel.

    .venv/bin/python benchmarks/language_step_profile.py --steps 40 --attention sdpa eager \\
        --json benchmarks/results/language_step_profile.json
"""

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile

import personalization.toyworld.pretrain as pretraining
from personalization.modeling import cpu_flags
from personalization.toyworld.pretrain import PretrainConfig, pretrain

WEIGHTS = Path(pretraining.__file__).parent / "weights"


def profile_steps(steps: int, attention: str, top: int) -> dict[str, Any]:
    """``steps`` corpus steps from the shipped weights with ``attention`` as the kernel."""
    config = PretrainConfig(steps=steps, reading_steps=0, binding_steps=0, attention=attention)
    with tempfile.TemporaryDirectory() as out, profile(activities=[ProfilerActivity.CPU]) as prof:
        started = time.perf_counter()
        result = pretrain(Path(out), seed=0, minutes_budget=60, config=config, start_from=WEIGHTS)
        seconds = time.perf_counter() - started
    events = sorted(prof.key_averages(), key=lambda event: event.self_cpu_time_total, reverse=True)
    total = sum(event.self_cpu_time_total for event in events)
    return {
        "attention": attention,
        "steps": result.steps_done,
        "stage_seconds_per_step": round(result.stages[0].seconds / result.steps_done, 3),
        "run_seconds": round(seconds, 1),
        "final_loss": result.final_loss,
        "self_cpu_share": {event.key: round(event.self_cpu_time_total / total, 4) for event in events[:top]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--attention", nargs="+", default=["sdpa", "eager"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    runs = [profile_steps(args.steps, attention, args.top) for attention in args.attention]
    for run in runs:
        print(f"{run['attention']}: {run['stage_seconds_per_step']} s a step, loss {run['final_loss']:.4f}")
    report = {
        "command": "benchmarks/language_step_profile.py "
        + f"--steps {args.steps} --attention {' '.join(args.attention)} --threads {args.threads}",
        "date": time.strftime("%Y-%m-%d"),
        "cpu": platform.processor() or platform.machine(),
        "cpu_flags": sorted(flag for flag in cpu_flags() or () if flag.startswith(("avx512_bf16", "amx"))),
        "runs": runs,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
