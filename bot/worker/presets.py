"""Training recipes by model size: the paper's for real LLaVAs, shorter and hotter for small ones.

A 7B LLaVA learns a subject with the paper's AdamW 1e-3 over ~15 epochs; the toy-world model and
the tests' tiny random model have far fewer, larger-scale embedding dimensions and need a higher
learning rate and fewer, smaller epochs to separate a subject in CPU-minutes.
"""

from dataclasses import dataclass

from personalization.config import TrainConfig
from personalization.subject import DEFAULT_LATENT_TOKENS

TOYWORLD_MODEL_NAME = "toyworld"


@dataclass(frozen=True)
class TrainingPreset:
    """A recipe and the number of latent tokens a new subject gets."""

    config: TrainConfig
    latent_tokens: int = DEFAULT_LATENT_TOKENS


PRESETS: dict[str, TrainingPreset] = {
    # Paper recipe (LLaVA-1.5-7B/13B on a GPU).
    "paper": TrainingPreset(TrainConfig()),
    # The shipped toy-world model on a CPU: minutes per subject.
    "toy": TrainingPreset(
        TrainConfig(
            epochs=8,
            learning_rate=5e-3,
            positive_examples=48,
            hard_negatives_per_photo=12,
            easy_negatives=32,
            qa_max_new_tokens=16,
        ),
        latent_tokens=16,
    ),
    # The tests' tiny random LLaVA: seconds per subject (same recipe as the trainer's tests).
    "tiny": TrainingPreset(
        TrainConfig(
            epochs=12,
            learning_rate=1e-2,
            positive_examples=24,
            hard_negatives_per_photo=6,
            easy_negatives=24,
            attribute_questions=("What color is the {kind}?",),
            qa_max_new_tokens=4,
        ),
        latent_tokens=8,
    ),
}


def default_preset_name(model: str) -> str:
    """``toy`` for the toy-world model, ``paper`` for anything else."""
    return "toy" if model == TOYWORLD_MODEL_NAME else "paper"


def training_preset(name: str) -> TrainingPreset:
    """The preset called ``name``.

    Raises:
        ValueError: no such preset (the message lists the known ones).
    """
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown training preset {name!r}; choose one of {sorted(PRESETS)}") from None
