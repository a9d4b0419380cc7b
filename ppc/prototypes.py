"""Class prototypes: the CAM-weighted mean embedding of each class's top-K pixels.

For each of the C+1 classes (background first), the K pixels of the *whole batch* with the
highest confidence for that class are selected, their embeddings averaged with the
confidences as weights, and the mean L2-normalised. Prototypes carry no gradient.

Under ``torch.distributed`` the prototypes are those of the global batch: every rank sends
its K best candidates per class, and the global top-K is taken among them, which selects
exactly the pixels a single process would select on the concatenated batch.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor

from ._checks import (
    require_bool,
    require_finite,
    require_floating,
    require_int,
    require_match,
    require_range,
    require_tensor,
)
from ._keys import order_preserving_int
from .cams import _require_classes, background_confidence, check_cams_and_labels

EMB_DOC = "[N, D, H, W]"
PIXEL_MASK_DOC = "[N, H, W]"


def _check_mask_and_background(pixel_mask, background, n: int, h: int, w: int,
                                validate: bool) -> None:
    """Shape and dtype (always) and range (``validate``) of the optional ``pixel_mask`` and
    ``background`` ``[N, H, W]``."""
    if pixel_mask is not None:
        require_tensor("pixel_mask", pixel_mask, PIXEL_MASK_DOC, 3)
        if tuple(pixel_mask.shape) != (n, h, w) or pixel_mask.dtype != torch.bool:
            raise ValueError(
                f"pixel_mask must be a bool tensor of shape {PIXEL_MASK_DOC} = {(n, h, w)}, "
                f"got {pixel_mask.dtype} of shape {tuple(pixel_mask.shape)}"
            )
    if background is not None:
        require_tensor("background", background, PIXEL_MASK_DOC, 3)
        if tuple(background.shape) != (n, h, w):
            raise ValueError(f"background must have shape {PIXEL_MASK_DOC} = {(n, h, w)}, "
                             f"got {tuple(background.shape)}")
        if validate:
            require_range("background", background, 0.0, 1.0)


class Prototypes(NamedTuple):
    """Result of :func:`estimate_prototypes`.

    Attributes:
        vectors: ``[C+1, D]`` L2-normalised prototypes (row 0 is background).
        valid: ``[C+1]`` bool; False for a class with no candidate pixel (only possible
            with ``rank_absent=False`` or a ``pixel_mask``). Invalid rows are zero and are
            left out of every softmax.
        top_values: ``[C+1, K]`` confidences of the selected pixels (``-inf`` for an empty
            slot).
        top_indices: ``[C+1, K]`` their positions in the flattened batch
            ``n * H * W + y * W + x`` (on several processes, in the concatenation of all
            ranks' batches).
    """

    vectors: Tensor
    valid: Tensor
    top_values: Tensor
    top_indices: Tensor


def class_confidence(
    cams: Tensor,
    image_labels: Tensor,
    *,
    rank_absent: bool = True,
    pixel_mask: Tensor | None = None,
    background: Tensor | None = None,
    validate: bool = True,
) -> Tensor:
    """Confidence of every pixel for every class, used to rank pixels for the prototypes.

    ``cams`` ``[N, C, H, W]`` normalised to [0, 1], ``image_labels`` ``[N, C]`` ->
    ``[N, C+1, H, W]``: channel 0 is :func:`ppc.background_confidence`, channel
    ``c + 1`` the CAM of class ``c``. With ``rank_absent=False`` a class's CAM is ranked only
    in the images whose labels contain it (elsewhere ``-inf``); the official code ranks it in
    every image (``rank_absent=True``). Pixels outside ``pixel_mask`` ``[N, H, W]`` are
    ``-inf`` for every class. ``background`` ``[N, H, W]`` in [0, 1] replaces channel 0.
    """
    require_bool("rank_absent", rank_absent)
    require_bool("validate", validate)
    check_cams_and_labels(cams, image_labels, validate, normalised=True)
    n, _, h, w = cams.shape
    _check_mask_and_background(pixel_mask, background, n, h, w, validate)
    foreground = cams
    if not rank_absent:
        present = image_labels.to(torch.bool)[:, :, None, None]
        foreground = foreground.masked_fill(~present, float("-inf"))
    if background is None:
        background = background_confidence(cams, image_labels, validate=False)
    confidence = torch.cat([background[:, None].to(foreground.dtype), foreground], dim=1)
    if pixel_mask is not None:
        confidence = confidence.masked_fill(~pixel_mask[:, None], float("-inf"))
    return confidence


def stable_top_k(values: Tensor, k: int, indices: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Top-``k`` of ``values`` ``[P, M]`` (float32 order) along the last dimension; ties go to
    the lower index.

    ``torch.topk`` leaves the order of ties unspecified (and it differs between devices),
    and a stable sort of every row is slow; instead the value and the index are packed into
    one unique int64 key, so ``topk`` of the keys is exact and reproducible everywhere.
    ``indices`` (same shape, default ``0..M-1``) are the positions used to break ties; an
    index of -1 marks padding, which loses every tie. Returns values and positions along
    the last dimension (not ``indices``) ``[P, k]``.
    """
    if indices is None:  # positions 0..M-1, no padding
        low = 0xFFFFFFFF - torch.arange(values.shape[-1], device=values.device)
    else:
        low = torch.where(indices >= 0, 0xFFFFFFFF - indices, torch.zeros_like(indices))
    keys = (order_preserving_int(values) << 32) | low
    order = torch.topk(keys, k, dim=-1).indices
    return values.gather(-1, order), order


def _distributed_group_size(process_group) -> int:
    if not (dist.is_available() and dist.is_initialized()):
        return 1
    return dist.get_world_size(process_group)


def _all_gather_cat(tensor: Tensor, process_group, world: int) -> Tensor:
    parts = [torch.empty_like(tensor) for _ in range(world)]
    dist.all_gather(parts, tensor.contiguous(), group=process_group)
    return torch.cat(parts, dim=1)


def _global_top_k(
    values: Tensor, indices: Tensor, features: Tensor, k: int, local_pixels: int, process_group
) -> tuple[Tensor, Tensor, Tensor]:
    """Merge every rank's candidates ``[P, k]`` / ``[P, k, D]`` into the global top-``k``.

    Each rank's candidates are padded to ``k`` slots and ordered by (value desc, index asc);
    concatenated in rank order, a stable sort by value then orders ties by global index,
    which is what a single process does on the concatenated batch.
    """
    world = dist.get_world_size(process_group)
    rank = dist.get_rank(process_group)
    sizes = torch.zeros(world, dtype=torch.long, device=values.device)
    sizes[rank : rank + 1] = local_pixels  # a slice: fill_, no host-to-device copy
    dist.all_reduce(sizes, group=process_group)
    offset = sizes.cumsum(0)[rank] - local_pixels
    global_indices = torch.where(indices >= 0, indices + offset, indices)

    all_values = _all_gather_cat(values, process_group, world)  # [P, world*k]
    all_indices = _all_gather_cat(global_indices, process_group, world)
    all_features = _all_gather_cat(features, process_group, world)  # [P, world*k, D]
    top_values, order = stable_top_k(all_values, k, all_indices)
    top_indices = all_indices.gather(1, order)
    top_features = all_features.gather(1, order[..., None].expand(-1, -1, features.shape[-1]))
    return top_values, top_indices, top_features


@torch.no_grad()
def estimate_prototypes(
    embeddings: Tensor,
    cams: Tensor,
    image_labels: Tensor,
    top_k: int = 32,
    *,
    normalize_embeddings: bool = False,
    rank_absent: bool = True,
    pixel_mask: Tensor | None = None,
    background: Tensor | None = None,
    process_group=None,
    validate: bool = True,
) -> Prototypes:
    """Prototypes of the C+1 classes from the top-K pixels of the batch.

    Args:
        embeddings: ``[N, D, H, W]`` projections ``f_proj`` (raw, before normalisation).
        cams: ``[N, C, H, W]`` foreground CAMs normalised to [0, 1] (``normalize_cams``).
        image_labels: ``[N, C]`` multi-hot image-level labels.
        top_k: K; ``min(K, pixels available)`` pixels are used per class.
        normalize_embeddings: False (official code) averages the raw projections, then
            normalises the mean; True (the paper's formula) averages the L2-normalised
            ``v_i``.
        rank_absent: True (official code) ranks every class in every image of the batch,
            so classes absent from the batch still get a prototype and stay in every
            softmax; False ranks a class only in images whose labels contain it, and marks
            classes absent from the whole batch invalid.
        pixel_mask: optional ``[N, H, W]`` bool; pixels outside it are never selected.
        background: optional ``[N, H, W]`` background confidence in [0, 1] (default:
            :func:`ppc.background_confidence` of ``cams``).
        process_group: group for the global top-K when ``torch.distributed`` is initialised.
        validate: check values (NaN, ranges); costs one host-device synchronisation.

    The background confidence is ``1 - max`` of the present classes' CAMs
    (:func:`ppc.background_confidence`); the official code ranks a constant there.
    With ReLU'd CAMs every pixel where all present classes score <= 0 gets confidence 1,
    so :class:`ppc.PixelToPrototypeContrast` passes the confidence of CAMs normalised
    *without* the ReLU, which keeps those pixels ordered by how negative their scores are.
    That confidence ranks and weights every background candidate, not only those ties:
    its min-max differs per image and class, so in rare cases (a CAM barely positive over
    most of one image) a pixel pseudo-labelled foreground can outrank background pixels.
    Weights are the selected confidences; if they sum to 0 (a class whose CAM is 0
    everywhere), the plain mean of the selected embeddings is used.

    Returns:
        :class:`Prototypes` (vectors ``[C+1, D]``, valid ``[C+1]``, top values and indices).
    """
    require_tensor("embeddings", embeddings, EMB_DOC, 4)
    require_floating("embeddings", embeddings, EMB_DOC)
    for name, flag in (("normalize_embeddings", normalize_embeddings),
                       ("rank_absent", rank_absent), ("validate", validate)):
        require_bool(name, flag)
    check_cams_and_labels(cams, image_labels, validate, normalised=True)
    _require_classes(cams)
    n, d, h, w = embeddings.shape
    if d == 0:
        raise ValueError(f"embeddings must have at least one channel (D >= 1), got shape "
                         f"{tuple(embeddings.shape)} ({EMB_DOC})")
    for axis, name in ((0, "batch size N"), (2, "height H"), (3, "width W")):
        require_match(
            name, "cams", cams.shape[axis], "embeddings", embeddings.shape[axis],
            "resize the CAMs to the embeddings' resolution first",
        )
    top_k = require_int("top_k", top_k, what=" (pixels per prototype)")
    _check_mask_and_background(pixel_mask, background, n, h, w, validate)
    if validate:
        require_finite("embeddings", embeddings)

    confidence = class_confidence(
        cams.detach().float(), image_labels, rank_absent=rank_absent,
        pixel_mask=pixel_mask, background=background, validate=False,
    )
    num_protos = confidence.shape[1]
    confidence = confidence.transpose(0, 1).reshape(num_protos, -1)  # [P, M]

    local_pixels = confidence.shape[1]
    world = _distributed_group_size(process_group)
    k = min(top_k, local_pixels)
    top_values, top_indices = stable_top_k(confidence, k)  # [P, k]
    flat = embeddings.detach().float().reshape(n, d, h * w)  # [N, D, HW], a view
    top_features = flat[top_indices // (h * w), :, top_indices % (h * w)]  # [P, k, D]
    if normalize_embeddings:
        top_features = F.normalize(top_features, dim=-1)
    if world > 1:
        if k < top_k:  # pad so every rank sends the same shapes
            pad = top_k - k
            top_values = F.pad(top_values, (0, pad), value=float("-inf"))
            top_indices = F.pad(top_indices, (0, pad), value=-1)
            top_features = F.pad(top_features, (0, 0, 0, pad))
        top_values, top_indices, top_features = _global_top_k(
            top_values, top_indices, top_features, top_k, local_pixels, process_group
        )

    selected = torch.isfinite(top_values)
    weights = torch.where(selected, top_values, torch.zeros_like(top_values))
    weight_sum = weights.sum(dim=1, keepdim=True)
    weights = torch.where(weight_sum > 0, weights, selected.to(weights.dtype))
    mean = (weights[..., None] * top_features).sum(dim=1) / weights.sum(
        dim=1, keepdim=True
    ).clamp_min(torch.finfo(weights.dtype).tiny)
    vectors = F.normalize(mean, dim=-1)
    return Prototypes(vectors, selected.any(dim=1), top_values, top_indices)


def selection_maps(prototypes: Prototypes, shape: tuple[int, int, int]) -> Tensor:
    """Where each prototype's top-K pixels are: ``[P, N, H, W]`` float, the pixel's weight
    (its confidence) where selected, else 0. ``shape`` is ``(N, H, W)`` of the batch; under
    ``torch.distributed`` the indices point into the global batch (the ranks' batches
    concatenated in rank order), so pass its ``(N_global, H, W)``."""
    n, h, w = shape
    num = prototypes.top_indices.shape[0]
    largest = int(prototypes.top_indices.max()) if prototypes.top_indices.numel() else -1
    if largest >= n * h * w:
        raise ValueError(
            f"selection_maps: a selected pixel has flat index {largest}, outside shape "
            f"(N, H, W) = {tuple(shape)}; pass the shape of the batch the prototypes were "
            "estimated on (under torch.distributed, the global batch)")
    maps = torch.zeros(num, n * h * w, device=prototypes.top_indices.device)
    selected = torch.isfinite(prototypes.top_values)
    weights = torch.where(selected, prototypes.top_values, torch.zeros_like(prototypes.top_values))
    index = prototypes.top_indices.clamp_min(0)
    maps.scatter_add_(1, index, weights.float())
    return maps.view(num, n, h, w)
