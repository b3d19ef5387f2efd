"""Stage 1 of pretraining: teach the vision tower to see the world before the LLaVA learns to talk.

Trained end to end from scratch on conversations alone, a small LLaVA's language model learns the
answer priors long before the vision tower carries any signal, and then ignores the image (seen
here: every scene got the same answer after 450 steps). So the tower is first trained by direct,
*dense* supervision: the renderer says which entity every pixel shows
(:func:`~personalization.toyworld.world.render_scene_with_owners`), so every patch feature is
classified by linear heads into the kind it shows (or background) and, on entity patches, every
attribute of that entity, *fine ones included* (shade, marking placement, shape variant). A head on
the mean feature predicts how many entities the scene holds.

Per-patch targets matter: with one pooled feature per image (the first version of this stage) the
tower could not tell an entity's colour from the background's, and colour stayed at chance. The
heads are thrown away; the tower keeps local features that separate look-alikes, which
personalization needs, and that the language model can find by attention.
"""

import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import nn
from transformers import LlavaForConditionalGeneration, LlavaProcessor

from personalization.modeling import cpu_autocast
from personalization.toyworld.painting import paint_scenes
from personalization.toyworld.prefetch import Prefetched
from personalization.toyworld.world import (
    ACCESSORIES,
    COLOURS,
    KINDS,
    MARKINGS,
    PATTERNS,
    SHADES,
    EntitySpec,
    patch_owners,
    plan_scene,
    random_entity,
)

ATTRIBUTE_CLASSES: dict[str, tuple[object, ...]] = {
    "kind": KINDS,
    "colour": tuple(COLOURS),
    "pattern": PATTERNS,
    "accessory": ACCESSORIES,
    "shade": tuple(SHADES),
    "marking": MARKINGS,
    "variant": (0, 1, 2),
}
"""Every attribute an entity patch is classified by; ``kind`` has one more class, background."""
MAX_ENTITIES = 3
IGNORE = -100


@dataclass(frozen=True)
class VisionWarmupConfig:
    steps: int = 3600
    batch_size: int = 32
    learning_rate: float = 3e-3
    pool_size: int = 4000
    fresh_per_step: int = 16
    crowded_share: float = 0.7
    """Share of scenes with two or three entities; the rest hold one. Crowded entities are small,
    a few patches each, and at the first recipe's mix (crowded 0.275, three entities 0.1) the tower
    learned them last: after its 1200 steps a linear probe found the kind of an entity in a
    three-entity scene on 0.52 of them, alone on 0.86 (``benchmarks/tower_probe.py``). At 0.7
    (batch 32, lr 3e-3, 800 steps) 0.52, where the old mix with the same settings reached 0.31;
    the whole recipe at 0.7, 0.83 (``weights/README.md``, "Crowded scenes for the tower")."""
    three_share: float = 0.5
    """Share of the crowded scenes with three entities."""
    background: bool = False
    """Render the fresh and held-out scenes in a background process while the tower trains (the
    same scenes, in the same order, as rendering them in line); see
    ``PretrainConfig.background_rendering``."""
    entity_kind_weight: float = 0.0
    """Weight of an extra kind loss on entity patches only (background excluded). The kind
    head alone is dominated by background patches: after the shipped 1200 steps a linear probe
    found the right kind on only ~0.5 of entity patches, which is what the language model must
    match a question's kind word against. 300 more steps with this weight at 2 reached 0.70,
    without it 0.50; a whole run with it, 0.82."""

    entity_balance: float = 0.0
    """How far each entity patch's losses are scaled toward an equal share per entity: a patch of
    an entity covering ``n`` patches weighs ``n ** -entity_balance`` (then normalised to a mean of
    one over the batch's entity patches). At 0 every patch counts the same, so a lone entity
    (25-45 patches) outweighs a crowded one (about 5) several times; at 1 every entity counts the
    same. Background patches keep weight one in the kind loss."""

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ValueError(f"steps={self.steps} must not be negative")
        if self.batch_size < 1:
            raise ValueError(f"batch_size={self.batch_size} must be at least 1")
        if self.entity_kind_weight < 0:
            raise ValueError(f"entity_kind_weight={self.entity_kind_weight} must not be negative")
        if self.entity_balance < 0:
            raise ValueError(f"entity_balance={self.entity_balance} must not be negative")
        for name in ("crowded_share", "three_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name}={getattr(self, name)} must lie in [0, 1]")
        if self.pool_size < self.batch_size:
            raise ValueError(f"pool_size={self.pool_size} is smaller than batch_size={self.batch_size}")


