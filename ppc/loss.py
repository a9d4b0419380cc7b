"""The PPC loss of both views as one module, configured by one dataclass."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

from ._checks import (
    check_field_types,
    replace_fields,
    require_finite,
    require_floating,
    require_generator,
    require_match,
    require_tensor,
)
from .cams import background_confidence, check_cams_and_labels, normalize_cams, pseudo_labels
from .contrast import (
    SAMPLING_BALANCES,
    check_sampling_fractions,
    flatten_labels,
    intra_from_logits,
    logit_maps,
    mask_invalid,
    mining_band,
    nce_from_logits,
)
from .prototypes import Prototypes, estimate_prototypes

TERMS = ("cross_prototype", "cross_cam", "intra", "total")


@dataclass(frozen=True)
class PPCConfig:
    """Every hyper-parameter and switch of the PPC loss (defaults: the official code).

    Attributes:
        top_k: K pixels per class for a prototype (paper: 32 at 16x16 maps, i.e. h*w/8).
        tau: temperature of the softmax over prototypes.
        alpha: weight of the cross-view terms (cross-prototype + cross-CAM).
        beta: weight of the intra-view term.
        bg_threshold: constant background score of the pseudo labels.
        cross_prototype: switch the cross-prototype term on or off.
        cross_cam: switch the cross-CAM term on or off.
        intra: switch the intra-view term on or off.
        prototype_mining: semi-hard prototype mining in the intra term.
        pixel_sampling: hard pixel sampling in the intra term.
        mining_skip_fraction: the mining band's start (3/21: the 3 hardest of 21
            prototypes are skipped).
        mining_keep_fraction: the band's width (10/21: ranks 3..12 of 21 are kept).
        mining_exclude_positive: rank the positive out of the band (the official code
            ranks it with the others).
        sampling_random_fraction: per class of L pixels, ``L*random`` pixels at random
            (0.5 in the official code).
        sampling_hard_fraction: and the ascending-similarity ranks
            ``[L*upper - L*hard, L*upper)`` (0.5 in the official code).
        sampling_hard_upper: ``upper`` above (0.6 in the official code).
        sampling_balance: each class's share of the sampled loss: "classes" (official:
            every class present the same), or, not in the paper, "foreground classes" (the
            background keeps its share of the pixels), "background vs foreground" (the
            background 1/K, the foreground classes by pixels), "background alone" (the
            background 1/K, the foreground classes their shares of the pixels) or
            "foreground alone" (the background its share of the pixels, the foreground as
            in "background vs foreground"); see :func:`ppc.hard_pixel_sampling`.
        prototype_embeddings: "raw" (official: average the projections, then normalise) or
            "normalized" (the paper's formula: average the normalised embeddings).
        prototype_classes: "all" (official: rank every class in every image; every
            prototype stays in every softmax) or "present" (rank a class only in images
            labelled with it; classes absent from the batch leave the softmax).
        validate: check input values (NaN, ranges) on every call; one host-device sync.
    """

    top_k: int = 32
    tau: float = 0.1
    alpha: float = 0.1
    beta: float = 0.1
    bg_threshold: float = 0.2
    cross_prototype: bool = True
    cross_cam: bool = True
    intra: bool = True
    prototype_mining: bool = True
    pixel_sampling: bool = True
    mining_skip_fraction: float = 3 / 21
    mining_keep_fraction: float = 10 / 21
    mining_exclude_positive: bool = False
    sampling_random_fraction: float = 0.5
    sampling_hard_fraction: float = 0.5
    sampling_hard_upper: float = 0.6
    sampling_balance: str = "classes"
    prototype_embeddings: str = "raw"
    prototype_classes: str = "all"
    validate: bool = True

    def __post_init__(self) -> None:
        check_field_types(self, "PPCConfig")
        if self.top_k < 1:  # an int: check_field_types
            raise ValueError(f"PPCConfig.top_k must be a positive int, got {self.top_k!r}")
        if not 0 < self.tau < math.inf:
            raise ValueError(f"PPCConfig.tau must be a finite number > 0, got {self.tau!r}")
        if not 0 <= self.bg_threshold <= 1:
            raise ValueError("PPCConfig.bg_threshold must be in [0, 1] (a background score "
                             f"for CAMs normalised to [0, 1]), got {self.bg_threshold!r}")
        for name in ("alpha", "beta"):
            if not 0 <= getattr(self, name) < math.inf:
                raise ValueError(f"PPCConfig.{name} must be a finite number >= 0, got "
                                 f"{getattr(self, name)!r}")
        check_sampling_fractions(
            self.sampling_random_fraction, self.sampling_hard_fraction,
            self.sampling_hard_upper, prefix="PPCConfig.sampling_",
            off=", or set pixel_sampling=False (--ppc.pixel_sampling false)"
            if self.pixel_sampling else None)
        mining_band(21, self.mining_skip_fraction, self.mining_keep_fraction)  # checks fractions
        if self.mining_skip_fraction + self.mining_keep_fraction > 1 + 1e-9:
            raise ValueError(
                f"PPCConfig.mining_skip_fraction + mining_keep_fraction must be <= 1 (the band "
                f"of kept prototypes would run past the last one and be cut short), got "
                f"{self.mining_skip_fraction!r} + {self.mining_keep_fraction!r}")
        if self.sampling_balance not in SAMPLING_BALANCES:
            raise ValueError(f"PPCConfig.sampling_balance must be one of {SAMPLING_BALANCES} "
                             f"('classes': the official code), got {self.sampling_balance!r}")
        if self.prototype_embeddings not in ("raw", "normalized"):
            raise ValueError(
                "PPCConfig.prototype_embeddings must be 'raw' (official code) or "
                f"'normalized' (paper), got {self.prototype_embeddings!r}"
            )
        if self.prototype_classes not in ("all", "present"):
            raise ValueError(
                "PPCConfig.prototype_classes must be 'all' (official code) or 'present', "
                f"got {self.prototype_classes!r}"
            )

    def replace(self, **changes) -> PPCConfig:
        """A copy with some fields changed (validated again)."""
        return replace_fields(self, changes)


class ViewState(NamedTuple):
    """What PPC derives from one view: normalised CAMs ``[N, C, H, W]``, pseudo labels
    ``[N, H, W]`` (0 = background, ignore label outside ``pixel_mask``) and prototypes."""

    cams: Tensor
    labels: Tensor
    prototypes: Prototypes


class PixelToPrototypeContrast(nn.Module):
    """PPC loss over a source view S and a target view T = A(S).

    ``forward(proj_s, cams_s, proj_t, cams_t, image_labels)`` with projections
    ``[N, D, H, W]`` (``f_proj`` output, before normalisation) and foreground CAMs
    ``[N, C, H, W]`` of both views, already brought to the same pixel grid (apply A to S's
    features and CAMs first: pixel i of S must correspond to pixel i of T), and
    ``image_labels`` ``[N, C]`` multi-hot. Optional ``pixel_mask`` ``[N, H, W]`` bool marks
    the pixels where the correspondence holds (e.g. inside a rotated frame): only they are
    labelled and enter the prototypes, and each CAM is min-max normalised over them.
    ``generator`` (a ``torch.Generator`` on the projections' device) makes hard pixel
    sampling's random draws reproducible; they are made first, so that with
    ``validate=False`` ``torch.compile`` traces the rest into one graph (value validation
    reads values, and breaks it). Under ``torch.distributed`` the prototypes are those of
    the global batch (``process_group``, default: the world).

    The background prototype ranks pixels by ``1 - max`` of the present classes' CAMs
    min-max normalised *without* ReLU (the official code ranks a constant, and with the
    ReLU every pixel whose present-class scores are all <= 0 would tie at 1).

    Returns a dict of scalars: ``cross_prototype``, ``cross_cam``, ``intra`` (each averaged
    over both views; 0 when switched off) and ``total = alpha * (cross_prototype +
    cross_cam) + beta * intra``. CAMs and prototypes carry no gradient; the loss flows into
    the projections only.
    """

    def __init__(self, config: PPCConfig | None = None, process_group=None) -> None:
        super().__init__()
        if config is not None and not isinstance(config, PPCConfig):
            raise ValueError(f"config must be a PPCConfig (e.g. PPCConfig(top_k=4)), got "
                             f"{type(config).__name__}")
        self.config = config if config is not None else PPCConfig()
        self.process_group = process_group

    def extra_repr(self) -> str:
        return repr(self.config)

    def view_state(
        self, proj: Tensor, cams: Tensor, image_labels: Tensor, pixel_mask: Tensor | None = None
    ) -> ViewState:
        """Normalised CAMs, pseudo labels and prototypes of one view (no gradient)."""
        cfg = self.config
        with torch.no_grad():
            raw = cams.detach().float()
            # min-max over the pixels that correspond (pixel_mask), not a rotation's corners
            norm = normalize_cams(raw, pixel_mask=pixel_mask, validate=False)
            labels = pseudo_labels(norm, image_labels, cfg.bg_threshold, validate=False)
            # background ranked without the ReLU: no ties among all-negative pixels
            background = background_confidence(
                normalize_cams(raw, relu=False, pixel_mask=pixel_mask, validate=False),
                image_labels, validate=False)
            if pixel_mask is not None:
                labels = labels.masked_fill(~pixel_mask, 255)
            protos = estimate_prototypes(
                proj, norm, image_labels, cfg.top_k,
                normalize_embeddings=cfg.prototype_embeddings == "normalized",
                rank_absent=cfg.prototype_classes == "all",
                pixel_mask=pixel_mask, background=background,
                process_group=self.process_group, validate=False,
            )
        return ViewState(norm, labels, protos)

    def _check(self, proj_s, cams_s, proj_t, cams_t, image_labels, pixel_mask) -> None:
        validate = self.config.validate
        for view, proj, cams in (("s", proj_s, cams_s), ("t", proj_t, cams_t)):
            require_tensor(f"proj_{view}", proj, "[N, D, H, W]", 4)
            require_floating(f"proj_{view}", proj, "[N, D, H, W]")
            require_tensor(f"cams_{view}", cams, "[N, C, H, W]", 4)
            check_cams_and_labels(cams, image_labels, validate, normalised=False)
            if validate:
                require_finite(f"proj_{view}", proj)
                require_finite(f"cams_{view}", cams)
        hint = "apply the view transform A to the source's features and CAMs first (ppc.views)"
        for axis, what in ((0, "batch size N"), (2, "height H"), (3, "width W")):
            for name, t in (("cams_s", cams_s), ("proj_t", proj_t), ("cams_t", cams_t)):
                require_match(what, name, t.shape[axis], "proj_s", proj_s.shape[axis], hint)
        require_match("embedding dimension D", "proj_t", proj_t.shape[1], "proj_s", proj_s.shape[1])
        for name, t in (("proj_s", proj_s), ("cams_s", cams_s)):
            if 0 in t.shape:
                raise ValueError(f"{name} has an empty dimension, shape {tuple(t.shape)}: the "
                                 "loss needs at least one image, channel, class and pixel")
        if pixel_mask is not None:
            n, _, h, w = proj_s.shape
            require_tensor("pixel_mask", pixel_mask, "[N, H, W]", 3)
            if tuple(pixel_mask.shape) != (n, h, w) or pixel_mask.dtype != torch.bool:
                raise ValueError(
                    f"pixel_mask must be a bool tensor of shape [N, H, W] = {(n, h, w)}, "
                    f"got {pixel_mask.dtype} of shape {tuple(pixel_mask.shape)}"
                )

    def forward(
        self,
        proj_s: Tensor,
        cams_s: Tensor,
        proj_t: Tensor,
        cams_t: Tensor,
        image_labels: Tensor,
        *,
        pixel_mask: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        cfg = self.config
        self._check(proj_s, cams_s, proj_t, cams_t, image_labels, pixel_mask)
        require_generator(generator)
        # Hard pixel sampling's random keys (one per pixel, view S then T), drawn before the
        # loss: torch.compile cannot trace a torch.Generator, and breaks the graph here once
        # instead of inside the loss.
        n, _, h, w = proj_s.shape
        keys = {
            v: torch.rand(n * h * w, generator=generator, device=proj_s.device)
            if cfg.intra and cfg.pixel_sampling else None
            for v in "st"
        }
        s = self.view_state(proj_s, cams_s, image_labels, pixel_mask)
        t = self.view_state(proj_t, cams_t, image_labels, pixel_mask)

        # With every class ranked in every pixel (official default, no pixel mask) every
        # prototype is valid and no pixel is ignored: skip the masks altogether.
        masked = cfg.prototype_classes != "all" or pixel_mask is not None
        ignore = 255 if pixel_mask is not None else None

        def valid(view: ViewState) -> Tensor | None:
            return view.prototypes.valid if masked else None

        # One matmul per view, against both views' prototypes; logits stay as maps
        # [N, P, H*W] (classes along dimension 1), targets and keep as [N, H*W].

        def flat(labels, valid_protos):
            y, keep = flatten_labels(labels, ignore, valid_protos)
            return y.view(n, -1), keep.view(n, -1)

        own, other, targets = {}, {}, {}
        for name, proj, view, opposite in (("s", proj_s, s, t), ("t", proj_t, t, s)):
            both = torch.cat([view.prototypes.vectors, opposite.prototypes.vectors])
            logits = logit_maps(proj, both, cfg.tau)
            num = view.prototypes.vectors.shape[0]
            own[name], other[name] = logits[:, :num], logits[:, num:]
            if masked:
                own[name] = mask_invalid(own[name], view.prototypes.valid)
                other[name] = mask_invalid(other[name], opposite.prototypes.valid)
            mine = flat(view.labels, valid(view))
            targets[name] = {
                "own": mine,
                "other_protos": flat(view.labels, valid(opposite)) if masked else mine,
                "other_labels": flat(opposite.labels, valid(view)),
            }

        zero = proj_s.new_zeros((), dtype=torch.float32)
        terms = {"cross_prototype": zero, "cross_cam": zero, "intra": zero}
        if cfg.cross_prototype:  # F(v_i; y_i; P'): own pixels and labels, other prototypes
            terms["cross_prototype"] = 0.5 * sum(
                nce_from_logits(other[v], *targets[v]["other_protos"]) for v in "st")
        if cfg.cross_cam:  # F(v_i; y'_i; P): own pixels and prototypes, other labels
            terms["cross_cam"] = 0.5 * sum(
                nce_from_logits(own[v], *targets[v]["other_labels"]) for v in "st")
        if cfg.intra:  # F(v_i; y_i; P) with mining and sampling
            terms["intra"] = 0.5 * sum(
                intra_from_logits(
                    own[v], *targets[v]["own"], mining=cfg.prototype_mining,
                    sampling=cfg.pixel_sampling,
                    mining_skip_fraction=cfg.mining_skip_fraction,
                    mining_keep_fraction=cfg.mining_keep_fraction,
                    mining_exclude_positive=cfg.mining_exclude_positive,
                    sampling_random_fraction=cfg.sampling_random_fraction,
                    sampling_hard_fraction=cfg.sampling_hard_fraction,
                    sampling_hard_upper=cfg.sampling_hard_upper,
                    sampling_balance=cfg.sampling_balance,
                    random_keys=keys[v],
                )
                for v in "st"
            )
        cross = terms["cross_prototype"] + terms["cross_cam"]
        terms["total"] = cfg.alpha * cross + cfg.beta * terms["intra"]
        return terms
