"""The toy world's default negative bank: random rendered scenes, made once and cached on disk.

The ``toyworld`` model uses it whenever no bank is configured, so hard-negative mining works out
of the box offline. Scenes are random entities (never a user's photo); the folder is rendered
into a temporary directory and renamed into place, so a crash never leaves half a bank.
"""

import random
import shutil
import tempfile
from pathlib import Path

DEFAULT_BANK_SIZE = 400
BANK_SEED = 31337
BANK_FORMAT = 1


def toyworld_bank(cache_root: Path, *, size: int = DEFAULT_BANK_SIZE, seed: int = BANK_SEED) -> Path:
    """The folder of ``size`` random toy-world scenes under ``cache_root``, rendered on first use."""
    from personalization.toyworld.corpus import random_scene_entities
    from personalization.toyworld.world import render_scene

    target = cache_root / f"toyworld-bank-v{BANK_FORMAT}-seed{seed}-n{size}"
    if target.is_dir():
        return target
    cache_root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".toyworld-bank-", dir=cache_root))
    try:
        rng = random.Random(seed)
        for index in range(size):
            render_scene(random_scene_entities(rng), rng).save(scratch / f"{index:05d}.png")
        scratch.rename(target)
    except FileExistsError:
        pass  # another process finished first; its bank is identical
    except OSError:
        if not target.is_dir():
            raise
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)
    return target
