"""The splice forward: subjects' vectors written into a frozen LLaVA's input and output.

The base model is never modified. A fixed pool of *slot tokens* is added to the tokenizer (not
to the model): in a prompt, a subject's token names are replaced by slots, and at forward time

* ``inputs_embeds`` takes the subject's input vector at every slot position, and
* ``logits = cat(lm_head(h), h @ out.T)`` where ``out`` stacks the output vectors of the
  subjects present, so index ``vocab_size + s`` means slot ``s``.

Any number of subjects can share a prompt; samples in one batch may carry different subjects (a
per-sample mask hides the slots of subjects a sample does not contain, so each sample scores
exactly as if run alone). This module knows tensors and ids, not prompts or training.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
from transformers import PreTrainedTokenizerBase
from transformers.cache_utils import Cache

from personalization.errors import SubjectError
from personalization.modeling import LoadedModel
from personalization.subject import Subject

SLOT_TOKEN_FORMAT = "<|yollava_slot_{}|>"
SLOT_POOL_SIZE = 640
IGNORE_INDEX = -100


def install_slot_tokens(tokenizer: PreTrainedTokenizerBase) -> int:
    """Add the slot pool to ``tokenizer`` once; return the id of slot 0.

    Slots are added after every existing token, so their ids are contiguous.
    """
    first = SLOT_TOKEN_FORMAT.format(0)
    existing = tokenizer.convert_tokens_to_ids(first)
    if isinstance(existing, int) and existing != tokenizer.unk_token_id and existing is not None:
        return existing
    tokenizer.add_tokens([SLOT_TOKEN_FORMAT.format(i) for i in range(SLOT_POOL_SIZE)], special_tokens=True)
    first_id = cast(int, tokenizer.convert_tokens_to_ids(first))
    last_id = cast(int, tokenizer.convert_tokens_to_ids(SLOT_TOKEN_FORMAT.format(SLOT_POOL_SIZE - 1)))
    assert last_id - first_id == SLOT_POOL_SIZE - 1, "slot tokens must be contiguous"
    return first_id


@dataclass
class SubjectTable:
    """The subjects of one forward pass, flattened into slot rows.

    Subject ``j`` owns slots ``offsets[j] .. offsets[j] + k_j`` (identifier first).
    """

    subjects: list[Subject]
    offsets: list[int]

    @classmethod
    def of(cls, subjects: Sequence[Subject]) -> "SubjectTable":
        unique: list[Subject] = []
        for subject in subjects:
            if all(subject is not seen for seen in unique):
                unique.append(subject)
        offsets, total = [], 0
        for subject in unique:
            offsets.append(total)
            total += subject.k + 1
        if total > SLOT_POOL_SIZE:
            raise SubjectError(f"too many subject tokens in one prompt ({total} > {SLOT_POOL_SIZE})")
        return cls(subjects=unique, offsets=offsets)

    @property
    def size(self) -> int:
        return sum(subject.k + 1 for subject in self.subjects)

    def index(self, subject: Subject) -> int:
        for position, candidate in enumerate(self.subjects):
            if candidate is subject:
                return position
        raise SubjectError(f"subject {subject.display_name!r} is not part of this prompt")

    def slot_rows(self, subject: Subject) -> range:
        start = self.offsets[self.index(subject)]
        return range(start, start + subject.k + 1)

    def identifier_slots(self) -> list[int]:
        return list(self.offsets)

    def input_matrix(self) -> torch.Tensor:
        """``[S, H]`` float32, differentiable w.r.t. each subject's ``input_vectors``."""
        return torch.cat([subject.input_vectors for subject in self.subjects])

    def output_matrix(self) -> torch.Tensor:
        """``[S, H]`` float32, differentiable w.r.t. each subject's ``output_vectors``."""
        return torch.cat([subject.output_vectors for subject in self.subjects])

    def slot_mask(self, present: Sequence[Subject], *, generatable_only: bool = False) -> torch.Tensor:
        """``[S]`` bool: slots of ``present`` subjects (only identifiers if ``generatable_only``)."""
        mask = torch.zeros(self.size, dtype=torch.bool)
        for subject in present:
            rows = self.slot_rows(subject)
            if generatable_only:
                mask[rows.start] = True
            else:
                mask[rows.start : rows.stop] = True
        return mask


