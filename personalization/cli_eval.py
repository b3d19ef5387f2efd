"""Handlers of ``yollava eval`` and ``yollava toyworld …``."""

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from personalization.cli import add_model_options, open_engine
from personalization.config import ANSWER_STYLES, TrainConfig, with_assignments
from personalization.errors import PersonalizationError
from personalization.evaluation import Evaluator, check_dataset_images, load_dataset, method_by_name
from personalization.modeling import TOYWORLD_MODEL_NAME
from personalization.presets import train_config_for

DEFAULT_METHODS = ("learned",)


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    evaluate = subparsers.add_parser("eval", help="evaluate methods with the paper's protocol")
    evaluate.add_argument("--data", type=Path, required=True, help="dataset root (train/, test/, …)")
    evaluate.add_argument(
        "--negatives", type=Path, default=None, help="negative bank (default DATA/negatives)"
    )
    evaluate.add_argument("--k", type=int, default=16, help="latent tokens for learned methods")
    evaluate.add_argument(
        "--method",
        action="append",
        default=None,
        help="vanilla, description, learned, learned-kN, no-hard-negatives, no-text-qa (repeatable)",
    )
    evaluate.add_argument("--epochs", type=int, default=None)
    evaluate.add_argument(
        "--recipe",
        choices=("auto", "toy", "paper"),
        default="auto",
        help="training recipe: the toy world's or the paper's (auto: toy for the toyworld model, "
        "so give 'toy' for other toy-world weights, e.g. a pretraining run's output folder)",
    )
    evaluate.add_argument(
        "--answer-style",
        choices=ANSWER_STYLES,
        default=None,
        help="recognition answers (default: the recipe's)",
    )
    evaluate.add_argument("--subjects", type=int, default=None, help="only the first N subjects")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a field of the training recipe, e.g. --set holdout_fraction=0 (repeatable)",
    )
    evaluate.add_argument(
        "--json", type=Path, required=True, dest="json_out", help="where to write the report"
    )
    add_model_options(evaluate, default_model=TOYWORLD_MODEL_NAME)
    evaluate.set_defaults(handler=eval_command)

    toyworld = subparsers.add_parser("toyworld", help="the toy world: datasets and pretraining")
    toyworld.add_argument("action", choices=["dataset", "pretrain"])
    toyworld.add_argument("rest", nargs=argparse.REMAINDER, help="options of the action (see --help of each)")
    toyworld.set_defaults(handler=toyworld_command)


def eval_command(args: argparse.Namespace) -> int:
    dataset = load_dataset(args.data, negatives=args.negatives)
    if args.subjects is not None:
        dataset.subjects = dataset.subjects[: args.subjects]
    check_dataset_images(dataset)
    methods = [method_by_name(name, k=args.k) for name in (args.method or DEFAULT_METHODS)]
    try:
        with_assignments(TrainConfig(), args.set)  # refused before the model is loaded
    except ValueError as error:
        raise PersonalizationError(str(error)) from None
    engine = open_engine(args)
    overrides: dict[str, Any] = {"seed": args.seed}
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    if args.answer_style is not None:
        overrides["answer_style"] = args.answer_style
    toy = args.recipe == "toy" or (args.recipe == "auto" and engine.model_id == TOYWORLD_MODEL_NAME)
    config = with_assignments(
        train_config_for(TOYWORLD_MODEL_NAME if toy else "paper", **overrides), args.set
    )
    attribute_questions = None
    if toy:
        from personalization.toyworld.corpus import attribute_questions as toy_questions

        attribute_questions = toy_questions

    evaluator = Evaluator(engine, dataset, config, attribute_questions=attribute_questions, log=_log)
    report: dict[str, Any] = {
        "model": engine.model_id,
        "data": str(args.data),
        "subjects": [s.key for s in dataset.subjects],
        "train_config": {k: v for k, v in vars(config).items() if k != "attribute_questions"},
        "methods": {},
    }
    for method in methods:
        result = evaluator.run(method)
        report["methods"][method.name] = result
        _log(
            f"{method.name}: weighted {result['weighted']} "
            f"(pos {result['positive']}, neg {result['negative']}), "
            f"look-alikes rejected {result['lookalike_rejection']}, text QA {result['text_qa']}, "
            f"visual QA {result['visual_qa']} (by answer: text {result['text_qa_by_answer']}, "
            f"visual {result['visual_qa_by_answer']})"
        )
        shown = {name: value for name, value in result["breakdown"].items() if value is not None}
        if shown:
            _log(f"{method.name}: " + ", ".join(f"{name} {value}" for name, value in shown.items()))
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json_out}")
    return 0


def toyworld_command(args: argparse.Namespace) -> int:
    if args.action == "dataset":
        from personalization.toyworld import dataset

        return dataset.main(args.rest)
    if args.action == "pretrain":
        from personalization.toyworld import pretrain

        return pretrain.main(args.rest)
    raise PersonalizationError(f"unknown toyworld action {args.action!r}")


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
