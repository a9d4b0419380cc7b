"""Order-preserving integer keys of floats, for exact and reproducible sorts."""

from __future__ import annotations

import torch
from torch import Tensor


def order_preserving_int(values: Tensor) -> Tensor:
    """float32 (or a narrower float) -> int64 in ``[-2**31, 2**31)`` with the same order;
    ``-0.0`` and ``+0.0`` map to the same key."""
    bits = (values.float() + 0.0).view(torch.int32)
    return torch.where(bits >= 0, bits, bits ^ 0x7FFFFFFF).long()
