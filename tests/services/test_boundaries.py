"""The bot process never imports torch: only the worker does."""

import subprocess
import sys

from bot.services.limits import MIN_TRAINING_PHOTOS
from personalization.trainer import MIN_PHOTOS


def test_services_and_supervisor_import_no_ml_stack() -> None:
    code = (
        "import sys, bot.services.api, bot.services.model_client, bot.worker.supervisor;"
        "heavy = [m for m in ('torch', 'transformers', 'personalization') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_photo_minimum_matches_the_trainer() -> None:
    assert MIN_TRAINING_PHOTOS == MIN_PHOTOS
