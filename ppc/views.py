"""The spatial transform A(.) that makes the target view T = A(S) from the source view S.

The paper rescales (the official code resizes the 448 crop to 128x128); flips and
rotations are options for the transformation ablation. The same A is applied to the
source's images, features and CAMs, so pixel i of ``A(maps of S)`` corresponds to pixel i of
the maps of T. Everything is one affine warp (``grid_sample`` with ``align_corners=False``,
resolution independent), so images and feature maps of any size share one A.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ._checks import check_field_types, is_int, require_int

#: ``apply``'s resampling modes: a plain resize (``F.interpolate``) and a flip or rotation
#: (``F.grid_sample``)
RESIZE_MODES = ("bilinear", "bicubic", "nearest", "nearest-exact", "area")
WARP_MODES = ("bilinear", "bicubic", "nearest")


@dataclass(frozen=True)
class ViewConfig:
    """A(.): ``scale`` (target size = scale x source size) or ``size`` (a fixed square
    target side in px, as the official 128x128; overrides ``scale``), then a horizontal
    ``flip`` and a rotation by ``rotate`` degrees (corners outside the source are masked)."""

    scale: float = 0.3
    size: int | None = None
    flip: bool = False
    rotate: float = 0.0

    def __post_init__(self) -> None:
        check_field_types(self, "ViewConfig")
        if not math.isfinite(self.rotate):
            raise ValueError(f"ViewConfig.rotate must be a finite angle in degrees, got "
                             f"{self.rotate}")
        if not 0 < self.scale <= 4:
            raise ValueError(f"ViewConfig.scale must be in (0, 4], got {self.scale}")
        if self.size is not None and self.size < 8:
            raise ValueError(f"ViewConfig.size must be >= 8 px, got {self.size}")

    @property
    def is_identity_warp(self) -> bool:
        return not self.flip and self.rotate % 360 == 0


def _require_config(config) -> None:
    if not isinstance(config, ViewConfig):
        raise ValueError(f"config must be a ppc.views.ViewConfig (e.g. ViewConfig(scale=0.3)), "
                         f"got {type(config).__name__}")


def _grid_size(size) -> tuple[int, int]:
    """``size`` as two Python ints, or a ``ValueError``."""
    if not (isinstance(size, (tuple, list)) and len(size) == 2
            and all(is_int(v) and v >= 1 for v in size)):
        raise ValueError(f"size must be the target grid (h, w) of two ints >= 1, got {size!r}")
    return int(size[0]), int(size[1])


def target_size(config: ViewConfig, height: int, width: int) -> tuple[int, int]:
    """Size of T for a source of ``height`` x ``width`` px: ``floor(side * scale)``, as
    ``F.interpolate(scale_factor=scale)`` in the official code (SEAM's x0.3: 448 -> 134),
    at least 8 px."""
    _require_config(config)
    for name, value in (("height", height), ("width", width)):
        require_int(name, value, what=" (the source's side in px)")
    if config.size is not None:
        return config.size, config.size
    return max(8, math.floor(height * config.scale)), max(8, math.floor(width * config.scale))


def _theta(config: ViewConfig, n: int, device, dtype) -> Tensor:
    """Affine matrices ``[N, 2, 3]`` mapping target coordinates to source coordinates."""
    angle = math.radians(config.rotate)
    c, s = math.cos(angle), math.sin(angle)
    fx = -1.0 if config.flip else 1.0
    # filled on the device (torch.tensor(..., device=cuda) would be a blocking copy)
    values = (c * fx, -s, 0.0, s * fx, c, 0.0)
    theta = torch.stack([torch.full((), v, device=device, dtype=dtype) for v in values])
    return theta.view(2, 3).expand(n, 2, 3)


def apply(config: ViewConfig, maps: Tensor, size: tuple[int, int],
          mode: str = "bilinear") -> Tensor:
    """A(maps): warp ``maps`` ``[N, C, H, W]`` (images, features or CAMs of S) onto the
    target grid of ``size`` = (h, w). Pure rescaling is a plain bilinear resize.
    ``mode``: for a plain resize "bilinear", "bicubic", "nearest", "nearest-exact" or
    "area" (``RESIZE_MODES``); for a flip or rotation "bilinear", "bicubic" or "nearest"
    (``WARP_MODES``). An empty batch (N = 0) gives an empty batch."""
    _require_config(config)
    if not isinstance(maps, torch.Tensor) or maps.dim() != 4:
        raise ValueError(f"maps must be a tensor of shape [N, C, H, W], got "
                         f"{tuple(getattr(maps, 'shape', ())) or type(maps).__name__}")
    if not maps.is_floating_point():
        raise ValueError(f"maps must be floating point (resampling interpolates), got "
                         f"{maps.dtype}; convert with .float()")
    if 0 in maps.shape[1:]:
        raise ValueError(f"maps must have at least one channel and one pixel, got shape "
                         f"{tuple(maps.shape)} ([N, C, H, W])")
    size = _grid_size(size)
    modes = RESIZE_MODES if config.is_identity_warp else WARP_MODES
    if mode not in modes:
        kind = "a plain resize" if config.is_identity_warp else "a flip or rotation"
        raise ValueError(f"mode must be one of {modes} for {kind}, got {mode!r}")
    if config.rotate % 180 != 0 and (maps.shape[2] != maps.shape[3] or size[0] != size[1]):
        raise ValueError(f"a rotation by {config.rotate} degrees needs square maps and a "
                         f"square target (it turns normalised coordinates, which would "
                         f"stretch other shapes), got {tuple(maps.shape[2:])} -> {tuple(size)}")
    if config.is_identity_warp:
        if tuple(maps.shape[2:]) == tuple(size):
            return maps
        corners = None if mode in ("nearest", "nearest-exact", "area") else False
        return F.interpolate(maps, size=size, mode=mode, align_corners=corners)
    if maps.shape[0] == 0:  # affine_grid refuses an empty batch
        return maps.new_empty((0, maps.shape[1], *size))
    grid = F.affine_grid(_theta(config, maps.shape[0], maps.device, maps.dtype),
                         [maps.shape[0], maps.shape[1], *size], align_corners=False)
    # beyond the outer pixel centres the edge value is repeated, as F.interpolate does for
    # a plain resize: zero padding would dim a map upsampled by a flip or rotation along
    # its border (SEAM compares such maps at the image's size); corners that a rotation
    # moves outside the source are masked out of the losses (valid_mask)
    return F.grid_sample(maps, grid, mode=mode, padding_mode="border", align_corners=False)


def valid_mask(config: ViewConfig, n: int, size: tuple[int, int], device=None) -> Tensor | None:
    """``[N, h, w]`` bool: target pixels whose source point lies inside S (None when every
    pixel does, i.e. no rotation). ``n = 0`` gives an empty mask."""
    _require_config(config)
    if not is_int(n) or n < 0:
        raise ValueError(f"n must be the batch size, an int >= 0, got {n!r}")
    size = _grid_size(size)
    if config.rotate % 360 == 0:
        return None
    if n == 0:  # affine_grid refuses an empty batch
        return torch.zeros((0, *size), dtype=torch.bool, device=device)
    grid = F.affine_grid(_theta(config, n, device, torch.float32), [n, 1, *size],
                         align_corners=False)
    return (grid.abs() <= 1).all(dim=-1)


def make_target(config: ViewConfig, images: Tensor) -> Tensor:
    """T = A(S) for a batch of source images ``[N, 3, H, W]``."""
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must have shape [N, 3, H, W] (channels first), got "
                         f"{tuple(getattr(images, 'shape', ())) or type(images).__name__}")
    if 0 in images.shape[2:]:
        raise ValueError(f"images must have at least one pixel, got shape "
                         f"{tuple(images.shape)} ([N, 3, H, W])")
    return apply(config, images, target_size(config, *images.shape[2:]))
