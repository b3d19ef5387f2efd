"""How much time does rendering in background processes save in pretraining?

Runs the same short pretraining twice, rendering in line and in the background
(``PretrainConfig.background_rendering``), and reports the seconds of the language stage and of
everything else (model and tokenizer built, the tower's pool rendered, the tower trained, the
weights saved), and whether the two runs saved identical weights (the examples and their order
are the same; whether the arithmetic is, is another matter: see the toy weights' README).

    python benchmarks/background_rendering.py --vision-steps 300 --steps 120 \\
        --json benchmarks/results/background_rendering.json
"""

import argparse
import json
import platform
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from personalization.toyworld.pretrain import PretrainConfig, pretrain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vision-steps", type=int, default=300)
    parser.add_argument(
        "--steps", type=int, default=120, help="language steps (a sixth reading, a third binding)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()
    config = PretrainConfig(
        vision_steps=args.vision_steps,
        steps=args.steps,
        reading_steps=args.steps // 6,
        binding_steps=args.steps // 3,
    )
    runs: dict[str, dict[str, float]] = {}
    weights = {}
    with tempfile.TemporaryDirectory() as scratch:
        for background in (False, True):
            name = "background" if background else "in_line"
            out = Path(scratch) / name
            started = time.monotonic()
            result = pretrain(
                out,
                seed=args.seed,
                minutes_budget=120,
                config=replace(config, background_rendering=background),
            )
            total = time.monotonic() - started
            language = sum(stage.seconds for stage in result.stages)
            runs[name] = {
                "total_seconds": round(total, 1),
                "tower_and_setup_seconds": round(total - language, 1),
                "language_seconds": round(language, 1),
            }
            weights[name] = load_file(str(out / "model.safetensors"))
            print(name, runs[name], flush=True)
    identical = all(
        torch.equal(tensor, weights["background"][key]) for key, tensor in weights["in_line"].items()
    )
    report = {
        "command": " ".join(["python", *sys.argv]),
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
        },
        "config": {k: v for k, v in asdict(config).items() if k != "background_rendering"},
        "runs": runs,
        "saving": {
            key: round(1 - runs["background"][key] / runs["in_line"][key], 3)
            for key in ("total_seconds", "tower_and_setup_seconds", "language_seconds")
        },
        "identical_weights": identical,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["saving"]), "identical weights:", identical)


if __name__ == "__main__":
    main()
