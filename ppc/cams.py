"""From class activation maps to normalised scores, background confidence and pseudo labels.

Conventions used across ``ppc``:

* ``cams`` hold the C *foreground* classes, ``[N, C, H, W]``.
* Pseudo labels index C+1 classes: 0 is background, foreground class ``c`` is ``c + 1``.
* ``image_labels`` are multi-hot ``[N, C]`` (float, int or bool).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._checks import (
    is_number,
    require_bool,
    require_finite,
    require_floating,
    require_match,
    require_multi_hot,
    require_range,
    require_score,
    require_tensor,
)

CAMS_DOC = "[N, C, H, W]"
LABELS_DOC = "[N, C]"

NORMALISED_HINT = "pass CAMs normalised by ppc.normalize_cams"


def _require_classes(cams: Tensor) -> None:
    if cams.shape[1] == 0:
        raise ValueError(f"cams must hold at least one foreground class (C >= 1) to rank the "
                         f"background against, got shape {tuple(cams.shape)} ({CAMS_DOC})")


def check_cams_and_labels(
    cams: Tensor, image_labels: Tensor, validate: bool, normalised: bool
) -> None:
    """Shape (always) and value (``validate``) checks of a CAM batch and its image labels."""
    require_tensor("cams", cams, CAMS_DOC, 4)
    require_floating("cams", cams, CAMS_DOC)
    require_tensor("image_labels", image_labels, LABELS_DOC, 2)
    require_match("batch size N", "image_labels", image_labels.shape[0], "cams", cams.shape[0])
    require_match(
        "number of classes C", "image_labels", image_labels.shape[1], "cams", cams.shape[1],
        "cams hold the foreground classes only, without a background channel",
    )
    if validate:
        if normalised:
            require_range("cams", cams, 0.0, 1.0, NORMALISED_HINT)
        require_multi_hot("image_labels", image_labels, LABELS_DOC)


def normalize_cams(cams: Tensor, eps: float = 1e-5, *, relu: bool = True,
                   pixel_mask: Tensor | None = None, validate: bool = True) -> Tensor:
    """ReLU, then min-max normalise every map of every image to [0, 1].

    ``cams`` ``[N, C, H, W]`` -> ``[N, C, H, W]``. Per image ``n`` and class ``c``:
    ``(relu(x) - min) / (max - min + eps)``; a constant map becomes all zeros.
    ``relu=False`` skips the ReLU, so negative scores keep their order (used to rank the
    background, see :class:`ppc.PixelToPrototypeContrast`). With ``pixel_mask``
    ``[N, H, W]`` bool, min and max are taken over the marked pixels only (e.g. the part of
    a rotated view that lies inside the source; the others are clamped like any value
    outside the range); an image without a marked pixel uses all of its pixels.

    The official code computes ``(relu(x) - min - eps) / (max - min + eps)`` after zeroing
    values below ``min + eps``, which leaves those pixels at a tiny *negative* value; we
    keep the same scale but clamp to [0, 1] so that every score is a valid confidence.
    Differentiable (the PPC loss calls it on detached CAMs).
    """
    require_tensor("cams", cams, CAMS_DOC, 4)
    require_floating("cams", cams, CAMS_DOC)
    if cams.shape[2] == 0 or cams.shape[3] == 0:
        raise ValueError(f"cams must have at least one pixel per map, got shape "
                         f"{tuple(cams.shape)} ({CAMS_DOC})")
    if not is_number(eps) or not 0 < eps < math.inf:
        raise ValueError(f"eps must be a finite number > 0 (a constant map divides by it), "
                         f"got {eps!r} ({type(eps).__name__})")
    require_bool("relu", relu)
    require_bool("validate", validate)
    if pixel_mask is not None and not isinstance(pixel_mask, torch.Tensor):
        raise ValueError(f"pixel_mask must be a bool tensor of shape [N, H, W] = "
                         f"{(cams.shape[0], *cams.shape[2:])}, got {type(pixel_mask).__name__}")
    if validate:
        require_finite("cams", cams)
    x = cams.relu() if relu else cams
    flat = x.flatten(2)
    if pixel_mask is None:
        low, high = flat.amin(dim=-1), flat.amax(dim=-1)
    else:
        n, _, h, w = cams.shape
        if tuple(pixel_mask.shape) != (n, h, w) or pixel_mask.dtype != torch.bool:
            raise ValueError(f"pixel_mask must be a bool tensor of shape [N, H, W] = "
                             f"{(n, h, w)}, got {pixel_mask.dtype} of shape "
                             f"{tuple(pixel_mask.shape)}")
        # [N, 1, H*W]; an image without a marked pixel falls back to all of them (no sync)
        mask = (pixel_mask | ~pixel_mask.flatten(1).any(dim=1)[:, None, None]).flatten(1)[:, None]
        low = flat.masked_fill(~mask, float("inf")).amin(dim=-1)
        high = flat.masked_fill(~mask, float("-inf")).amax(dim=-1)
    low, high = low[..., None, None], high[..., None, None]
    return ((x - low) / (high - low + eps)).clamp(0.0, 1.0)


def background_confidence(cams: Tensor, image_labels: Tensor, *, validate: bool = True) -> Tensor:
    """Background confidence ``1 - max_c cams[c]`` over the classes present in each image.

    ``cams`` ``[N, C, H, W]`` normalised to [0, 1], ``image_labels`` ``[N, C]`` -> ``[N, H, W]``.
    An image whose labels have no foreground class is background everywhere (confidence 1).
    The official code ranks a constant channel here, which makes the background's top-K an
    arbitrary tie-break; this score ranks the pixels least covered by any present class first.
    """
    require_bool("validate", validate)
    check_cams_and_labels(cams, image_labels, validate, normalised=True)
    _require_classes(cams)
    present = image_labels.to(dtype=cams.dtype)[:, :, None, None]
    return 1.0 - (cams * present).amax(dim=1)


def pseudo_labels(
    cams: Tensor, image_labels: Tensor, bg_threshold: float = 0.2, *, validate: bool = True
) -> Tensor:
    """Per-pixel argmax over a constant background score and the present classes' CAMs.

    ``cams`` ``[N, C, H, W]`` normalised to [0, 1] (``normalize_cams``), ``image_labels``
    ``[N, C]`` multi-hot -> ``[N, H, W]`` int64 in ``[0, C]``: 0 is background, class ``c``
    is ``c + 1``. Classes absent from an image's labels are never chosen. Ties go to the
    lower index, i.e. to background first (``torch.argmax`` returns the first maximum).
    """
    require_bool("validate", validate)
    check_cams_and_labels(cams, image_labels, validate, normalised=True)
    require_score("bg_threshold", bg_threshold)
    n, _, h, w = cams.shape
    present = image_labels.to(torch.bool)[:, :, None, None]
    foreground = cams.masked_fill(~present, float("-inf"))
    background = cams.new_full((n, 1, h, w), float(bg_threshold))
    # max(dim).indices, not argmax: same first-maximum rule, several times faster on a CPU
    return torch.cat([background, foreground], dim=1).max(dim=1).indices
