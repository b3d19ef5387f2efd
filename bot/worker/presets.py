"""Training recipes the worker can run, by name: ``paper``, ``toy`` and ``tiny``.

``paper`` and ``toy`` are the ML core's recipes (:mod:`personalization.presets`): the paper's
15 epochs at AdamW 1e-3 for a real 7B/13B LLaVA, and a shorter, hotter one for the toy-world
model on a CPU. ``tiny`` is for the tests' tiny random LLaVA (seconds per subject), the same
recipe its trainer tests use. Each preset also fixes k, the latent tokens of a new subject.
"""

from dataclasses import dataclass

from personalization.config import TrainConfig
from personalization.modeling import TOYWORLD_MODEL_NAME
from personalization.presets import train_config_for
from personalization.subject import DEFAULT_LATENT_TOKENS


@dataclass(frozen=True)
class TrainingPreset:
    """A recipe and the number of latent tokens a new subject gets."""

    config: TrainConfig
    latent_tokens: int = DEFAULT_LATENT_TOKENS


PRESET_NAMES = ("paper", "toy", "tiny")

# The tests' tiny random LLaVA: seconds per subject (the trainer tests' recipe).
_TINY = TrainingPreset(
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
)


def default_preset_name(model: str) -> str:
    """``toy`` for the toy-world model, ``paper`` for anything else."""
    return "toy" if model == TOYWORLD_MODEL_NAME else "paper"


def training_preset(name: str) -> TrainingPreset:
    """The preset called ``name``.

    Raises:
        ValueError: no such preset (the message lists the known ones).
    """
    if name == "paper":
        return TrainingPreset(train_config_for("paper"))
    if name == "toy":
        return TrainingPreset(train_config_for(TOYWORLD_MODEL_NAME))
    if name == "tiny":
        return _TINY
    raise ValueError(f"unknown training preset {name!r}; choose one of {', '.join(PRESET_NAMES)}")
