"""``yollava demo``: the whole flow offline on the toy-world model, in a few minutes on a laptop.

It writes a small toy-world dataset, teaches one subject from five photos with a progress bar,
then asks "Is <name> in this photo?" about held-out photos of the subject, of its look-alikes and
of random scenes, asks a text-only question, and prints what it got right.
"""

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from tqdm import tqdm

from personalization.cli import add_model_options, open_engine
from personalization.cli_commands import ProgressBar
from personalization.evaluation import display_name, load_dataset
from personalization.images import load_image
from personalization.modeling import TOYWORLD_MODEL_NAME
from personalization.negatives import index_bank
from personalization.presets import train_config_for
from personalization.subject import new_subject
from personalization.trainer import Trainer, describe_heldout

DEMO_RANDOM_SCENES = 4


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    demo = subparsers.add_parser("demo", help="the offline demo on the toy-world model")
    demo.add_argument(
        "--out", type=Path, default=None, help="where to write the demo dataset (default: a temp dir)"
    )
    demo.add_argument("--seed", type=int, default=2024)
    add_model_options(demo, default_model=TOYWORLD_MODEL_NAME)
    demo.set_defaults(handler=demo_command, threads=2)


def demo_command(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="yollava-demo-") as scratch:
        return run_demo(args, args.out or Path(scratch) / "data")


def _say(message: str = "") -> None:
    print(message, flush=True)


def run_demo(args: argparse.Namespace, root: Path) -> int:
    from personalization.toyworld.corpus import attribute_questions, random_scene_entities
    from personalization.toyworld.dataset import DatasetSizes, write_dataset
    from personalization.toyworld.world import render_scene

    started = time.monotonic()
    _say("yollava demo — teach a subject from 5 photos, then ask about new photos (toy world, offline)\n")
    _say(f"1. Rendering a small toy world into {root} …")
    sizes = DatasetSizes(
        train_photos=5, test_photos=4, test_lookalikes=3, bank_size=240, bank_lookalikes_per_subject=12
    )
    with tqdm(total=None, desc="   images", unit="img", file=sys.stdout, leave=False) as bar:
        write_dataset(root, seed=args.seed, n_subjects=1, sizes=sizes, progress=lambda *_: bar.update(1))
    dataset = load_dataset(root)
    subject_info = dataset.subjects[0]
    name = display_name(subject_info.key)
    _say(f"   Our subject is {name}, {subject_info.description or 'a ' + subject_info.kind}.")

    _say(f"2. Loading the {args.model} model …")
    engine = open_engine(args)
    _say("3. Indexing the negative bank (hard negatives come from here) …")
    assert dataset.negatives is not None
    bank = index_bank(dataset.negatives, engine)
    _say(f"   {len(bank)} generic images indexed.")

    _say(f"4. Teaching {name} from {len(subject_info.train)} photos …")
    config = train_config_for(
        engine.model_id, attribute_questions=tuple(attribute_questions(subject_info.kind))
    )
    subject = new_subject(engine.loaded, display_name=name, kind=subject_info.kind, seed=args.seed)
    photos = [load_image(p) for p in subject_info.train]
    result = Trainer(engine, config).teach(subject, photos, bank=bank, progress=ProgressBar())
    _say(f"   {name}: {describe_heldout(result.metrics)}")

    _say(f"\n5. Asking 'Is {name} in this photo?' about photos it has never seen:")
    rng = random.Random(args.seed)
    cases = [(p, "a new photo of " + name, True) for p in subject_info.test]
    cases += [(p, "a look-alike", False) for p in subject_info.lookalikes]
    scene_dir = root / "random_scenes"
    scene_dir.mkdir(exist_ok=True)
    for index in range(DEMO_RANDOM_SCENES):
        path = scene_dir / f"{index}.png"
        render_scene(random_scene_entities(rng), rng).save(path)
        cases.append((path, "a random scene", False))
    right = 0
    for path, what, expected in cases:
        reply = engine.respond(f"Is {name} in this photo?", image=load_image(path), subjects=[subject])
        correct = reply.startswith("Yes") == expected
        right += correct
        _say(f"   {'✓' if correct else '✗'} {what:<22} {path.relative_to(root)}: {reply}")

    question = f"What colour is {name}?"
    _say(f"\n6. A text-only question (no photo): {question}")
    _say(f"   → {engine.answer(question, subjects=[subject], max_new_tokens=12)}")

    _say(
        f"\nSummary: {right}/{len(cases)} recognition answers correct; teaching took "
        f"{result.metrics['seconds']} s; whole demo {time.monotonic() - started:.0f} s."
    )
    return 0
