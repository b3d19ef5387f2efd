"""Do a subject's learned tokens separate even the photos they were trained on?

``yollava eval`` reports held-out recognition; when that is at chance this probe tells whether the
tokens failed to *generalise* or failed to *fit*: it teaches each of the first ``--subjects``
subjects of a dataset (the eval's recipe and negative bank) and reports P(yes) on its own
training photos, its test photos, its look-alikes and the other subjects' test photos, with the
AUC of each pair that matters (own test vs others, own test vs look-alikes, training photos vs
others) and the training loss at the end.

    python benchmarks/recognition_fit.py --data DATA --subjects 2 --answer-style word \\
        --json benchmarks/results/recognition_fit_word.json
"""

import argparse
import json
import platform
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from personalization.config import ANSWER_STYLES
from personalization.engine import Engine
from personalization.evaluation import Evaluator, load_dataset, method_by_name
from personalization.modeling import TOYWORLD_MODEL_NAME, load_model
from personalization.presets import train_config_for
from personalization.toyworld.corpus import attribute_questions


def auc(positives: list[float], negatives: list[float]) -> float:
    """P(a positive scores above a negative), ties counting half."""
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", type=Path, required=True, help="a toy-world dataset (yollava toyworld dataset)"
    )
    parser.add_argument("--model", default=TOYWORLD_MODEL_NAME)
    parser.add_argument("--subjects", type=int, default=2)
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--answer-style", choices=ANSWER_STYLES, default="sentence")
    parser.add_argument("--lr", type=float, default=None, help="default: the toy recipe's")
    parser.add_argument("--epochs", type=int, default=None, help="default: the toy recipe's")
    parser.add_argument("--no-text-qa", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    engine = Engine(load_model(args.model, device="cpu", dtype=torch.float32))
    dataset = load_dataset(args.data)
    config = train_config_for(
        TOYWORLD_MODEL_NAME, answer_style=args.answer_style, text_qa=not args.no_text_qa
    )
    if args.lr is not None:
        config = replace(config, learning_rate=args.lr)
    if args.epochs is not None:
        config = replace(config, epochs=args.epochs)
    evaluator = Evaluator(engine, dataset, config, attribute_questions=attribute_questions)
    method = method_by_name(f"learned-k{args.k}")
    subjects: dict[str, dict[str, object]] = {}
    for subject in dataset.subjects[: args.subjects]:
        started = time.monotonic()
        probe = evaluator.probe(subject, method)
        groups = {
            "train": subject.train,
            "own_test": subject.test,
            "lookalikes": subject.lookalikes,
            "others": [p for other in dataset.subjects if other is not subject for p in other.test],
        }
        scores = {group: evaluator.yes_scores(probe, paths) for group, paths in groups.items()}
        row = {
            "kind": subject.kind,
            "mean_p_yes": {group: round(statistics.mean(values), 3) for group, values in scores.items()},
            "auc_own_test_vs_others": round(auc(scores["own_test"], scores["others"]), 3),
            "auc_own_test_vs_lookalikes": round(auc(scores["own_test"], scores["lookalikes"]), 3),
            "auc_train_vs_others": round(auc(scores["train"], scores["others"]), 3),
            "final_loss": probe.metrics.get("final_loss"),
            "seconds": round(time.monotonic() - started, 1),
        }
        subjects[subject.key] = row
        print(subject.key, json.dumps(row), flush=True)
    result = {
        "command": " ".join(["python", "benchmarks/recognition_fit.py", *(argv or sys.argv[1:])]),
        "model": args.model,
        "data": str(args.data),
        "train_config": {k: v for k, v in vars(config).items() if k != "attribute_questions"},
        "k": args.k,
        "machine": f"{platform.processor() or platform.machine()}, {args.threads} threads, "
        f"torch {torch.__version__}",
        "subjects": subjects,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
