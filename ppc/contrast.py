"""Pixel-to-prototype contrast: ``F(v_i; y_i; P) = -log softmax_c(v_i . p_c / tau)[y_i]``.

Every function here works on a whole batch at once (no Python loop over pixels or classes)
and never synchronises with the device unless ``validate=True`` asks it to check values.
Embeddings are L2-normalised per pixel inside; logits are computed in at least float32
(also under autocast, where the projections may arrive in bfloat16).
"""

from __future__ import annotations

import contextlib
import math

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ._checks import (
    is_int,
    is_number,
    require_bool,
    require_finite,
    require_floating,
    require_generator,
    require_int,
    require_integer,
    require_labels,
    require_match,
    require_tensor,
)
from ._keys import order_preserving_int

EMB_DOC = "[N, D, H, W]"
PIXEL_LABELS_DOC = "[N, H, W]"
PROTOS_DOC = "[P, D]"

# Logit given to prototypes left out of the softmax: exp() of it underflows to exactly 0
# in float32 without producing the NaN gradients that -inf can.
_EXCLUDED_LOGIT = -1e9


def _check_mining_fractions(skip_fraction, keep_fraction, prefix: str = "") -> None:
    """The rules of :func:`mining_band`; ``prefix`` names the caller's arguments."""
    skip_name, keep_name = f"{prefix}skip_fraction", f"{prefix}keep_fraction"
    for name, value in ((skip_name, skip_fraction), (keep_name, keep_fraction)):
        if not is_number(value):
            raise ValueError(f"{name} must be a number (a fraction of the prototypes), got "
                             f"{value!r} ({type(value).__name__})")
    if not (0 <= skip_fraction < 1 and 0 < keep_fraction <= 1):
        raise ValueError(
            f"mining fractions must satisfy 0 <= {skip_name} < 1 and 0 < {keep_name} <= 1, "
            f"got {skip_name}={skip_fraction!r}, {keep_name}={keep_fraction!r}"
        )


def check_sampling_fractions(random_fraction, hard_fraction, hard_upper, prefix: str = "",
                              off: str | None = "") -> None:
    """The rules of :class:`ppc.PPCConfig` on hard pixel sampling's fractions; ``prefix``
    names the caller's arguments, ``off`` says how to switch sampling off (None: it is off,
    and drawing no pixel is no error)."""
    random_name, hard_name, upper_name = (
        f"{prefix}{n}" for n in ("random_fraction", "hard_fraction", "hard_upper"))
    for name, value in ((random_name, random_fraction), (hard_name, hard_fraction),
                        (upper_name, hard_upper)):
        if not is_number(value) or not 0 <= value <= 1:
            raise ValueError(f"{name} must be in [0, 1], got {value!r} ({type(value).__name__})")
    if hard_fraction > hard_upper:
        raise ValueError(
            f"{hard_name} ({hard_fraction}) must not exceed {upper_name} ({hard_upper}): the "
            "hard band is the ranks from upper - fraction to upper (of each class's pixels, "
            "easiest first); lower the fraction or raise the upper end")
    if off is not None and random_fraction == 0 and hard_fraction == 0:
        raise ValueError(f"{random_name} and {hard_name} are both 0: pixel sampling would draw "
                         f"no pixel and the loss would be 0; raise one of them{off}")


