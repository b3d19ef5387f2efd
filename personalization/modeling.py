"""Loading a frozen LLaVA, and building small ones offline.

This module knows how to get a ``LlavaForConditionalGeneration`` and its processor into memory,
frozen, on the device and dtype its caller chose. It knows nothing about subjects or training.

Real use passes a hub id (``llava-hf/llava-1.5-7b-hf``) or a local directory. ``toyworld`` names
the small model this project pretrains and ships (see ``personalization.toyworld``). Tests build a
tiny random model with :func:`build_tiny_llava`: a byte-level BPE tokenizer trained in seconds, a
CLIP vision tower, a Llama language model, and an offline processor.
"""

import contextlib
import functools
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    CLIPImageProcessorPil,
    CLIPVisionConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    PreTrainedTokenizerFast,
)

from personalization.errors import ModelLoadError

TOYWORLD_MODEL_NAME = "toyworld"
TOYWORLD_WEIGHTS_DIR = Path(__file__).resolve().parent / "toyworld" / "weights"
CONVENTIONS_FILE = "yollava.json"
"""Optional file beside a model's ``config.json``: how that model expects to be asked (see
:class:`ModelConventions`)."""

LLAVA_15_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}USER: {% else %}ASSISTANT: {% endif %}"
    "{% for item in message['content'] %}"
    "{% if item['type'] == 'text' %}{{ item['text'] }}"
    "{% elif item['type'] == 'image' %}<image>\n{% endif %}"
    "{% endfor %}"
    "{% if message['role'] == 'user' %} {% else %}{{ eos_token }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)


@dataclass(frozen=True)
class ModelConventions:
    """How a base model expects to be asked, where its pretraining taught it a convention.

    ``yes_no_suffix`` ends a question the model should answer with ``Yes`` or ``No`` first: the
    toy-world model taught to answer some questions by checks first and the marked ones directly
    needs the mark to answer directly. Real LLaVA checkpoints answer yes/no questions directly, so
    the default is no suffix.
    """

    yes_no_suffix: str = ""

    @classmethod
    def read(cls, directory: str | Path) -> "ModelConventions":
        """The conventions saved in ``directory`` (defaults where it has no such file).

        Raises:
            ModelLoadError: the file exists but is not a JSON object of known string fields.
        """
        path = Path(directory) / CONVENTIONS_FILE
        if not path.is_file():
            return cls()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            known = {field.name for field in fields(cls)}
            if (
                not isinstance(data, dict)
                or set(data) - known
                or not all(isinstance(v, str) for v in data.values())
            ):
                raise ValueError(f"expected an object with string fields among {sorted(known)}")
            return cls(**data)
        except ValueError as error:
            raise ModelLoadError(f"{path} is not valid: {error}") from error

    def write(self, directory: str | Path) -> None:
        """Save these conventions beside a model in ``directory`` (nothing when all are defaults)."""
        path = Path(directory) / CONVENTIONS_FILE
        if self == ModelConventions():
            path.unlink(missing_ok=True)
            return
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")


@dataclass
class LoadedModel:
    """A frozen LLaVA with the processor that feeds it.

    ``model_id`` is the name the model was loaded by (hub id, ``toyworld`` or a resolved local
    path); subject files record it so they are never applied to another base model.
    """

    model: LlavaForConditionalGeneration
    processor: LlavaProcessor
    model_id: str
    conventions: ModelConventions = ModelConventions()

    @property
    def device(self) -> torch.device:
        return self.model.lm_head.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.lm_head.weight.dtype

    @property
    def hidden_size(self) -> int:
        text_config: Any = self.model.config.text_config
        return int(text_config.hidden_size)


def resolve_model_path(name_or_path: str) -> str:
    """Map the built-in name ``toyworld`` to its shipped directory; leave anything else as is."""
    if name_or_path == TOYWORLD_MODEL_NAME:
        if not (TOYWORLD_WEIGHTS_DIR / "config.json").is_file():
            raise ModelLoadError(
                f"the toy-world weights are missing from {TOYWORLD_WEIGHTS_DIR}; "
                "run `yollava toyworld pretrain` to build them"
            )
        return str(TOYWORLD_WEIGHTS_DIR)
    return name_or_path


def model_identity(name_or_path: str) -> str:
    """The id recorded in subject files: the built-in name, a hub id, or a directory's name."""
    if name_or_path == TOYWORLD_MODEL_NAME:
        return TOYWORLD_MODEL_NAME
    path = Path(name_or_path)
    if path.is_dir():
        return f"{path.resolve().name}"
    return name_or_path


def native_bfloat16(device: torch.device) -> bool:
    """Whether ``device`` computes in bfloat16 natively.

    GPUs from Ampere on do, and CPUs with AVX-512 BF16 or AMX (on ARM, the ``bf16`` feature).
    Elsewhere PyTorch emulates it: on an AVX2-only CPU one training step of the toy model took
    ~45 s in bfloat16 autocast against ~1.4 s in float32 (measured 2026-11-27, AMD EPYC, 2
    threads). oneDNN reports bfloat16 as supported on any AVX-512 CPU, so its answer is not
    enough: on an AVX-512 Xeon without AVX-512 BF16 a toy-model forward and backward took 0.97 s
    in bfloat16 against 0.30 s in float32 (``benchmarks/dtype_speed.py``). The CPU's own flags
    decide where they can be read.
    """
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        flags = cpu_flags()
        if flags is not None:
            return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return torch.backends.cpu.get_cpu_capability().startswith(("AVX512_BF16", "AMX"))
    return False


