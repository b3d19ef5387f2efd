"""In scenes of two or three entities, what does a toy model get wrong?

Asks every entity of held-out crowded scenes its colour, pattern and accessory (the generic QA
report's named questions) and reports, by entities in the scene:

- accuracy per question, and by how many image patches the entity owns
  (``world.patch_owners`` at the tower's patch size);
- of the wrong answers, the share that name the value of *another* entity in the scene (a
  binding error: the answer belongs to a neighbour), beside the share a wrong answer drawn at
  random from the other values would match by chance.

    python benchmarks/crowding_errors.py --model toyworld --entities 900 --seed 4711 \\
        --json benchmarks/results/crowding_errors_shipped.json
"""

import argparse
import json
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from personalization.modeling import TOYWORLD_MODEL_NAME, load_model
from personalization.toyworld.corpus import attribute_questions, random_scene_entities
from personalization.toyworld.pretrain import answer
from personalization.toyworld.world import (
    ACCESSORIES,
    COLOURS,
    PATTERNS,
    EntitySpec,
    accessory_phrase,
    patch_owners,
    render_scene_with_owners,
)

QUESTIONS = ("colour", "pattern", "accessory")


def value(entity: EntitySpec, name: str) -> str:
    """The answer to the ``name`` question about ``entity``, lower-cased."""
    raw = accessory_phrase(entity.accessory) if name == "accessory" else getattr(entity, name)
    return str(raw).lower()


def all_values(name: str) -> list[str]:
    """Every answer the ``name`` question can have, lower-cased."""
    if name == "colour":
        return [c.lower() for c in COLOURS]
    if name == "pattern":
        return [p.lower() for p in PATTERNS]
    return [accessory_phrase(a).lower() for a in ACCESSORIES]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=TOYWORLD_MODEL_NAME, help="toyworld or a model directory")
    parser.add_argument("--entities", type=int, default=900, help="crowded-scene entities to ask about")
    parser.add_argument("--seed", type=int, default=4711)
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    started = time.monotonic()
    loaded = load_model(args.model, device=torch.device("cpu"), dtype=torch.bfloat16)
    patch_size = int(loaded.model.config.vision_config.patch_size)
    rng = random.Random(args.seed)
    asked: dict[str, int] = defaultdict(int)
    right: dict[str, int] = defaultdict(int)
    wrong_neighbour: dict[str, int] = defaultdict(int)
    chance: dict[str, float] = defaultdict(float)
    done = 0
    while done < args.entities:
        entities = random_scene_entities(rng)
        image, owner_map = render_scene_with_owners(entities, rng)
        if len(entities) == 1:
            continue
        owners = patch_owners(owner_map, patch_size)
        for index, entity in enumerate(entities, start=1):
            patches = int((owners == index).sum())
            band = f"{min(patches, 10) // 2 * 2}-{min(patches, 10) // 2 * 2 + 1}"
            questions = attribute_questions(entity.kind)[:3]
            for name, question in zip(QUESTIONS, questions, strict=True):
                truth = value(entity, name)
                said = answer(loaded, image, question).lower()
                neighbours = {value(other, name) for other in entities if other is not entity}
                group = f"{len(entities)}/{name}"
                for key in (group, f"{group}/patches {band}"):
                    asked[key] += 1
                    right[key] += int(said == truth)
                if said != truth:
                    wrong_neighbour[group] += int(said in neighbours)
                    others = [v for v in all_values(name) if v != truth]
                    chance[group] += sum(v in neighbours for v in others) / len(others)
            done += 1
    report: dict[str, object] = {
        "accuracy": {key: round(right[key] / asked[key], 3) for key in sorted(asked)},
        "asked": dict(sorted(asked.items())),
        "wrong_answers_naming_a_neighbour": {
            group: {
                "wrong": asked[group] - right[group],
                "a_neighbours_value": wrong_neighbour[group],
                "share": round(wrong_neighbour[group] / max(1, asked[group] - right[group]), 3),
                "share_by_chance": round(chance[group] / max(1, asked[group] - right[group]), 3),
            }
            for group in sorted(wrong_neighbour.keys() | {k for k in asked if k.count("/") == 1})
        },
    }
    result = {
        "benchmark": "crowding_errors",
        "model": args.model,
        "entities": args.entities,
        "seed": args.seed,
        **report,
        "seconds": round(time.monotonic() - started, 1),
        "command": "python benchmarks/crowding_errors.py " + " ".join(sys.argv[1:] if argv is None else argv),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(report["wrong_answers_naming_a_neighbour"], indent=1))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