def _check(embeddings, labels, prototypes, valid, tau, ignore_index, validate) -> None:
    require_tensor("embeddings", embeddings, EMB_DOC, 4)
    require_floating("embeddings", embeddings, EMB_DOC)
    require_tensor("labels", labels, PIXEL_LABELS_DOC, 3)
    require_integer("labels", labels, PIXEL_LABELS_DOC)
    require_tensor("prototypes", prototypes, PROTOS_DOC, 2)
    require_floating("prototypes", prototypes, PROTOS_DOC)
    n, d, h, w = embeddings.shape
    if tuple(labels.shape) != (n, h, w):
        raise ValueError(
            f"labels must have shape {PIXEL_LABELS_DOC} = {(n, h, w)} to match embeddings "
            f"{tuple(embeddings.shape)}, got {tuple(labels.shape)}"
        )
    require_match("embedding dimension D", "prototypes", prototypes.shape[1], "embeddings", d)
    if d == 0:
        raise ValueError(f"embeddings must have at least one channel (D >= 1), got shape "
                         f"{tuple(embeddings.shape)} ({EMB_DOC})")
    if prototypes.shape[0] == 0:
        raise ValueError(f"prototypes must hold at least one prototype (P >= 1), got shape "
                         f"{tuple(prototypes.shape)} ({PROTOS_DOC})")
    if valid is not None:
        require_tensor("valid", valid, "[P]", 1)
        if valid.dtype != torch.bool or valid.shape[0] != prototypes.shape[0]:
            raise ValueError(
                f"valid must be a bool tensor of shape [P] = [{prototypes.shape[0]}], "
                f"got {valid.dtype} of shape {tuple(valid.shape)}"
            )
    if not is_number(tau) or not 0 < tau < math.inf:
        raise ValueError(f"tau must be a finite number > 0 (the paper's 0.1), got {tau!r}")
    if ignore_index is not None and not is_int(ignore_index):
        raise ValueError(f"ignore_index must be an int label (e.g. 255) or None, got "
                         f"{ignore_index!r}")
    require_bool("validate", validate)
    if validate:
        require_finite("embeddings", embeddings)
        require_finite("prototypes", prototypes)
        require_labels("labels", labels, prototypes.shape[0], ignore_index)


