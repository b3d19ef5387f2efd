"""Seconds per toy-model forward and backward in bfloat16 and in float32 on this CPU.

Why: ``auto`` chooses bfloat16 only where the CPU computes it natively
(:func:`personalization.modeling.native_bfloat16`). This measures whether that choice is the fast
one here, and writes what it saw, with the CPU's bfloat16 flags, to a JSON file.

    .venv/bin/python benchmarks/dtype_speed.py --json benchmarks/results/dtype_speed.json
"""

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from personalization.modeling import cpu_flags, load_model, native_bfloat16


def step_seconds(dtype: torch.dtype, *, batch: int, length: int, repeats: int) -> list[float]:
    """One language-model forward and backward over ``batch`` x ``length`` token embeddings and
    one vision-tower forward over ``batch`` images, timed ``repeats`` times after a warm-up."""
    model = load_model("toyworld", device="cpu", dtype=dtype).model
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 200, (batch, length), generator=generator)
    pixels = torch.randn(batch, 3, 96, 96, generator=generator).to(dtype)
    embed = model.get_input_embeddings()
    times = []
    for repeat in range(repeats + 1):
        started = time.perf_counter()
        inputs = embed(ids).detach().requires_grad_(True)
        hidden = model.model.language_model(inputs_embeds=inputs).last_hidden_state
        hidden.float().square().mean().backward()
        with torch.no_grad():
            model.model.vision_tower(pixels)
        if repeat:
            times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=180)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    flags = cpu_flags() or frozenset()
    result = {
        "command": "benchmarks/dtype_speed.py "
        + " ".join(f"--{k} {v}" for k, v in vars(args).items() if k != "json"),
        "cpu": platform.processor() or platform.machine(),
        "date": time.strftime("%Y-%m-%d"),
        "cpu_flags_checked": sorted(flags & {"avx512_bf16", "amx_bf16", "bf16", "avx512f", "avx2"}),
        "mkldnn_says_bf16": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()),
        "native_bfloat16": native_bfloat16(torch.device("cpu")),
        "seconds_median": {},
    }
    for name, dtype in (("bfloat16", torch.bfloat16), ("float32", torch.float32)):
        times = step_seconds(dtype, batch=args.batch, length=args.length, repeats=args.repeats)
        result["seconds_median"][name] = round(statistics.median(times), 3)
        print(f"{name}: {statistics.median(times):.3f} s a step (median of {len(times)})")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
