"""The researcher's commands: ``yollava teach`` and ``yollava ask`` (``eval``, ``demo`` and
``toyworld`` live beside them). This is an edge: it reads argv, picks device and dtype once,
and turns every :class:`PersonalizationError` into one line on stderr and exit status 2.
"""

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch

from personalization.errors import PersonalizationError

if TYPE_CHECKING:
    from personalization.engine import Engine

DEFAULT_MODEL = "llava-hf/llava-1.5-7b-hf"
EXIT_USAGE = 2

logger = logging.getLogger(__name__)

Handler = Callable[[argparse.Namespace], int]


def pick_device(name: str) -> torch.device:
    """``auto`` means CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise PersonalizationError("--device cuda was asked for, but no CUDA device is available")
    return torch.device(name)


def pick_dtype(name: str, device: torch.device) -> torch.dtype:
    """``auto`` is bfloat16 where ``device`` computes it natively, else float32 (see
    :func:`~personalization.modeling.preferred_dtype`); fp16 is refused on a CPU."""
    from personalization.modeling import native_bfloat16, preferred_dtype

    if name == "fp16" and device.type == "cpu":
        raise PersonalizationError("--dtype fp16 on a CPU is very slow; use bf16 or fp32")
    if name == "auto":
        return preferred_dtype(device)
    if name == "bf16" and not native_bfloat16(device):
        logger.warning("%s has no native bfloat16: it will be emulated and slow; fp32 is faster", device)
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[name]


def add_model_options(parser: argparse.ArgumentParser, *, default_model: str = DEFAULT_MODEL) -> None:
    parser.add_argument(
        "--model", default=default_model, help=f"hub id, local path or 'toyworld' (default {default_model})"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    parser.add_argument("--dtype", default="auto", choices=["auto", "bf16", "fp16", "fp32"])
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)"
    )


def open_engine(args: argparse.Namespace) -> "Engine":
    """Load the model named by the common options and wrap it in an :class:`Engine`."""
    from transformers.utils import logging as transformers_logging

    from personalization.engine import Engine
    from personalization.modeling import load_model

    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    return Engine(load_model(args.model, device=device, dtype=pick_dtype(args.dtype, device)))


def add_research_commands(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register teach / ask on ``subparsers`` (each sets ``handler``)."""
    from personalization import cli_commands, cli_eval, demo

    cli_commands.register(subparsers)
    cli_eval.register(subparsers)
    demo.register(subparsers)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="yollava", description="Personalized LLaVA: teach and ask.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_research_commands(subparsers)
    return parser


def run(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    """Parse and dispatch; a :class:`PersonalizationError` becomes one line and exit status 2."""
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except PersonalizationError as error:
        print(f"yollava: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("yollava: interrupted", file=sys.stderr)
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser(), argv)
