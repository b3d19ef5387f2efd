"""How well does a vision tower see crowded scenes? Linear probes per entity count.

Fits one linear probe per attribute on a frozen tower's patch features (entity patches only;
for ``kind``, the entity's kind without a background class), then reports on held-out scenes
of one, two and three entities (``corpus.random_scene_entities``' mix) the share of patches
read right and of *entities* read right (the probes' log-probabilities averaged over the
entity's patches). What the language model can find in a crowded scene is bounded by this.

Probe the shipped model, or train a fresh tower first (stage 1 alone, as ``pretrain`` would):

    python benchmarks/tower_probe.py --model toyworld --json benchmarks/results/tower_probe_shipped.json
    python benchmarks/tower_probe.py --train-steps 800 --batch-size 32 --learning-rate 3e-3 \\
        --crowded-share 0.7 --json benchmarks/results/tower_probe_crowded_800.json
"""

import argparse
import json
import platform
import random
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from personalization.modeling import TOYWORLD_MODEL_NAME, cpu_autocast, load_model
from personalization.toyworld.corpus import random_scene_entities
from personalization.toyworld.pretrain import PretrainConfig, new_toy_model
from personalization.toyworld.vision_warmup import (
    ATTRIBUTE_CLASSES,
    IGNORE,
    VisionWarmupConfig,
    patch_labels,
    warm_up_vision_tower,
)
from personalization.toyworld.world import KINDS, patch_owners, render_scene_with_owners

PROBE_SEED = 4242
PROBE_STEPS = 300


def render(
    rng: random.Random, n: int, processor: object, patch_size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n`` scenes: pixels, patch labels [n, P, A], patch owners [n, P], entity counts [n]."""
    images, labels, owners, counts = [], [], [], []
    for _ in range(n):
        entities = random_scene_entities(rng)
        image, owner_map = render_scene_with_owners(entities, rng)
        patch_owner = patch_owners(owner_map, patch_size)
        images.append(image)
        labels.append(patch_labels(entities, patch_owner))
        owners.append(torch.from_numpy(patch_owner))
        counts.append(len(entities))
    pixels = processor.image_processor(images, return_tensors="pt")["pixel_values"]  # type: ignore[attr-defined]
    return pixels, torch.stack(labels), torch.stack(owners), torch.tensor(counts)


def features(tower: nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    out = []
    with torch.no_grad(), cpu_autocast():
        for start in range(0, len(pixels), 128):
            out.append(tower(pixel_values=pixels[start : start + 128]).last_hidden_state[:, 1:].float())
    return torch.cat(out)


def probe(tower: nn.Module, processor: object, n_train: int, n_test: int) -> dict[str, dict[str, float]]:
    """Per attribute: patch and entity accuracy by entity count (``patch_1`` … ``entity_3``)."""
    patch_size = int(tower.config.patch_size)  # type: ignore[union-attr]
    rng = random.Random(PROBE_SEED)
    train_pixels, train_labels, _, _ = render(rng, n_train, processor, patch_size)
    test_pixels, test_labels, test_owners, test_counts = render(rng, n_test, processor, patch_size)
    train_features, test_features = features(tower, train_pixels), features(tower, test_pixels)
    hidden = train_features.shape[-1]
    torch.manual_seed(PROBE_SEED)
    report: dict[str, dict[str, float]] = {}
    for column, (name, classes) in enumerate(ATTRIBUTE_CLASSES.items()):
        x = train_features.reshape(-1, hidden)
        y = train_labels[..., column].reshape(-1)
        keep = y != IGNORE
        if name == "kind":  # the entity's kind, no background class
            keep &= y < len(KINDS)
        x, y = x[keep], y[keep]
        mean, std = x.mean(0), x.std(0) + 1e-5
        linear = nn.Linear(hidden, len(classes))
        optimizer = torch.optim.Adam(linear.parameters(), lr=1e-2)
        for _ in range(PROBE_STEPS):
            batch = torch.randint(0, len(x), (8192,))
            loss = nn.functional.cross_entropy(linear((x[batch] - mean) / std), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            log_probs = linear((test_features - mean) / std).log_softmax(-1)
        target = test_labels[..., column]
        row: dict[str, float] = {}
        for count in (1, 2, 3):
            scenes = test_counts == count
            on_entity = (test_owners > 0) & scenes[:, None]
            row[f"patch_{count}"] = round(
                float((log_probs.argmax(-1)[on_entity] == target[on_entity]).float().mean()), 3
            )
            right = []
            for scene in torch.nonzero(scenes).flatten().tolist():
                for entity in range(1, count + 1):
                    mask = test_owners[scene] == entity
                    if bool(mask.any()):
                        guess = int(log_probs[scene][mask].mean(0).argmax())
                        right.append(guess == int(target[scene][mask][0]))
            row[f"entity_{count}"] = round(float(np.mean(right)), 3)
        report[name] = row
        print(name, row, flush=True)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", default=None, help=f"a model to probe ({TOYWORLD_MODEL_NAME} or a directory)"
    )
    parser.add_argument(
        "--train-steps", type=int, default=0, help="train a fresh tower this many steps instead"
    )
    parser.add_argument("--batch-size", type=int, default=VisionWarmupConfig.batch_size)
    parser.add_argument("--learning-rate", type=float, default=VisionWarmupConfig.learning_rate)
    parser.add_argument("--crowded-share", type=float, default=VisionWarmupConfig.crowded_share)
    parser.add_argument("--three-share", type=float, default=VisionWarmupConfig.three_share)
    parser.add_argument("--entity-kind-weight", type=float, default=PretrainConfig.vision_entity_kind_weight)
    parser.add_argument("--entity-balance", type=float, default=VisionWarmupConfig.entity_balance)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--probe-train", type=int, default=2000, help="scenes the probes are fitted on")
    parser.add_argument("--probe-test", type=int, default=400, help="held-out scenes")
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args(argv)
    if (args.model is None) == (args.train_steps <= 0):
        parser.error("give either --model or --train-steps")
    torch.set_num_threads(2)
    started = time.monotonic()
    setup: dict[str, object]
    if args.model is not None:
        loaded = load_model(args.model, device="cpu", dtype=torch.float32)
        model, processor = loaded.model, loaded.processor
        setup = {"model": args.model}
    else:
        torch.manual_seed(args.seed)
        model, processor = new_toy_model(args.seed)
        config = VisionWarmupConfig(
            steps=args.train_steps,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            crowded_share=args.crowded_share,
            three_share=args.three_share,
            entity_kind_weight=args.entity_kind_weight,
            entity_balance=args.entity_balance,
        )
        warm_up_vision_tower(model, processor, seed=args.seed, config=config)
        setup = {
            "trained": asdict(config),
            "seed": args.seed,
            "train_seconds": round(time.monotonic() - started, 1),
        }
    report = probe(model.model.vision_tower.eval(), processor, args.probe_train, args.probe_test)
    result = {
        "setup": setup,
        "probe_scenes": {"train": args.probe_train, "test": args.probe_test, "seed": PROBE_SEED},
        "accuracy": report,
        "seconds": round(time.monotonic() - started, 1),
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
        },
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
