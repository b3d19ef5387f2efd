"""A subject: an identifier token plus k latent tokens, held as the subject's own tensors.

A subject never lives inside the base model. It is two small fp32 matrices:

* ``input_vectors`` ``[k + 1, H]``: what the language model reads at the subject's token
  positions (row 0 is the identifier ``<sks>``, rows 1..k the latent tokens);
* ``output_vectors`` ``[k + 1, H]``: extra lm_head rows, so the model can *say* the identifier.

Token names are unique per subject (``<bo-3fa2c1>``, ``<bo-3fa2c1-1>`` …) so several subjects can
share a prompt. Only the identifier may ever be generated; latent tokens are prompt-only.

A subject may also carry further *members*: other pairs of vectors for the same tokens, trained
independently (another start and seed). Recognition averages P(yes) over all
members (:meth:`Subject.member_views`); free answers use the first pair.
"""

import re
import secrets
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from personalization.errors import SubjectError
from personalization.modeling import LoadedModel

DEFAULT_LATENT_TOKENS = 16
MAX_LATENT_TOKENS = 64
_SLUG_CHARS = re.compile(r"[^a-z0-9]+")


@dataclass
class Subject:
    """One personalized concept and its trainable vectors.

    Attributes:
        display_name: how the owner calls it ("Bo"); shown wherever the model says the identifier.
        kind: category word used for initialisation and "my <kind>" questions ("dog").
        identifier: the identifier token's name, e.g. ``<bo-3fa2c1>``.
        latent_names: the k latent token names.
        input_vectors: ``[k + 1, H]`` float32, row 0 the identifier.
        output_vectors: ``[k + 1, H]`` float32.
        facts: optional owner-given text that joins the personal prompt.
        threshold: P(yes) above which recognition says yes (chosen on held-out data).
        metrics: held-out figures recorded by training (JSON-serialisable).
        members: further ``(input_vectors, output_vectors)`` pairs of the same shape, trained
            independently; recognition averages over them and the first pair.
    """

    display_name: str
    kind: str
    identifier: str
    latent_names: list[str]
    input_vectors: torch.Tensor
    output_vectors: torch.Tensor
    facts: str = ""
    threshold: float = 0.5
    metrics: dict[str, Any] = field(default_factory=dict)
    members: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)

    def __post_init__(self) -> None:
        rows = 1 + len(self.latent_names)
        for name, tensor in (
            ("input_vectors", self.input_vectors),
            ("output_vectors", self.output_vectors),
        ):
            if tensor.ndim != 2 or tensor.shape[0] != rows:
                raise SubjectError(f"{name} must have shape [{rows}, H], got {list(tensor.shape)}")
        if self.input_vectors.shape != self.output_vectors.shape:
            raise SubjectError("input_vectors and output_vectors differ in shape")
        for number, (inputs, outputs) in enumerate(self.members, 2):
            if inputs.shape != self.input_vectors.shape or outputs.shape != self.output_vectors.shape:
                raise SubjectError(
                    f"member {number} has shapes {list(inputs.shape)} / {list(outputs.shape)}, "
                    f"not the subject's {list(self.input_vectors.shape)}"
                )

    def member_views(self) -> list["Subject"]:
        """One subject per member (this subject itself when it has no further members): the same
        names, threshold and words, that member's vectors and no members. A prompt holds one view
        of a subject at a time."""
        if not self.members:
            return [self]
        return [
            replace(self, input_vectors=inputs, output_vectors=outputs, members=[])
            for inputs, outputs in [(self.input_vectors, self.output_vectors), *self.members]
        ]

    @property
    def k(self) -> int:
        return len(self.latent_names)

    @property
    def hidden_size(self) -> int:
        return int(self.input_vectors.shape[1])

    @property
    def token_names(self) -> list[str]:
        """Identifier first, then the latent tokens, in row order."""
        return [self.identifier, *self.latent_names]

    def parameters(self) -> list[torch.Tensor]:
        return [self.input_vectors, self.output_vectors]


def slugify(text: str) -> str:
    """Lowercase ASCII letters and digits joined by dashes; ``subject`` if nothing remains."""
    slug = _SLUG_CHARS.sub("-", text.casefold()).strip("-")
    return slug[:24] or "subject"


def new_subject(
    loaded: LoadedModel,
    *,
    display_name: str,
    kind: str,
    k: int = DEFAULT_LATENT_TOKENS,
    facts: str = "",
    seed: int = 0,
) -> Subject:
    """A fresh subject whose untrained tokens already behave like its category word.

    The identifier's input vector is the mean embedding of the pieces of ``kind`` (so an untrained
    "<bo> " reads like "dog"), its output vector the lm_head row of the first piece of `` kind`` (so
    the model says the name where it would say the kind). Latent tokens start near the identifier
    with small seeded noise; their output rows start at the mean lm_head row, a neutral logit.

    Example:
        >>> bo = new_subject(loaded, display_name="Bo", kind="dog", k=16)
        >>> bo.input_vectors.shape  # (17, hidden_size)
    """
    name = display_name.strip()
    if not name:
        raise SubjectError("a subject needs a non-empty name")
    if not 0 <= k <= MAX_LATENT_TOKENS:
        raise SubjectError(f"k={k} latent tokens is outside 0..{MAX_LATENT_TOKENS}")
    kind_word = kind.strip() or "object"
    inputs, outputs = initial_vectors(loaded, kind=kind_word, k=k, seed=seed)

    tag = f"{slugify(name)}-{secrets.token_hex(3)}"
    return Subject(
        display_name=name,
        kind=kind_word,
        identifier=f"<{tag}>",
        latent_names=[f"<{tag}-{index}>" for index in range(1, k + 1)],
        input_vectors=inputs,
        output_vectors=outputs,
        facts=facts.strip(),
    )


def initial_vectors(
    loaded: LoadedModel, *, kind: str, k: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The untrained ``(input_vectors, output_vectors)`` of a subject of ``kind`` with ``k``
    latent tokens (see :func:`new_subject`); ``seed`` draws the latent tokens' noise."""
    tokenizer = loaded.processor.tokenizer
    input_embeddings: Any = loaded.model.get_input_embeddings()
    embedding = input_embeddings.weight.detach().float()
    lm_head = loaded.model.lm_head.weight.detach().float()
    kind_ids = tokenizer.encode(" " + kind, add_special_tokens=False) or [tokenizer.unk_token_id]
    identifier_input = embedding[kind_ids].mean(dim=0)
    identifier_output = lm_head[kind_ids[0]]

    generator = torch.Generator().manual_seed(seed)
    noise_scale = float(embedding.std()) * 0.1
    noise = torch.randn((k, embedding.shape[1]), generator=generator) * noise_scale
    latent_inputs = identifier_input.expand(k, -1) + noise.to(identifier_input.device)
    latent_outputs = lm_head.mean(dim=0).expand(k, -1)
    return (
        torch.cat([identifier_input[None], latent_inputs]).contiguous().cpu(),
        torch.cat([identifier_output[None], latent_outputs]).contiguous().cpu(),
    )
