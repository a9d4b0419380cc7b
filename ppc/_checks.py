"""Input checks shared by the public functions.

Shape checks read only tensor metadata and never synchronise with the device.
Value checks (NaN, ranges) must read tensor values, which costs one host-device
synchronisation on a GPU; every public function therefore takes ``validate=True``
and the training loop may switch it off once its inputs are known to be sane.
"""

from __future__ import annotations

import torch
from torch import Tensor


def require_tensor(name: str, value, shape_doc: str, ndim: int | None = None) -> None:
    """Raise ``ValueError`` unless ``value`` is a tensor with ``ndim`` dimensions."""
    if not isinstance(value, torch.Tensor):
        raise ValueError(
            f"{name} must be a torch.Tensor of shape {shape_doc}, got {type(value).__name__}"
        )
    if ndim is not None and value.dim() != ndim:
        raise ValueError(
            f"{name} must have shape {shape_doc} ({ndim} dimensions), "
            f"got shape {tuple(value.shape)}"
        )


def require_floating(name: str, value: Tensor, shape_doc: str) -> None:
    if not value.is_floating_point():
        raise ValueError(
            f"{name} must be a floating-point tensor of shape {shape_doc}, got dtype {value.dtype}"
        )


def require_integer(name: str, value: Tensor, shape_doc: str) -> None:
    if value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
        raise ValueError(
            f"{name} must be an integer tensor of shape {shape_doc}, got dtype {value.dtype}"
        )


def require_match(what: str, name_a: str, a: int, name_b: str, b: int, hint: str = "") -> None:
    if a != b:
        msg = f"{what} of {name_a} ({a}) does not match {what} of {name_b} ({b})"
        raise ValueError(msg + (f": {hint}" if hint else ""))


def require_finite(name: str, value: Tensor) -> None:
    """Value check (synchronises): no NaN or Inf."""
    if not bool(torch.isfinite(value).all()):
        bad = int((~torch.isfinite(value)).sum())
        raise ValueError(
            f"{name} contains {bad} NaN or Inf value(s); check the network output "
            "(e.g. a diverged step or a bad learning rate) before computing the loss"
        )


def require_range(name: str, value: Tensor, low: float, high: float, hint: str = "") -> None:
    """Value check (synchronises): every value in ``[low, high]``."""
    require_finite(name, value)
    if value.numel() and not bool(((value >= low) & (value <= high)).all()):
        lo, hi = float(value.min()), float(value.max())
        msg = f"{name} must lie in [{low}, {high}], got values in [{lo:.4g}, {hi:.4g}]"
        raise ValueError(msg + (f": {hint}" if hint else ""))


def require_multi_hot(name: str, value: Tensor, shape_doc: str) -> None:
    """Value check (synchronises): entries are 0 or 1."""
    if value.dtype == torch.bool:
        return
    if not bool(((value == 0) | (value == 1)).all()):
        raise ValueError(f"{name} must be multi-hot (only 0 and 1) of shape {shape_doc}")


def require_labels(name: str, labels: Tensor, num_classes: int, ignore_index: int | None) -> None:
    """Value check (synchronises): labels in ``[0, num_classes)`` or ``ignore_index``."""
    ok = (labels >= 0) & (labels < num_classes)
    if ignore_index is not None:
        ok = ok | (labels == ignore_index)
    if labels.numel() and not bool(ok.all()):
        bad = labels[~ok]
        allowed = f"[0, {num_classes - 1}]" + (
            f" or the ignore label {ignore_index}" if ignore_index is not None else ""
        )
        raise ValueError(
            f"{name} must hold class indices in {allowed}; "
            f"found {bad.numel()} value(s) outside, e.g. {int(bad[0])}"
        )