def flatten_labels(
    labels: Tensor, ignore_index: int | None, valid: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """``[N, H, W]`` -> ``targets`` ``[M]`` (ignored pixels mapped to 0) and ``keep`` ``[M]``
    bool: the pixel is counted (not ignored, and its own prototype is valid)."""
    y = labels.reshape(-1).long()
    keep = torch.ones_like(y, dtype=torch.bool) if ignore_index is None else y != ignore_index
    targets = torch.where(keep, y, torch.zeros_like(y))
    if valid is not None:
        keep = keep & valid[targets]
    return targets, keep


def _full_precision(device: torch.device):
    """Autocast off (where the device has it) for a block that must stay float32. CPU and
    CUDA are named first: torch.compile (2.11) cannot trace ``is_autocast_available``."""
    if device.type in ("cpu", "cuda") or torch.amp.is_autocast_available(device.type):
        return torch.autocast(device.type, enabled=False)
    return contextlib.nullcontext()


class _LogitMaps(torch.autograd.Function):
    """``(f_i . p_c) / (|f_i| tau)`` on ``flat`` ``[N, D, HW]`` with a hand-written backward:
    ``d/df_i = (s_i / tau) P^T g_i - s_i^2 f_i (logits_i . g_i)`` with ``s_i = 1 / |f_i|``
    (one matmul and two passes over the embeddings, where autograd's chain through the
    norm takes several). Where ``|f_i| < 1e-12`` the scale is a constant (as in
    ``F.normalize``) and the second term drops out."""

    @staticmethod
    def forward(ctx, flat: Tensor, prototypes: Tensor, tau: float) -> Tensor:
        # 1 / max(|f_i|, 1e-12) as F.normalize; a sum of squares reduces over D much
        # faster than torch.norm on this strided layout
        squares = (flat * flat).sum(dim=1)  # [N, HW]
        scale = squares.clamp_min(1e-24).rsqrt()
        logits = torch.matmul(prototypes, flat) * (scale / tau)[:, None]  # [N, P, HW]
        ctx.save_for_backward(flat, prototypes, scale, squares > 1e-24, logits)
        ctx.tau = tau
        return logits

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        flat, prototypes, scale, unclamped, logits = ctx.saved_tensors
        grad_flat = grad_protos = None
        with _full_precision(grad.device):
            grad_scaled = grad * (scale / ctx.tau)[:, None]  # [N, P, HW]
            if ctx.needs_input_grad[0]:
                radial = (logits * grad).sum(dim=1) * torch.where(unclamped, scale * scale, 0.0)
                n = flat.shape[0]
                grad_flat = torch.bmm(prototypes.t().expand(n, -1, -1).contiguous(),
                                      grad_scaled)
                grad_flat -= flat * radial[:, None]
            if ctx.needs_input_grad[1]:
                grad_protos = torch.einsum("nph,ndh->pd", grad_scaled, flat)
        return grad_flat, grad_protos, None


def logit_maps(embeddings: Tensor, prototypes: Tensor, tau: float) -> Tensor:
    """``v_i . p_c / tau`` as maps ``[N, P, H*W]`` for ``embeddings`` ``[N, D, H, W]`` and
    ``prototypes`` ``[P, D]``; ``v_i`` is the L2-normalised embedding of pixel i.

    Computed as ``(f_i . p_c) / |f_i|`` on the ``[N, D, H*W]`` layout, so the large
    embedding tensor is neither copied nor normalised element by element, and the class
    dimension stays dimension 1, where reductions over it (log-sum-exp, gather) run along
    contiguous pixels. In at least float32, also under autocast (which would run the
    matmul in bfloat16 and perturb the rankings of prototype mining). Differentiable once.
    """
    dtype = torch.promote_types(embeddings.dtype, torch.float32)
    flat = embeddings.to(dtype).flatten(2)  # [N, D, HW], a view
    with _full_precision(flat.device):
        return _LogitMaps.apply(flat, prototypes.to(dtype), tau)


def mask_invalid(logit_maps: Tensor, valid: Tensor) -> Tensor:
    """Logit maps ``[N, P, H*W]`` with the prototypes outside ``valid`` ``[P]`` at -1e9."""
    return logit_maps.masked_fill(~valid[:, None], _EXCLUDED_LOGIT)


def prototype_logits(
    embeddings: Tensor, prototypes: Tensor, tau: float, valid: Tensor | None = None
) -> Tensor:
    """``v_i . p_c / tau`` ``[M, P]`` for every pixel of ``embeddings`` ``[N, D, H, W]``.

    Rows are pixels in ``n, y, x`` order (``M = N*H*W``); :func:`logit_maps` without the
    transpose. Prototypes outside ``valid`` ``[P]`` get a logit of -1e9, which leaves
    every softmax.
    """
    logits = logit_maps(embeddings, prototypes, tau).transpose(1, 2)
    logits = logits.reshape(-1, prototypes.shape[0])
    if valid is not None:
        logits = logits.masked_fill(~valid, _EXCLUDED_LOGIT)
    return logits


def nce_from_logits(logits: Tensor, targets: Tensor, keep: Tensor) -> Tensor:
    """Mean of ``logsumexp(logits) - logits[y]`` over the kept pixels (0 if none).

    ``logits`` ``[M, P]`` or ``[N, P, H*W]`` (classes along dimension 1), ``targets`` and
    ``keep`` of the same shape without that dimension (``[M]`` or ``[N, H*W]``).
    """
    nll = _nll(logits, targets)
    nll = torch.where(keep, nll, torch.zeros_like(nll))
    return nll.sum() / keep.sum().clamp_min(1)


def _nll(logits: Tensor, targets: Tensor) -> Tensor:
    """``logsumexp(logits) - logits[y]`` per pixel; classes along dimension 1 of
    ``logits``, ``targets`` of its shape without that dimension."""
    return torch.logsumexp(logits, dim=1) - logits.gather(1, targets.unsqueeze(1)).squeeze(1)


def pixel_prototype_nce(
    embeddings: Tensor,
    labels: Tensor,
    prototypes: Tensor,
    tau: float = 0.1,
    *,
    valid: Tensor | None = None,
    ignore_index: int | None = 255,
    validate: bool = True,
) -> Tensor:
    """Mean of ``F(v_i; y_i; P)`` over the counted pixels.

    Args:
        embeddings: ``[N, D, H, W]`` projections (L2-normalised per pixel here).
        labels: ``[N, H, W]`` int class index in ``[0, P)`` of each pixel, or ``ignore_index``.
        prototypes: ``[P, D]`` prototypes (normally L2-normalised, no gradient).
        tau: temperature.
        valid: optional ``[P]`` bool; invalid prototypes leave every denominator, and pixels
            labelled with one are not counted.
        ignore_index: label of pixels not counted (None: every label must be a class).
        validate: check values (NaN, label range); one host-device synchronisation.

    Returns a scalar: the mean over counted pixels, 0 when none is counted. Computed as
    ``logsumexp(logits) - logits[y]`` (never ``exp`` / ratio).
    """
    _check(embeddings, labels, prototypes, valid, tau, ignore_index, validate)
    targets, keep = flatten_labels(labels, ignore_index, valid)
    logits = prototype_logits(embeddings, prototypes, tau, valid)
    return nce_from_logits(logits, targets, keep)


def cross_prototype_loss(
    embeddings: Tensor, labels: Tensor, other_prototypes: Tensor, tau: float = 0.1, **kwargs
) -> Tensor:
    """Cross-prototype term ``F(v_i; y_i; P')``: a view's pixels and pseudo labels against the
    *other* view's prototypes ``[P, D]``. Same arguments as :func:`pixel_prototype_nce`."""
    return pixel_prototype_nce(embeddings, labels, other_prototypes, tau, **kwargs)


def cross_cam_loss(
    embeddings: Tensor, other_labels: Tensor, prototypes: Tensor, tau: float = 0.1, **kwargs
) -> Tensor:
    """Cross-CAM term ``F(v_i; y'_i; P)``: a view's pixels and prototypes with the *other*
    view's pseudo labels ``[N, H, W]`` (pixels must correspond: same N, H, W)."""
    return pixel_prototype_nce(embeddings, other_labels, prototypes, tau, **kwargs)


def mining_band(num_prototypes: int, skip_fraction: float, keep_fraction: float) -> tuple[int, int]:
    """``(skip, keep)`` of semi-hard prototype mining for ``P`` prototypes.

    ``skip = round(P * skip_fraction)`` hardest prototypes are dropped, the next
    ``keep = round(P * keep_fraction)`` are used. The defaults 3/21 and 10/21 give the
    official ranks 3..12 (0-based) of 21, i.e. the ~60% hardest minus the very hardest.
    """
    num_prototypes = require_int("num_prototypes", num_prototypes)
    _check_mining_fractions(skip_fraction, keep_fraction)
    skip = min(round(num_prototypes * skip_fraction), num_prototypes - 1)
    keep = max(1, min(round(num_prototypes * keep_fraction), num_prototypes - skip))
    return skip, keep


def semi_hard_prototypes(
    logits: Tensor, targets: Tensor, skip: int, keep: int, exclude_positive: bool = False,
    *, validate: bool = True,
) -> Tensor:
    """Indices ``[M, keep]`` of each pixel's semi-hard prototypes.

    Prototypes are ranked per pixel by similarity (``logits`` ``[M, P]``, descending, ties
    by lower index, excluded prototypes last); ranks ``skip .. skip+keep-1`` are returned.
    As in the official code the positive is ranked with the others (it then appears in the
    denominator twice if it falls in the band); ``exclude_positive=True`` ranks it last.
    ``validate`` checks the values (no NaN logit, ``targets`` in ``[0, P)``; one
    host-device synchronisation).
    """
    require_tensor("logits", logits, "[M, P]")
    require_tensor("targets", targets, "[M]")
    if logits.dim() != 2 or targets.shape != logits.shape[:1]:
        raise ValueError(f"logits must be [M, P] and targets [M], got {tuple(logits.shape)} "
                         f"and {tuple(targets.shape)}")
    num = logits.shape[1]
    if not (logits.is_floating_point() and targets.dtype in (torch.int64, torch.int32)):
        raise ValueError(f"logits must be floating point and targets integer class indices, "
                         f"got {logits.dtype} and {targets.dtype}")
    if not (is_int(skip) and is_int(keep)):
        raise ValueError(f"skip and keep must be ints (see mining_band), got {skip!r}, {keep!r}")
    skip, keep = int(skip), int(keep)
    require_bool("exclude_positive", exclude_positive)
    require_bool("validate", validate)
    if not (0 <= skip and 1 <= keep and skip + keep <= num):
        raise ValueError(f"the band skip={skip}, keep={keep} must fit in the P={num} "
                         "prototypes (0 <= skip, 1 <= keep, skip + keep <= P); see mining_band")
    if validate:
        if bool(logits.isnan().any()):
            raise ValueError(f"logits contains {int(logits.isnan().sum())} NaN value(s), "
                             "which have no rank; check the embeddings and prototypes")
        require_labels("targets", targets, num, None)
    with torch.no_grad():
        scores = logits.detach()
        if exclude_positive:
            scores = scores.scatter(1, targets[:, None], 2 * _EXCLUDED_LOGIT)
        order = torch.sort(scores, dim=1, descending=True, stable=True).indices
    return order[:, skip : skip + keep]


def rank_within_class(values: Tensor, classes: Tensor, num_classes: int) -> Tensor:
    """Ascending rank of each value among the values of its class.

    ``values`` ``[M]`` or ``[R, M]`` (R independent rankings, done together), ``classes``
    ``[M]`` int in ``[0, num_classes)`` -> int64 ranks of the same shape as ``values``; ties
    go to the lower position. One stable sort of (class, value) packed into an int64 key
    for float32 and narrower floats (classes below 2**31), two stable sorts otherwise;
    no loop over classes.
    """
    rows = values if values.dim() == 2 else values[None]
    if rows.is_floating_point() and rows.element_size() <= 4:
        keys = (classes.long() << 32) + (order_preserving_int(rows) + 2**31)
        order = torch.argsort(keys, dim=1, stable=True)
    else:
        by_value = torch.argsort(rows, dim=1, stable=True)
        order = by_value.gather(1, torch.argsort(classes[by_value], dim=1, stable=True))
    counts = torch.zeros(num_classes, dtype=torch.long, device=classes.device)
    counts.scatter_add_(0, classes, torch.ones_like(classes))
    starts = counts.cumsum(0) - counts
    position = torch.arange(classes.numel(), device=classes.device).expand_as(order)
    ranks = torch.empty_like(order).scatter_(1, order, position - starts[classes[order]])
    return ranks if values.dim() == 2 else ranks[0]


#: the ``balance`` options of :func:`hard_pixel_sampling` (the first is the official code's)
SAMPLING_BALANCES = ("classes", "foreground classes", "background vs foreground",
                     "background alone", "foreground alone")


def _class_shares(size: Tensor, num_present: Tensor, balance: str, background: int) -> Tensor:
    """Each class's share of the sampled loss (``[C + 1]``, float64; the last entry, the
    ignored pixels, is never eligible) for the non-official ``balance`` options of
    :func:`hard_pixel_sampling`; ``size`` ``[C + 1]`` float64 pixel counts."""
    counted = size[:-1]
    is_background = torch.arange(size.numel(), device=size.device) == background
    pixels = counted.sum().clamp_min(1)
    num_foreground = ((counted > 0) & ~is_background[:-1]).sum()
    if balance == "foreground classes":
        background_share = size[background] / pixels
        foreground = (1 - background_share) / num_foreground.clamp_min(1)
        return torch.where(is_background, background_share, foreground)
    # "background vs foreground", and the mean over pixels' shares for the "alone" options
    foreground_pixels = (pixels - size[background]).clamp_min(1)
    foreground = num_foreground.double() / num_present * size / foreground_pixels
    background_share = 1.0 / num_present.double()
    if balance == "background alone":
        foreground = size / pixels
    elif balance == "foreground alone":
        background_share = size[background] / pixels
    return torch.where(is_background, background_share, foreground)


def hard_pixel_sampling(
    similarity: Tensor,
    targets: Tensor,
    keep: Tensor,
    num_classes: int,
    *,
    random_fraction: float = 0.5,
    hard_fraction: float = 0.5,
    hard_upper: float = 0.6,
    generator: torch.Generator | None = None,
    random_keys: Tensor | None = None,
    return_draws: bool = False,
    balance: str = "classes",
    background: int = 0,
    validate: bool = True,
) -> Tensor | tuple[Tensor, Tensor]:
    """Per-pixel weights ``[M]`` that turn per-pixel losses into the sampled intra loss.

    For each class with ``L >= 2`` counted pixels (official code): ``floor(L*random_fraction)``
    pixels at random, plus the pixels at ascending-``similarity`` ranks
    ``floor(L*hard_upper) - floor(L*hard_fraction) .. floor(L*hard_upper) - 1`` (the
    hardest ~10% are skipped as likely label noise). A pixel drawn by both counts twice.
    The class's loss is the mean over its draws; the classes' losses are summed and divided
    by the number of classes with at least one pixel (classes with one pixel count, and add
    0). ``sum(weights * loss)`` is that value.

    ``balance`` sets each class's share of the total (its draws share it equally), with
    ``K`` the classes with at least one counted pixel, ``n`` the counted pixels, and class
    ``background`` apart from the ``K_fg`` foreground classes:

    * ``"classes"`` (official): ``1 / K`` each;
    * ``"foreground classes"`` (not in the paper): the background keeps its share of the
      pixels, ``n_bg / n``; the foreground classes share the rest equally;
    * ``"background vs foreground"`` (not in the paper): the background ``1 / K`` as
      officially, the foreground ``K_fg / K`` in all, shared by pixels: ``K_fg / K *
      n_c / n_fg``;
    * ``"background alone"`` (not in the paper): the background ``1 / K`` as in
      ``"background vs foreground"``, each foreground class its share of the pixels
      ``n_c / n`` as in the mean over pixels;
    * ``"foreground alone"`` (not in the paper): the background its share of the pixels
      ``n_bg / n``, the foreground classes ``K_fg / K * n_c / n_fg`` as in
      ``"background vs foreground"``.

    ``"foreground classes"`` and ``"background vs foreground"`` take apart what
    ``"classes"`` changes against the mean over pixels: the background's share, and the
    foreground classes' shares among themselves. The two ``"alone"`` options take the
    second apart once more: lowering the background's share from ``n_bg / n`` to ``1 / K``
    also raises the foreground's from ``n_fg / n`` to ``K_fg / K``; each makes one of the
    two changes, so their shares do not sum to 1 (the intra term's total weight changes).
    Classes with one pixel still add 0.

    ``similarity`` ``[M]`` similarity of each pixel to its own prototype; ``targets`` ``[M]``
    its class; ``keep`` ``[M]`` bool, pixels that take part. The random draw is one
    ``torch.rand(M, generator=generator)`` (or ``random_keys`` ``[M]``): a class's random
    pixels are those with the smallest keys. ``return_draws=True`` also returns how many
    times each pixel is drawn (``[M]``: 0, 1 or 2). ``validate`` checks that the kept
    pixels' targets lie in ``[0, num_classes)`` (one host-device sync).
    """
    check_sampling_fractions(random_fraction, hard_fraction, hard_upper)
    if balance not in SAMPLING_BALANCES:
        raise ValueError(f"balance must be one of {SAMPLING_BALANCES}, got {balance!r}")
    num_classes = require_int("num_classes", num_classes,
                              what=" (the number of prototypes, background included)")
    if not is_int(background) or not 0 <= background < num_classes:
        raise ValueError(f"background must be a class index in [0, {num_classes}), got "
                         f"{background!r}")
    require_generator(generator)
    require_bool("return_draws", return_draws)
    require_bool("validate", validate)
    shapes = {"similarity": similarity, "targets": targets, "keep": keep}
    if random_keys is not None:
        shapes["random_keys"] = random_keys
    for name, value in shapes.items():
        require_tensor(name, value, "[M]")
    m = targets.numel()
    if any(t.dim() != 1 or t.numel() != m for t in shapes.values()):
        raise ValueError("similarity, targets, keep (and random_keys) must all be [M], got "
                         + ", ".join(f"{k} {tuple(t.shape)}" for k, t in shapes.items()))
    if targets.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8) \
            or keep.dtype != torch.bool or not similarity.is_floating_point() \
            or (random_keys is not None and not random_keys.is_floating_point()):
        raise ValueError(f"targets must be integer class indices, keep bool, similarity (and "
                         f"random_keys) floating point, got {targets.dtype}, {keep.dtype}, "
                         f"{similarity.dtype}"
                         + (f", {random_keys.dtype}" if random_keys is not None else ""))
    if validate:  # value check (synchronises): every counted pixel's class is in range
        counted = targets[keep]
        if counted.numel() and not bool(((counted >= 0) & (counted < num_classes)).all()):
            raise ValueError(f"targets of kept pixels must lie in [0, num_classes) = "
                             f"[0, {num_classes}), got values in [{int(counted.min())}, "
                             f"{int(counted.max())}]; pass num_classes = the number of "
                             "prototypes (background included)")
    device = targets.device
    groups = torch.where(keep, targets, torch.full_like(targets, num_classes))  # extra group
    counts = torch.zeros(num_classes + 1, dtype=torch.long, device=device)
    counts.scatter_add_(0, groups, torch.ones_like(groups))
    if random_keys is None:
        random_keys = torch.rand(m, generator=generator, device=device)
    # ranked in float32 at least: bf16 keys would tie often, and ties favour low positions
    dtype = torch.promote_types(similarity.dtype, torch.float32)
    keys = torch.stack([random_keys.to(dtype), similarity.detach().to(dtype)])
    random_rank, hard_rank = rank_within_class(keys, groups, num_classes + 1)

    # Per class (num_classes + 1 entries, the last one the ignored pixels): how many draws.
    size = counts.double()
    n_random = torch.floor(size * random_fraction).long()
    upper = torch.floor(size * hard_upper).long()
    lower = (upper - torch.floor(size * hard_fraction).long()).clamp_min(0)
    per_class = n_random + upper - lower
    eligible = (counts >= 2) & (per_class > 0)
    eligible[num_classes:] = False  # a slice: fill_, no host-to-device copy
    num_present = (counts[:num_classes] > 0).sum().clamp_min(1)
    if balance == "classes":  # the official expression as it was: same rounding as ever
        class_weight = torch.where(eligible, 1.0 / (per_class.clamp_min(1) * num_present), 0.0)
    else:
        share = _class_shares(size, num_present, balance, background)
        class_weight = torch.where(eligible, share / per_class.clamp_min(1), 0.0)

    draws = (random_rank < n_random[groups]).to(similarity.dtype) + (
        (hard_rank >= lower[groups]) & (hard_rank < upper[groups])
    ).to(similarity.dtype)
    weights = draws * class_weight[groups].to(similarity.dtype)
    return (weights, draws) if return_draws else weights


