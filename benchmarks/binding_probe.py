"""Where does a pretrained toy model's attribute QA fail: reading, binding, or the projector?

Asks held-out scenes (the generic QA report's seed stream) the attribute questions of every
entity, once with the image tokens the model's projector makes and once with *ideal* image
tokens (``pretrain.ideal_image_tokens``: each entity patch spells out its entity's attribute
words), and reports exact-match accuracy per question type and number of entities in the scene.
A language model that binds answers crowded scenes about as well as lone entities with ideal
tokens; if it does with ideal tokens but not with the projector's, the tokens are to blame.

It also decodes the projector's tokens: on every entity patch, the kind / colour word whose
input embedding is nearest (cosine) — how often that is the entity's own.

    python benchmarks/binding_probe.py --model personalization/toyworld/weights --scenes 60 \\
        --json benchmarks/results/binding_probe_shipped.json
"""

import argparse
import json
import platform
import random
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from personalization.modeling import TOYWORLD_MODEL_NAME, load_model
from personalization.toyworld.corpus import (
    Conversation,
    attribute_questions,
    capitalise,
    random_scene_entities,
)
from personalization.toyworld.pretrain import (
    TOYWORLD_SPEC,
    _ProjectorTap,
    answer,
    attribute_word_ids,
    ideal_image_tokens,
)
from personalization.toyworld.world import (
    COLOURS,
    KINDS,
    accessory_phrase,
    article,
    patch_owners,
    render_scene_with_owners,
)

SOURCES = ("projector", "ideal")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", default=TOYWORLD_MODEL_NAME, help="toyworld or a pretrained model directory"
    )
    parser.add_argument("--scenes", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1000, help="the generic QA report's held-out seed")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.monotonic()

    loaded = load_model(args.model, device="cpu", dtype=torch.float32)
    word_ids = attribute_word_ids(loaded.processor.tokenizer)
    embeddings = loaded.model.get_input_embeddings().weight.detach().float()
    tap = _ProjectorTap()
    loaded.model.model.multi_modal_projector.register_forward_hook(tap)
    word_vectors = {
        group: torch.nn.functional.normalize(
            torch.stack([embeddings[word_ids[w]].mean(0) for w in words]), dim=-1
        )
        for group, words in (("kind", list(KINDS)), ("colour", list(COLOURS)))
    }

    rng = random.Random(args.seed)
    asked: dict[str, int] = {}
    right: dict[str, int] = {}
    decoded = {group: [0, 0] for group in word_vectors}
    for _ in range(args.scenes):
        entities = random_scene_entities(rng)
        image, owners = render_scene_with_owners(entities, rng)
        scene = Conversation(image=image, turns=[], entities=entities, owners=owners)
        ideal = ideal_image_tokens([scene], embeddings, word_ids, TOYWORLD_SPEC.patch_size)
        for source in SOURCES:
            tap.ideal, tap.replace = (ideal, torch.tensor([True])) if source == "ideal" else (None, None)
            for entity in entities:
                colour_q, pattern_q, accessory_q, kind_q = attribute_questions(entity.kind)
                questions = [
                    ("colour", colour_q, entity.colour),
                    ("pattern", pattern_q, entity.pattern),
                    ("accessory", accessory_q, accessory_phrase(entity.accessory)),
                ]
                if len(entities) == 1:
                    questions.append(("kind", kind_q, f"{article(entity.kind)} {entity.kind}"))
                for name, question, truth in questions:
                    key = f"{source}/{name}/{len(entities)}"
                    asked[key] = asked.get(key, 0) + 1
                    said = answer(loaded, image, question)
                    right[key] = right.get(key, 0) + int(said.lower() == capitalise(truth).lower())
            if source == "projector" and tap.output is not None:
                tokens = torch.nn.functional.normalize(tap.output[0].float(), dim=-1)
                owner_of = torch.from_numpy(patch_owners(owners, TOYWORLD_SPEC.patch_size)).flatten()
                for group, vectors in word_vectors.items():
                    nearest = (tokens @ vectors.T).argmax(dim=-1)
                    words = list(KINDS if group == "kind" else COLOURS)
                    for patch, owner in enumerate(owner_of.tolist()):
                        if owner > 0:
                            decoded[group][0] += 1
                            truth_index = words.index(getattr(entities[owner - 1], group))
                            decoded[group][1] += int(nearest[patch].item() == truth_index)
    tap.ideal = tap.replace = None

    accuracy = {key: right[key] / asked[key] for key in sorted(asked)}
    result = {
        "benchmark": "binding_probe",
        "model": args.model,
        "scenes": args.scenes,
        "seed": args.seed,
        "accuracy": accuracy,
        "questions": {key: asked[key] for key in sorted(asked)},
        "projector_tokens_nearest_word_right": {g: n[1] / n[0] if n[0] else None for g, n in decoded.items()},
        "seconds": round(time.monotonic() - started, 1),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "threads": args.threads,
        "command": "python benchmarks/binding_probe.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    for key, value in accuracy.items():
        print(f"{key:24s} {value:.2f}  ({asked[key]})")
    print("projector tokens nearest to the right word:", result["projector_tokens_nearest_word_right"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