@functools.cache
def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str] | None:
    """The first CPU's feature flags (x86 ``flags``, ARM ``Features``), or None where unknown.

    Read once per file: :func:`cpu_autocast` asks on every training step."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return None


def preferred_dtype(device: torch.device) -> torch.dtype:
    """bfloat16 where ``device`` has it natively (half the memory, fast), else float32."""
    return torch.bfloat16 if native_bfloat16(device) else torch.float32


@contextlib.contextmanager
def cpu_autocast() -> Iterator[None]:
    """bfloat16 autocast on a CPU that computes it natively; plain float32 elsewhere."""
    if native_bfloat16(torch.device("cpu")):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            yield
    else:
        yield


def load_model(name_or_path: str, *, device: torch.device | str, dtype: torch.dtype) -> LoadedModel:
    """Load a LLaVA checkpoint frozen (no gradients, eval mode) on ``device`` in ``dtype``.

    Args:
        name_or_path: a hub id such as ``llava-hf/llava-1.5-7b-hf``, a local directory saved by
            ``save_pretrained``, or ``toyworld``.
        device: where the weights live, decided once by the caller.
        dtype: weight dtype; :func:`preferred_dtype` picks one (never float16 on a CPU).

    Raises:
        ModelLoadError: the model or its processor cannot be found or loaded.
    """
    path = resolve_model_path(name_or_path)
    try:
        processor = LlavaProcessor.from_pretrained(path)
        model = LlavaForConditionalGeneration.from_pretrained(path, dtype=dtype)
    except (OSError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelLoadError(f"cannot load model {name_or_path!r}: {first_line}") from error
    conventions = ModelConventions.read(path) if Path(path).is_dir() else ModelConventions()
    model.to(torch.device(device))  # type: ignore[arg-type]
    freeze(model)
    return LoadedModel(
        model=model, processor=processor, model_id=model_identity(name_or_path), conventions=conventions
    )


def freeze(model: torch.nn.Module) -> None:
    """Make every base parameter non-trainable and put the model in eval mode."""
    model.requires_grad_(False)
    model.eval()


def train_tokenizer(texts: Iterable[str], *, vocab_size: int) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on ``texts`` with LLaVA's special tokens.

    ``<s>``, ``</s>`` and ``<unk>`` come first; ``<pad>`` and ``<image>`` last, as in llava-hf.
    """
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<unk>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        extra_special_tokens={"image_token": "<image>"},
    )
    fast.add_special_tokens({"pad_token": "<pad>"})
    fast.add_tokens(["<image>"], special_tokens=True)
    fast.padding_side = "right"
    return fast


def build_processor(
    tokenizer: PreTrainedTokenizerFast, *, image_size: int, patch_size: int
) -> LlavaProcessor:
    """An offline LLaVA-1.5 processor: CLIP-style image processing at ``image_size`` pixels."""
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": image_size},
        crop_size={"height": image_size, "width": image_size},
    )
    return LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=patch_size,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=LLAVA_15_CHAT_TEMPLATE,
    )


@dataclass(frozen=True)
class TinyLlavaSpec:
    """Sizes of a small LLaVA built from scratch. Defaults make a test model of ~1M parameters."""

    image_size: int = 32
    patch_size: int = 8
    vision_hidden: int = 32
    vision_layers: int = 2
    vision_heads: int = 2
    text_hidden: int = 64
    text_layers: int = 2
    text_heads: int = 4
    text_intermediate: int = 128
    max_positions: int = 512
    initializer_range: float = 0.02
    seed: int = 0

    def __post_init__(self) -> None:
        if self.image_size % self.patch_size:
            raise ValueError(
                f"image_size={self.image_size} is not a multiple of patch_size={self.patch_size}"
            )
        if self.text_hidden % self.text_heads:
            raise ValueError(
                f"text_hidden={self.text_hidden} is not divisible by text_heads={self.text_heads}"
            )
        if self.vision_hidden % self.vision_heads:
            raise ValueError(
                f"vision_hidden={self.vision_hidden} is not divisible by vision_heads={self.vision_heads}"
            )


def build_llava(tokenizer: PreTrainedTokenizerFast, spec: TinyLlavaSpec) -> LlavaForConditionalGeneration:
    """A randomly initialised LLaVA whose vocabulary matches ``tokenizer``. Deterministic in ``spec.seed``."""
    vision = CLIPVisionConfig(
        hidden_size=spec.vision_hidden,
        intermediate_size=spec.vision_hidden * 4,
        num_hidden_layers=spec.vision_layers,
        num_attention_heads=spec.vision_heads,
        image_size=spec.image_size,
        patch_size=spec.patch_size,
        projection_dim=spec.vision_hidden,
        initializer_range=spec.initializer_range,
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.text_hidden,
        intermediate_size=spec.text_intermediate,
        num_hidden_layers=spec.text_layers,
        num_attention_heads=spec.text_heads,
        num_key_value_heads=spec.text_heads,
        max_position_embeddings=spec.max_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        initializer_range=spec.initializer_range,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),  # type: ignore[call-arg]
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
        projector_hidden_act="gelu",
        tie_word_embeddings=False,
    )
    torch.manual_seed(spec.seed)
    return LlavaForConditionalGeneration(config)


def build_tiny_llava(
    directory: Path,
    *,
    corpus: Iterable[str],
    vocab_size: int = 400,
    spec: TinyLlavaSpec | None = None,
) -> Path:
    """Build a tiny random LLaVA with a locally trained tokenizer and save it to ``directory``.

    The result loads with :func:`load_model` like any checkpoint. Returns ``directory``.
    """
    spec = spec or TinyLlavaSpec()
    tokenizer = train_tokenizer(corpus, vocab_size=vocab_size)
    processor = build_processor(tokenizer, image_size=spec.image_size, patch_size=spec.patch_size)
    model = build_llava(tokenizer, spec)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory
