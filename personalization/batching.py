"""Padding encoded conversations into batches."""

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from personalization.prompts import Encoded
from personalization.splice import IGNORE_INDEX


@dataclass
class Batch:
    """Right-padded ids ``[B, T]``, attention mask ``[B, T]``, labels ``[B, T]`` and true lengths."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor
    lengths: torch.Tensor

    def to(self, device: torch.device) -> "Batch":
        return Batch(
            self.input_ids.to(device),
            self.attention_mask.to(device),
            self.labels.to(device),
            self.lengths.to(device),
        )


def collate(encoded: Sequence[Encoded], *, pad_id: int) -> Batch:
    """Right-pad ``encoded`` to one length; padding gets ``IGNORE_INDEX`` labels and mask 0."""
    width = max(len(item.input_ids) for item in encoded)
    ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    labels = torch.full((len(encoded), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(encoded), width), dtype=torch.long)
    for row, item in enumerate(encoded):
        n = len(item.input_ids)
        ids[row, :n] = torch.tensor(item.input_ids)
        labels[row, :n] = torch.tensor(item.labels)
        mask[row, :n] = 1
    lengths = torch.tensor([len(item.input_ids) for item in encoded])
    return Batch(ids, mask, labels, lengths)
