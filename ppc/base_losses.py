"""The base networks' own losses: CAM classification, SEAM's equivariant regularisation
(ER), equivariant cross regularisation (ECR) and adaptive min-pooling, and the fully
supervised cross-entropy of the upper bound. PPC is added on top without changing them."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .cams import normalize_cams
from .data.voc import IGNORE_INDEX


def classification_loss(scores: Tensor, image_labels: Tensor) -> Tensor:
    """Multi-label soft margin loss of the GAP scores ``[N, C]`` against ``[N, C]``."""
    return F.multilabel_soft_margin_loss(scores.float(), image_labels.float())


def adaptive_min_pooling_loss(cams: Tensor, pixel_mask: Tensor | None = None) -> Tensor:
    """SEAM: mean of the ReLU'd lowest 25% of each image's max-over-classes map
    ``cams`` ``[N, C, h, w]`` (label-masked PCM CAMs); pushes the background to 0.

    With ``pixel_mask`` ``[N, h, w]`` bool, only the valid pixels of each image are
    ranked (a rotation's corners hold no part of the source): the lowest 25% of them,
    and the mean is over every selected pixel of the batch (the same value as without a
    mask when every pixel is valid).
    """
    n, _, h, w = cams.shape
    k = max(1, h * w // 4)
    top = cams.amax(dim=1).flatten(1)  # [N, hw]
    if pixel_mask is None:
        low = torch.topk(top, k, dim=-1, largest=False).values
        return F.relu(low).sum() / (k * n)
    valid = pixel_mask.reshape(n, -1)
    count = valid.sum(dim=1)
    per_image = torch.where(count > 0, (count // 4).clamp_min(1), 0)  # [N]
    low = torch.topk(top.masked_fill(~valid, float("inf")), k, dim=-1, largest=False).values
    keep = torch.arange(k, device=cams.device) < per_image[:, None]  # [N, k]
    return torch.where(keep, F.relu(low), 0.0).sum() / keep.sum().clamp_min(1)


def max_onehot(cams: Tensor) -> Tensor:
    """Keep the background channel (0) and, among the foreground channels, only the
    per-pixel maximum (SEAM's ``max_onehot``)."""
    fg = cams[:, 1:]
    return torch.cat([cams[:, :1], fg * (fg >= fg.amax(dim=1, keepdim=True))], dim=1)


def _with_background(fg: Tensor) -> Tensor:
    return torch.cat([1 - fg.amax(dim=1, keepdim=True), fg], dim=1)


def _masked_mean(x: Tensor, mask: Tensor | None) -> Tensor:
    if mask is None:
        return x.mean()
    m = mask[:, None].to(x.dtype).expand_as(x)
    return (x * m).sum() / m.sum().clamp_min(1)


def _resize(maps: Tensor, size) -> Tensor:
    if tuple(maps.shape[2:]) == tuple(size):
        return maps
    return F.interpolate(maps, size=tuple(size), mode="bilinear", align_corners=False)


def seam_losses(logits_s: Tensor, rv_s: Tensor, logits_t: Tensor, rv_t: Tensor,
                image_labels: Tensor, align, *, size_s, size_t,
                pixel_mask: Tensor | None = None, map_mask: Tensor | None = None,
                ecr_fraction: float = 0.2) -> dict[str, Tensor]:
    """SEAM's ER, ECR and min-pooling terms for the two views, at the images' resolution
    as the official code.

    ``logits_*`` ``[N, C, h, w]`` raw CAMs and ``rv_*`` ``[N, C+1, h, w]`` PCM CAMs of the
    source and the target; ``size_s``/``size_t`` the two images' (H, W). ``align`` maps
    source maps onto the target image's grid (A with output ``size_t``); ER and ECR compare
    there, the target's maps upsampled to it. Min-pooling sees each view's PCM CAM at its
    image size. ``pixel_mask`` ``[N, *size_t]`` marks valid target pixels (ER, ECR and the
    target's min-pooling see only them), and ``map_mask`` ``[N, h, w]`` the same on the
    target's map grid: its CAMs are min-max normalised over those pixels only (a
    rotation's corners hold no part of the source).
    """
    labels = image_labels.to(torch.float32)[:, :, None, None]
    labels_bg = F.pad(labels, (0, 0, 0, 0, 1, 0), value=1.0)  # background always present
    n = logits_s.shape[0]
    rv_s, rv_t = rv_s.float(), rv_t.float()
    rvmin = 0.5 * (adaptive_min_pooling_loss(_resize(rv_s, size_s)[:, 1:] * labels)
                   + adaptive_min_pooling_loss(_resize(rv_t, size_t)[:, 1:] * labels,
                                               pixel_mask))
    cam_s = align(normalize_cams(logits_s.float(), validate=False)) * labels
    cam_t = _resize(normalize_cams(logits_t.float(), pixel_mask=map_mask, validate=False),
                    size_t) * labels
    er = _masked_mean((cam_s - cam_t).abs(), pixel_mask)
    norm_rv_s = align(_normalize_all(rv_s)) * labels_bg
    norm_rv_t = _resize(_normalize_all(rv_t, map_mask), size_t) * labels_bg
    full_s, full_t = _with_background(cam_s), _with_background(cam_t)
    ecr = 0.0
    for target, refined in ((max_onehot(full_t.detach()), norm_rv_s),
                            (max_onehot(full_s.detach()), norm_rv_t)):
        diff = (target - refined).abs()
        if pixel_mask is not None:
            diff = diff * pixel_mask[:, None]
        flat = diff.reshape(n, -1)
        k = max(1, int(flat.shape[1] * ecr_fraction))
        ecr = ecr + torch.topk(flat, k, dim=-1).values.mean()
    return {"er": er, "ecr": ecr, "rvmin": rvmin}


def _normalize_all(cams: Tensor, pixel_mask: Tensor | None = None) -> Tensor:
    return normalize_cams(cams.float(), pixel_mask=pixel_mask, validate=False)


def full_supervision_loss(logits: Tensor, masks: Tensor) -> Tensor:
    """Cross-entropy of ``logits`` ``[N, C+1, h, w]`` upsampled to the masks ``[N, H, W]``
    (255 ignored): the fully supervised upper bound."""
    up = F.interpolate(logits.float(), size=masks.shape[1:], mode="bilinear",
                       align_corners=False)
    return F.cross_entropy(up, masks.long(), ignore_index=IGNORE_INDEX)
