"""Handlers of ``yollava teach`` and ``yollava ask``."""

import argparse
import sys
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from personalization.artifacts import load_subject, save_subject
from personalization.cli import add_model_options, open_engine
from personalization.config import TrainConfig
from personalization.errors import ImageError, ModelLoadError, NotEnoughPhotos, PersonalizationError
from personalization.images import load_image
from personalization.modeling import TOYWORLD_MODEL_NAME
from personalization.negatives import index_bank
from personalization.presets import train_config_for
from personalization.subject import DEFAULT_LATENT_TOKENS, new_subject
from personalization.toybank import toyworld_bank
from personalization.trainer import MIN_PHOTOS, Trainer, TrainingProgress, describe_heldout


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    teach = subparsers.add_parser("teach", help="learn a subject from a few photos")
    teach.add_argument("name", help="the subject's display name, e.g. Bo")
    teach.add_argument("photos", nargs="+", type=Path, help=f"at least {MIN_PHOTOS} photos of the subject")
    teach.add_argument(
        "--kind", default="object", help="category word: dog, cat, person, mug … (default object)"
    )
    teach.add_argument("--facts", default="", help="optional facts, e.g. 'Bo is 3 and loves tennis balls'")
    teach.add_argument("--negatives", type=Path, default=None, help="negative bank folder for hard negatives")
    teach.add_argument("--out", type=Path, required=True, help="subject file to write (.safetensors)")
    teach.add_argument("--k", type=int, default=DEFAULT_LATENT_TOKENS, help="latent tokens (default 16)")
    teach.add_argument("--epochs", type=int, default=None, help="default: the model's recipe")
    teach.add_argument("--lr", type=float, default=None, help="default: the model's recipe")
    teach.add_argument("--batch-size", type=int, default=None, help="default: the model's recipe")
    teach.add_argument("--no-text-qa", action="store_true", help="skip text-only QA generation")
    teach.add_argument("--seed", type=int, default=0)
    add_model_options(teach)
    teach.set_defaults(handler=teach_command)

    ask = subparsers.add_parser("ask", help="ask a question about taught subjects")
    ask.add_argument("question", help="e.g. 'Is Bo in this photo?' or 'What colour is Bo?'")
    ask.add_argument("--image", type=Path, default=None)
    ask.add_argument("--subject", type=Path, nargs="+", required=True, dest="subjects", help="subject files")
    ask.add_argument("--max-new-tokens", type=int, default=64)
    add_model_options(ask)
    ask.set_defaults(handler=ask_command)


def teach_config(args: argparse.Namespace, model_id: str) -> TrainConfig:
    """The model's recipe (see :mod:`personalization.presets`) with the flags given applied."""
    overrides: dict[str, object] = {"seed": args.seed}
    for flag, field in (("epochs", "epochs"), ("lr", "learning_rate"), ("batch_size", "batch_size")):
        if getattr(args, flag) is not None:
            overrides[field] = getattr(args, flag)
    if args.no_text_qa:
        overrides["text_qa"] = False
    try:
        return train_config_for(model_id, **overrides)
    except ValueError as error:
        raise PersonalizationError(str(error)) from error


class ProgressBar:
    """A tqdm bar on stderr fed by :class:`TrainingProgress` reports.

    Preparing messages that arrive while the bar is open (a subject trained as several members
    prepares each member in turn) are written above the bar, not through it.
    """

    def __init__(self, file: TextIO | None = None) -> None:
        self.file = file
        self.bar: tqdm | None = None  # type: ignore[type-arg]

    def __call__(self, progress: TrainingProgress) -> None:
        file = self.file or sys.stderr
        if progress.phase == "preparing":
            line = f"  {progress.message} …"
            if self.bar is None:
                print(line, file=file)
            else:
                self.bar.write(line, file=file)
            return
        if self.bar is None:
            self.bar = tqdm(total=progress.total_steps, desc="training", unit="step", file=file)
        if progress.loss is not None:
            self.bar.set_postfix(
                loss=f"{progress.loss:.3f}", epoch=f"{progress.epoch}/{progress.epochs}", refresh=False
            )
        # update() (not a bare n = step) keeps tqdm's rate and ETA right, and draws once.
        self.bar.update(progress.step - self.bar.n)
        if progress.phase == "done":
            self.bar.close()


def teach_command(args: argparse.Namespace) -> int:
    if len(args.photos) < MIN_PHOTOS:
        raise NotEnoughPhotos(f"need at least {MIN_PHOTOS} photos, got {len(args.photos)}")
    photos = [load_image(path) for path in args.photos]
    if args.negatives is not None and not args.negatives.is_dir():
        raise ImageError(f"{args.negatives}: negative bank folder not found")
    engine = open_engine(args)
    config = teach_config(args, engine.model_id)
    bank = None
    negatives = args.negatives
    if negatives is None and engine.model_id == TOYWORLD_MODEL_NAME:
        print("using the toy world's own negative bank (rendered once, cached) …", file=sys.stderr)
        negatives = toyworld_bank(Path.home() / ".cache" / "yollava")
    if negatives is not None:
        print(f"indexing negative bank {negatives} …", file=sys.stderr)
        bank = index_bank(negatives, engine)
    else:
        print(
            "warning: no --negatives bank: hard-negative mining is impossible and recognition of "
            "look-alikes will be poor",
            file=sys.stderr,
        )
    subject = new_subject(
        engine.loaded, display_name=args.name, kind=args.kind, k=args.k, facts=args.facts, seed=args.seed
    )
    result = Trainer(engine, config).teach(subject, photos, bank=bank, progress=ProgressBar())
    save_subject(result.subject, args.out, model_id=engine.model_id)
    print(f"{subject.display_name}: {describe_heldout(result.metrics)}")
    print(f"saved {args.out}")
    return 0


def ask_command(args: argparse.Namespace) -> int:
    image = load_image(args.image) if args.image is not None else None
    for path in args.subjects:
        if not path.is_file():
            raise ModelLoadError(f"{path}: no such subject file")
    engine = open_engine(args)
    subjects = [
        load_subject(path, model_id=engine.model_id, hidden_size=engine.loaded.hidden_size)
        for path in args.subjects
    ]
    print(engine.respond(args.question, image=image, subjects=subjects))
    return 0
