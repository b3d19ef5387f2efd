"""Stage 1 of pretraining: teach the vision tower to see the world before the LLaVA learns to talk.

Trained end to end from scratch on conversations alone, a small LLaVA's language model learns the
answer priors long before the vision tower carries any signal, and then ignores the image (seen
here: every scene got the same answer after 450 steps). So the tower is first trained by direct
classification: small linear heads on its mean patch feature predict, for single-entity scenes,
every attribute of the entity, *including the fine ones* (shade, marking placement, shape
variant), and for every scene the number of entities and which kinds are present. The heads are
thrown away; the tower keeps features that separate look-alikes, which personalization needs.
"""

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from transformers import LlavaForConditionalGeneration, LlavaProcessor

from personalization.toyworld.corpus import random_scene_entities
from personalization.toyworld.world import (
    ACCESSORIES,
    COLOURS,
    KINDS,
    MARKINGS,
    PATTERNS,
    SHADES,
    EntitySpec,
    random_entity,
    render_scene,
)

_CLASSES: dict[str, tuple[object, ...]] = {
    "kind": KINDS,
    "colour": tuple(COLOURS),
    "pattern": PATTERNS,
    "accessory": ACCESSORIES,
    "shade": tuple(SHADES),
    "marking": MARKINGS,
    "variant": (0, 1, 2),
}
MAX_ENTITIES = 3


@dataclass(frozen=True)
class VisionWarmupConfig:
    steps: int = 1200
    batch_size: int = 64
    learning_rate: float = 1.5e-3
    pool_size: int = 4000
    fresh_per_step: int = 16
    single_entity_share: float = 0.7

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ValueError(f"steps={self.steps} must not be negative")
        if self.batch_size < 1:
            raise ValueError(f"batch_size={self.batch_size} must be at least 1")


class AttributeHeads(nn.Module):
    """Linear heads from a pooled vision feature to every attribute, the count and the kinds."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.attributes = nn.ModuleDict({name: nn.Linear(hidden, len(c)) for name, c in _CLASSES.items()})
        self.count = nn.Linear(hidden, MAX_ENTITIES)
        self.kinds = nn.Linear(hidden, len(KINDS))

    def loss(self, pooled: torch.Tensor, scenes: list[list[EntitySpec]]) -> tuple[torch.Tensor, float]:
        """Summed losses for ``pooled`` [B, H] features of ``scenes``; also the attribute accuracy
        on single-entity scenes."""
        count_target = torch.tensor([len(s) - 1 for s in scenes])
        kinds_target = torch.tensor([[float(k in {e.kind for e in s}) for k in KINDS] for s in scenes])
        loss = nn.functional.cross_entropy(self.count(pooled), count_target)
        loss = loss + nn.functional.binary_cross_entropy_with_logits(self.kinds(pooled), kinds_target)
        single = [i for i, s in enumerate(scenes) if len(s) == 1]
        correct, asked = 0, 0
        if single:
            rows = pooled[single]
            for name, classes in _CLASSES.items():
                target = torch.tensor([classes.index(getattr(scenes[i][0], name)) for i in single])
                logits = self.attributes[name](rows)
                loss = loss + nn.functional.cross_entropy(logits, target)
                correct += int((logits.argmax(-1) == target).sum())
                asked += len(single)
        return loss, correct / max(asked, 1)


def _scene(rng: random.Random, single_share: float) -> list[EntitySpec]:
    if rng.random() < single_share:
        return [random_entity(rng)]
    return random_scene_entities(rng)


def render_pool(
    rng: random.Random, processor: LlavaProcessor, size: int, single_share: float
) -> tuple[torch.Tensor, list[list[EntitySpec]]]:
    """``size`` rendered scenes as processor pixel values [size, 3, S, S], and their entities."""
    scenes = [_scene(rng, single_share) for _ in range(size)]
    images = [render_scene(scene, rng) for scene in scenes]
    pixels = processor.image_processor(images, return_tensors="pt")["pixel_values"]
    return pixels, scenes


def warm_up_vision_tower(
    model: LlavaForConditionalGeneration,
    processor: LlavaProcessor,
    *,
    seed: int,
    config: VisionWarmupConfig,
    progress: Callable[[int, int, float, float], None] | None = None,
) -> float:
    """Train ``model``'s vision tower in place by attribute classification; returns the
    single-entity attribute accuracy on held-out scenes. ``progress(step, steps, loss, accuracy)``
    reports the smoothed training accuracy.

    Scenes are rendered once into a pool (rendering costs more than a vision step) and batches are
    drawn from it; fresh scenes measure the final accuracy.
    """
    tower = model.model.vision_tower
    heads = AttributeHeads(int(tower.config.hidden_size))
    parameters = [*tower.parameters(), *heads.parameters()]
    optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=0.01)
    rng = random.Random(seed ^ 0x5EED)
    pool_pixels, pool_scenes = render_pool(rng, processor, config.pool_size, config.single_entity_share)
    generator = torch.Generator().manual_seed(seed)
    tower.train()
    smoothed = 0.0
    for step in range(config.steps):
        if config.fresh_per_step:
            # Replace a few pool entries each step so the tower sees ~pool + steps·fresh scenes.
            fresh_pixels, fresh_scenes = render_pool(
                rng, processor, config.fresh_per_step, config.single_entity_share
            )
            slots = torch.randint(0, config.pool_size, (config.fresh_per_step,), generator=generator)
            pool_pixels[slots] = fresh_pixels
            for slot, scene in zip(slots.tolist(), fresh_scenes, strict=True):
                pool_scenes[slot] = scene
        index = torch.randint(0, config.pool_size, (config.batch_size,), generator=generator)
        pixels = pool_pixels[index]
        scenes = [pool_scenes[i] for i in index.tolist()]
        for group in optimizer.param_groups:
            warm = min(1.0, (step + 1) / 50)
            decay = 0.5 * (1 + math.cos(math.pi * step / max(1, config.steps)))
            group["lr"] = config.learning_rate * warm * (0.05 + 0.95 * decay)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            features = tower(pixel_values=pixels).last_hidden_state[:, 1:]
            loss, accuracy = heads.loss(features.float().mean(dim=1), scenes)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        smoothed = accuracy if step == 0 else 0.95 * smoothed + 0.05 * accuracy
        if progress is not None and ((step + 1) % 50 == 0 or step + 1 == config.steps):
            progress(step + 1, config.steps, float(loss.detach()), smoothed)
    tower.eval()
    held_pixels, held_scenes = render_pool(rng, processor, 256, 1.0)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        features = tower(pixel_values=held_pixels).last_hidden_state[:, 1:]
        _, held_accuracy = heads.loss(features.float().mean(dim=1), held_scenes)
    return held_accuracy