def intra_view_loss(
    embeddings: Tensor,
    labels: Tensor,
    prototypes: Tensor,
    tau: float = 0.1,
    *,
    valid: Tensor | None = None,
    mining: bool = True,
    sampling: bool = True,
    mining_skip_fraction: float = 3 / 21,
    mining_keep_fraction: float = 10 / 21,
    mining_exclude_positive: bool = False,
    sampling_random_fraction: float = 0.5,
    sampling_hard_fraction: float = 0.5,
    sampling_hard_upper: float = 0.6,
    sampling_balance: str = "classes",
    generator: torch.Generator | None = None,
    ignore_index: int | None = 255,
    validate: bool = True,
) -> Tensor:
    """Intra-view term ``F(v_i; y_i; P)`` with semi-hard prototype mining and hard pixel
    sampling, each switchable.

    Without mining the denominator runs over all (valid) prototypes; with it, over the
    positive plus the semi-hard band of :func:`semi_hard_prototypes`. Without sampling the
    loss is the mean over counted pixels (= :func:`pixel_prototype_nce`); with it, the
    class-balanced sample of :func:`hard_pixel_sampling` (``sampling_balance``: its
    ``balance``, background = label 0). Shapes as in
    :func:`pixel_prototype_nce`; returns a scalar.
    """
    _check(embeddings, labels, prototypes, valid, tau, ignore_index, validate)
    for name, flag in (("mining", mining), ("sampling", sampling),
                       ("mining_exclude_positive", mining_exclude_positive)):
        require_bool(name, flag)
    _check_mining_fractions(mining_skip_fraction, mining_keep_fraction, prefix="mining_")
    check_sampling_fractions(sampling_random_fraction, sampling_hard_fraction,
                              sampling_hard_upper, "sampling_",
                              ", or pass sampling=False" if sampling else None)
    if sampling_balance not in SAMPLING_BALANCES:
        raise ValueError(f"sampling_balance must be one of {SAMPLING_BALANCES}, got "
                         f"{sampling_balance!r}")
    require_generator(generator)
    targets, keep = flatten_labels(labels, ignore_index, valid)
    logits = prototype_logits(embeddings, prototypes, tau, valid)
    return intra_from_logits(
        logits, targets, keep, mining=mining, sampling=sampling,
        mining_skip_fraction=mining_skip_fraction, mining_keep_fraction=mining_keep_fraction,
        mining_exclude_positive=mining_exclude_positive,
        sampling_random_fraction=sampling_random_fraction,
        sampling_hard_fraction=sampling_hard_fraction, sampling_hard_upper=sampling_hard_upper,
        sampling_balance=sampling_balance, generator=generator,
    )


def intra_from_logits(
    logits: Tensor,
    targets: Tensor,
    keep: Tensor,
    *,
    mining: bool = True,
    sampling: bool = True,
    mining_skip_fraction: float = 3 / 21,
    mining_keep_fraction: float = 10 / 21,
    mining_exclude_positive: bool = False,
    sampling_random_fraction: float = 0.5,
    sampling_hard_fraction: float = 0.5,
    sampling_hard_upper: float = 0.6,
    sampling_balance: str = "classes",
    generator: torch.Generator | None = None,
    random_keys: Tensor | None = None,
) -> Tensor:
    """:func:`intra_view_loss` on logits ``[M, P]``, targets ``[M]`` and keep ``[M]`` (see
    :func:`flatten_labels`, :func:`prototype_logits`), or on logit maps ``[N, P, H*W]``
    (:func:`logit_maps`) with targets and keep ``[N, H*W]``; pixels in ``n, y, x`` order.
    ``random_keys`` ``[M]``: hard pixel sampling's draw, made beforehand (see
    :func:`hard_pixel_sampling`); ``generator`` is then not used."""
    num_protos = logits.shape[1]
    positive = logits.gather(1, targets.unsqueeze(1))  # [M, 1] or [N, 1, HW]
    if mining:
        skip, count = mining_band(num_protos, mining_skip_fraction, mining_keep_fraction)
        # The band's logits by value: tied prototypes have equal logits, so which of them
        # is in the band does not change the loss, and an unstable sort of values (with a
        # gradient through them) is enough; semi_hard_prototypes gives the exact indices.
        scores = logits
        if mining_exclude_positive:
            scores = scores.scatter(1, targets.unsqueeze(1), 2 * _EXCLUDED_LOGIT)
        ranked = torch.sort(scores, dim=1, descending=True).values
        band = ranked[:, skip : skip + count]
        denominator = torch.logsumexp(torch.cat([positive, band], dim=1), dim=1)
    else:
        denominator = torch.logsumexp(logits, dim=1)
    positive = positive.squeeze(1)
    nll = torch.where(keep, denominator - positive, torch.zeros_like(denominator))
    if not sampling:
        return nll.sum() / keep.sum().clamp_min(1)
    weights = hard_pixel_sampling(
        positive.detach().reshape(-1), targets.reshape(-1), keep.reshape(-1), num_protos,
        random_fraction=sampling_random_fraction, hard_fraction=sampling_hard_fraction,
        hard_upper=sampling_hard_upper, generator=generator, random_keys=random_keys,
        balance=sampling_balance, validate=False,
    )
    return (weights * nll.reshape(-1)).sum()


def similarity_maps(embeddings: Tensor, prototypes: Tensor) -> Tensor:
    """Cosine similarity ``v_i . p_c`` of every pixel to every prototype:
    ``embeddings`` ``[N, D, H, W]``, ``prototypes`` ``[P, D]`` -> ``[N, P, H, W]``."""
    require_tensor("embeddings", embeddings, EMB_DOC, 4)
    require_tensor("prototypes", prototypes, PROTOS_DOC, 2)
    require_match("embedding dimension D", "prototypes", prototypes.shape[1], "embeddings",
                  embeddings.shape[1])
    n, _, h, w = embeddings.shape
    return logit_maps(embeddings, prototypes, tau=1.0).view(n, -1, h, w)


def nce_map(embeddings: Tensor, labels: Tensor, prototypes: Tensor, tau: float = 0.1,
            valid: Tensor | None = None) -> Tensor:
    """``F(v_i; y_i; P)`` of every pixel, ``[N, H, W]`` (for figures; no ignore label)."""
    _check(embeddings, labels, prototypes, valid, tau, None, validate=True)
    n, _, h, w = embeddings.shape
    logits = logit_maps(embeddings, prototypes, tau)
    if valid is not None:
        logits = mask_invalid(logits, valid)
    return _nll(logits, labels.reshape(n, -1).long()).view(n, h, w)