class SplicedModel:
    """A frozen LLaVA that reads and writes subject tokens without being modified.

    Args:
        loaded: the frozen model and processor; the processor's tokenizer gains the slot pool.
    """

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        self.model = loaded.model
        self.tokenizer = loaded.processor.tokenizer
        self.first_slot_id = install_slot_tokens(self.tokenizer)
        text_config: Any = self.model.config.text_config
        self.vocab_size = int(text_config.vocab_size)
        self.image_token_id = int(self.model.config.image_token_id)
        if self.first_slot_id < self.image_token_id:
            raise SubjectError("slot tokens must come after the image token in the tokenizer")

    @property
    def device(self) -> torch.device:
        return self.loaded.device

    @property
    def dtype(self) -> torch.dtype:
        return self.loaded.dtype

    def slot_token(self, slot: int) -> str:
        return SLOT_TOKEN_FORMAT.format(slot)

    @torch.no_grad()
    def image_features(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        """Frozen vision tower + projector: one ``[N, H]`` tensor per image in ``pixel_values``."""
        config = self.model.config
        output = self.model.model.get_image_features(
            pixel_values=pixel_values.to(self.device, self.dtype),
            vision_feature_layer=config.vision_feature_layer,
            vision_feature_select_strategy=config.vision_feature_select_strategy,
            return_dict=True,
        )
        return [features.detach() for features in output.pooler_output]

    def embed(
        self,
        input_ids: torch.Tensor,
        table: SubjectTable,
        image_features: Sequence[torch.Tensor] = (),
    ) -> torch.Tensor:
        """``[B, T, H]`` input embeddings with subject vectors and image features spliced in.

        Image features fill the ``<image>`` positions in order (all of sample 0's, then sample
        1's …), exactly as LLaVA's own forward does.
        """
        is_slot = input_ids >= self.first_slot_id
        base_ids = torch.where(is_slot, torch.zeros_like(input_ids), input_ids)
        embeds = self.model.get_input_embeddings()(base_ids)
        if bool(is_slot.any()):
            rows = (input_ids - self.first_slot_id).clamp(min=0)
            if int(rows.max()) >= table.size:
                raise SubjectError("a prompt uses a subject slot that no subject fills")
            slot_embeds = table.input_matrix().to(embeds.device, embeds.dtype)[rows]
            embeds = torch.where(is_slot[..., None], slot_embeds, embeds)
        is_image = input_ids == self.image_token_id
        if image_features:
            features = torch.cat(list(image_features)).to(embeds.device, embeds.dtype)
            if int(is_image.sum()) != features.shape[0]:
                raise ValueError(
                    f"{int(is_image.sum())} image tokens but {features.shape[0]} image feature rows"
                )
            embeds = embeds.masked_scatter(is_image[..., None], features)
        elif bool(is_image.any()):
            raise ValueError("the prompt has image tokens but no image was given")
        return embeds

    def hidden_states(
        self,
        embeds: torch.Tensor,
        *,
        attention_mask: torch.Tensor | None = None,
        cache: Cache | None = None,
        use_cache: bool = False,
    ) -> tuple[torch.Tensor, Cache | None]:
        """Run the frozen language model; return last hidden states ``[B, T, H]`` and the cache."""
        output = self.model.model.language_model(
            inputs_embeds=embeds, attention_mask=attention_mask, cache=cache, use_cache=use_cache
        )
        return output.last_hidden_state, output.cache if use_cache else None

    def logits(
        self, hidden: torch.Tensor, table: SubjectTable, allowed_slots: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``[..., V + S]`` float32 logits: base vocabulary then one column per subject slot.

        Args:
            hidden: ``[..., H]`` hidden states.
            allowed_slots: ``[S]`` or ``[..., S]`` bool; slots that are False get ``-inf``.
        """
        base = self.model.lm_head(hidden).float()
        if table.size == 0:
            return base
        extra = hidden.float() @ table.output_matrix().to(hidden.device).T
        if allowed_slots is not None:
            extra = extra.masked_fill(~allowed_slots.to(extra.device), float("-inf"))
        return torch.cat([base, extra], dim=-1)

    def to_vocab_label(self, token_id: int) -> int:
        """The logits column of a token id (slots map past the base vocabulary)."""
        if token_id >= self.first_slot_id:
            return self.vocab_size + token_id - self.first_slot_id
        return token_id

    def from_vocab_column(self, column: int) -> int:
        """The token id of a logits column (inverse of :meth:`to_vocab_label`)."""
        if column >= self.vocab_size:
            return self.first_slot_id + column - self.vocab_size
        return column