def patch_labels(entities: list[EntitySpec], owners: np.ndarray) -> torch.Tensor:
    """Targets of one scene: ``[patches, len(ATTRIBUTE_CLASSES)]`` class indices.

    ``owners`` is :func:`patch_owners`' output. A background patch has kind ``len(KINDS)`` and
    :data:`IGNORE` for every other attribute.
    """
    labels = torch.full((len(owners), len(ATTRIBUTE_CLASSES)), IGNORE, dtype=torch.long)
    for patch, owner in enumerate(owners.tolist()):
        if owner == 0:
            labels[patch, 0] = len(KINDS)
            continue
        entity = entities[owner - 1]
        for column, (name, classes) in enumerate(ATTRIBUTE_CLASSES.items()):
            labels[patch, column] = classes.index(getattr(entity, name))
    return labels


class PatchHeads(nn.Module):
    """Linear heads from each patch feature to its kind (or background) and its entity's
    attributes, and from the mean feature to the number of entities."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        sizes = {name: len(classes) for name, classes in ATTRIBUTE_CLASSES.items()}
        sizes["kind"] += 1
        self.attributes = nn.ModuleDict({name: nn.Linear(hidden, n) for name, n in sizes.items()})
        self.count = nn.Linear(hidden, MAX_ENTITIES)

    def loss(
        self,
        features: torch.Tensor,
        labels: torch.Tensor,
        counts: torch.Tensor,
        *,
        entity_kind_weight: float = 0.0,
        entity_balance: float = 0.0,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Summed losses for patch ``features`` [B, P, H] with ``labels`` [B, P, A] and entity
        ``counts`` [B]; also the per-attribute accuracy on the patches that have a label, and
        ``entity_kind``, the kind accuracy on entity patches alone. ``entity_kind_weight`` adds
        that many times the kind loss on entity patches; ``entity_balance`` weighs patches as
        :attr:`VisionWarmupConfig.entity_balance` says."""
        loss = nn.functional.cross_entropy(self.count(features.mean(dim=1)), counts - 1)
        accuracy: dict[str, float] = {}
        flat = features.reshape(-1, features.shape[-1])
        weights = patch_weights(labels, entity_balance).reshape(-1) if entity_balance > 0 else None
        for column, name in enumerate(ATTRIBUTE_CLASSES):
            target = labels[..., column].reshape(-1)
            known = target != IGNORE
            if not bool(known.any()):
                continue
            logits = self.attributes[name](flat[known])
            weight = None if weights is None else weights[known]
            loss = loss + _cross_entropy(logits, target[known], weight)
            accuracy[name] = float((logits.argmax(-1) == target[known]).float().mean())
            if name == "kind":
                loss = loss + self._entity_kind(logits, target[known], entity_kind_weight, accuracy, weight)
        return loss, accuracy

    @staticmethod
    def _entity_kind(
        logits: torch.Tensor,
        target: torch.Tensor,
        weight: float,
        accuracy: dict[str, float],
        patch_weight: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The weighted kind loss on entity patches (background dropped); records their accuracy."""
        on_entity = target < len(KINDS)
        if not bool(on_entity.any()):
            return logits.new_zeros(())
        logits, target = logits[on_entity], target[on_entity]
        accuracy["entity_kind"] = float((logits.argmax(-1) == target).float().mean())
        if weight <= 0:
            return logits.new_zeros(())
        rows = None if patch_weight is None else patch_weight[on_entity]
        return weight * _cross_entropy(logits, target, rows)


def _cross_entropy(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Mean cross-entropy, weighted per row when ``weight`` is given."""
    if weight is None:
        return nn.functional.cross_entropy(logits, target)
    losses = nn.functional.cross_entropy(logits, target, reduction="none")
    return (losses * weight).sum() / weight.sum()


def patch_weights(labels: torch.Tensor, balance: float) -> torch.Tensor:
    """Per patch [B, P]: ``n ** -balance`` for a patch of an entity that covers ``n`` patches of
    its scene, normalised to a mean of one over the entity patches; one for background.

    The entities of a scene have distinct kinds (:func:`vision_scene`), so the kind label tells
    which entity a patch belongs to.
    """
    kinds = labels[..., 0]
    on_entity = kinds < len(KINDS)
    same = (kinds.unsqueeze(-1) == kinds.unsqueeze(-2)) & on_entity.unsqueeze(-1)
    size = same.sum(dim=-1).clamp(min=1).float()
    weight = torch.where(on_entity, size.pow(-balance), torch.ones_like(size))
    if bool(on_entity.any()):
        weight = torch.where(on_entity, weight / weight[on_entity].mean(), weight)
    return weight


HELD_OUT_MIX = (0.275, 0.1 / 0.275)
"""``(crowded_share, three_share)`` of the held-out scenes, fixed so that ``vision_probe_accuracy``
compares across recipes: the first recipe's training mix (one entity 0.725, two 0.175, three 0.1)."""


def vision_scene(rng: random.Random, crowded_share: float, three_share: float = 0.5) -> list[EntitySpec]:
    """One entity, or (``crowded_share`` of the time) two or three of distinct kinds, three
    ``three_share`` of those times."""
    if rng.random() >= crowded_share:
        return [random_entity(rng)]
    count = 3 if rng.random() < three_share else 2
    return [random_entity(rng, kind=kind) for kind in rng.sample(KINDS, count)]


def render_scenes(
    rng: random.Random, size: int, crowded_share: float, patch_size: int, three_share: float = 0.5
) -> tuple[list[Image.Image], torch.Tensor, torch.Tensor]:
    """``size`` rendered scenes, ``crowded_share`` of them with two or three entities of distinct
    kinds (``three_share`` of those with three): the images, patch labels [size, P, A] and entity
    counts [size]."""
    scenes = []
    for _ in range(size):  # planned in the stream's order, then painted together
        entities = vision_scene(rng, crowded_share, three_share)
        scenes.append((entities, plan_scene(entities, rng)))
    images, labels, counts = [], [], []
    for (entities, _), (image, owners) in zip(
        scenes, paint_scenes([plan for _, plan in scenes]), strict=True
    ):
        images.append(image)
        labels.append(patch_labels(entities, patch_owners(owners, patch_size)))
        counts.append(len(entities))
    return images, torch.stack(labels), torch.tensor(counts)


def render_pool(
    rng: random.Random,
    processor: LlavaProcessor,
    size: int,
    crowded_share: float,
    patch_size: int,
    three_share: float = 0.5,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`render_scenes` with the images as pixel values [size, 3, S, S]."""
    images, labels, counts = render_scenes(rng, size, crowded_share, patch_size, three_share)
    return _pixels(processor, images), labels, counts


def _pixels(processor: LlavaProcessor, images: list[Image.Image]) -> torch.Tensor:
    return processor.image_processor(images, return_tensors="pt")["pixel_values"]  # type: ignore[no-any-return]


HELD_OUT_SCENES = 256


def later_scenes(
    state: object, config: VisionWarmupConfig, patch_size: int
) -> Iterator[tuple[list[Image.Image], np.ndarray, np.ndarray]]:
    """Every scene the warm-up renders after its pool, in order, from the random state ``state``:
    ``config.fresh_per_step`` fresh scenes for each step, then the held-out scenes, as
    :func:`render_scenes` gives them with the labels and counts as arrays. A module-level
    generator of picklable items, so that
    :class:`~personalization.toyworld.prefetch.Prefetched` can run it in another process (a tensor
    would travel as a shared-memory handle that dies with its process)."""
    rng = random.Random()
    rng.setstate(state)  # type: ignore[arg-type]
    fresh = (config.fresh_per_step, config.crowded_share, config.three_share)
    plan = [fresh] * (config.steps if config.fresh_per_step else 0) + [(HELD_OUT_SCENES, *HELD_OUT_MIX)]
    for size, crowded, three in plan:
        images, labels, counts = render_scenes(rng, size, crowded, patch_size, three)
        yield images, labels.numpy(), counts.numpy()


def replace_in_pool(pool: Sequence[torch.Tensor], slots: torch.Tensor, fresh: Sequence[torch.Tensor]) -> None:
    """Write ``fresh[k][i]`` into ``pool[k][slots[i]]`` for every ``i`` in order, so that a slot
    drawn twice keeps its later scene.

    ``pool[k][slots] = fresh[k]`` leaves a repeated slot with whichever write its threads
    finish last (on 2 threads nearly every time a different mix), which made whole pretraining
    runs differ from one another; only each slot's last write is made here.
    """
    later = slots.unsqueeze(0) == slots.unsqueeze(1)  # [i, j]: slot i is slot j
    last = ~torch.triu(later, diagonal=1).any(dim=1)
    for tensor, values in zip(pool, fresh, strict=True):
        tensor[slots[last]] = values[last]


def warm_up_vision_tower(
    model: LlavaForConditionalGeneration,
    processor: LlavaProcessor,
    *,
    seed: int,
    config: VisionWarmupConfig,
    progress: Callable[[int, int, float, float], None] | None = None,
) -> dict[str, float]:
    """Train ``model``'s vision tower in place by dense attribute classification; returns the
    per-attribute patch accuracy on held-out scenes. ``progress(step, steps, loss, accuracy)``
    reports the smoothed training accuracy of the colour head.

    Scenes are rendered into a pool (rendering costs more than a vision step) and batches are
    drawn from it, a few pool entries replaced by fresh scenes each step; with
    ``config.background`` those are rendered in a background process while the tower trains.
    """
    tower = model.model.vision_tower
    patch_size = int(tower.config.patch_size)
    heads = PatchHeads(int(tower.config.hidden_size))
    parameters = [*tower.parameters(), *heads.parameters()]
    optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=0.01)
    rng = random.Random(seed ^ 0x5EED)
    pool_pixels, pool_labels, pool_counts = render_pool(
        rng, processor, config.pool_size, config.crowded_share, patch_size, config.three_share
    )
    generator = torch.Generator().manual_seed(seed)
    tower.train()
    smoothed = 0.0
    scenes: Prefetched[tuple[list[Image.Image], np.ndarray, np.ndarray]]
    with Prefetched(later_scenes, rng.getstate(), config, patch_size, background=config.background) as scenes:
        for step in range(config.steps):
            if config.fresh_per_step:
                images, labels, counts = next(scenes)
                slots = torch.randint(0, config.pool_size, (config.fresh_per_step,), generator=generator)
                replace_in_pool(
                    (pool_pixels, pool_labels, pool_counts),
                    slots,
                    (_pixels(processor, images), torch.from_numpy(labels), torch.from_numpy(counts)),
                )
            index = torch.randint(0, config.pool_size, (config.batch_size,), generator=generator)
            for group in optimizer.param_groups:
                warm = min(1.0, (step + 1) / 50)
                decay = 0.5 * (1 + math.cos(math.pi * step / max(1, config.steps)))
                group["lr"] = config.learning_rate * warm * (0.05 + 0.95 * decay)
            with cpu_autocast():
                features = tower(pixel_values=pool_pixels[index]).last_hidden_state[:, 1:]
            loss, accuracy = heads.loss(
                features.float(),
                pool_labels[index],
                pool_counts[index],
                entity_kind_weight=config.entity_kind_weight,
                entity_balance=config.entity_balance,
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, 1.0)
            optimizer.step()
            colour = accuracy.get("colour", 0.0)
            smoothed = colour if step == 0 else 0.95 * smoothed + 0.05 * colour
            if progress is not None and ((step + 1) % 50 == 0 or step + 1 == config.steps):
                progress(step + 1, config.steps, float(loss.detach()), smoothed)
        held_images, held_labels, held_counts = next(scenes)
    tower.eval()
    with torch.no_grad(), cpu_autocast():
        features = tower(pixel_values=_pixels(processor, held_images)).last_hidden_state[:, 1:]
    with torch.no_grad():
        _, held_accuracy = heads.loss(
            features.float(), torch.from_numpy(held_labels), torch.from_numpy(held_counts)
        )
    return held_accuracy
