"""Figures for the book: image grids, masks in the VOC palette, CAM overlays, curves.

Every function draws on matplotlib axes and returns the figure; the notebooks only choose
what to show.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch

from .data.transforms import IMAGENET_MEAN, IMAGENET_STD
from .data.voc import IGNORE_INDEX, voc_palette


def to_rgb(image) -> np.ndarray:
    """``[3, H, W]`` uint8 or ImageNet-normalised float tensor -> ``[H, W, 3]`` float in
    [0, 1]."""
    x = torch.as_tensor(image).detach().cpu()
    if x.dim() != 3 or x.shape[0] != 3:
        hint = (" (channels last: pass image.permute(2, 0, 1))"
                if x.dim() == 3 and x.shape[-1] == 3 else "")
        raise ValueError(f"to_rgb: image must be [3, H, W], got shape {tuple(x.shape)}{hint}")
    if x.dtype == torch.uint8:
        x = x.float() / 255
    else:
        mean = torch.tensor(IMAGENET_MEAN)[:, None, None]
        std = torch.tensor(IMAGENET_STD)[:, None, None]
        x = x.float() * std + mean
    return x.clamp(0, 1).permute(1, 2, 0).numpy()


def mask_to_rgb(mask) -> np.ndarray:
    """Label map ``[H, W]`` (0 background, c+1 class c, 255 ignore) -> VOC colours."""
    m = np.asarray(torch.as_tensor(mask).cpu(), dtype=np.int64)
    if m.ndim != 2:
        raise ValueError(f"mask_to_rgb: mask must be a label map [H, W], got shape {m.shape}")
    return voc_palette()[np.clip(m, 0, 255)] / 255.0


def _axes_grid(rows: int, cols: int, size: float = 1.6):
    fig, axes = plt.subplots(rows, cols, figsize=(cols * size, rows * size), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    return fig, axes


def show_samples(samples: Sequence[dict], class_names: Sequence[str], cams=None,
                 pseudo=None, size: float = 1.6):
    """One column per sample: image, ground truth, and optionally the CAM of each image's
    first present class (``cams``: list of ``[C, H, W]``) and pseudo masks."""
    if len(samples) == 0:
        raise ValueError("show_samples: no samples to show; pass at least one dataset item")
    for name, per_sample in (("cams", cams), ("pseudo", pseudo)):
        if per_sample is not None and len(per_sample) != len(samples):
            raise ValueError(f"show_samples: {len(samples)} samples but {len(per_sample)} "
                             f"{name}; pass one per sample, in the same order")
    rows = 2 + (cams is not None) + (pseudo is not None)
    fig, axes = _axes_grid(rows, len(samples), size)
    for j, sample in enumerate(samples):
        present = [class_names[i] for i in torch.nonzero(sample["label"]).flatten().tolist()]
        axes[0, j].imshow(to_rgb(sample["image"]))
        axes[0, j].set_title(", ".join(present), fontsize=7)
        axes[1, j].imshow(mask_to_rgb(sample["mask"]), interpolation="nearest")
        r = 2
        if cams is not None:
            axes[r, j].imshow(to_rgb(sample["image"]))
            keys = torch.nonzero(sample["label"]).flatten()
            if len(keys):
                axes[r, j].imshow(np.asarray(cams[j][keys[0]]), cmap="jet", alpha=0.5,
                                  vmin=0, vmax=1)
            r += 1
        if pseudo is not None:
            axes[r, j].imshow(mask_to_rgb(pseudo[j]), interpolation="nearest")
    labels = ["image", "ground truth"] + (["CAM"] if cams is not None else []) + (
        ["pseudo mask"] if pseudo is not None else [])
    for i, text in enumerate(labels):
        axes[i, 0].text(-0.08, 0.5, text, transform=axes[i, 0].transAxes, rotation=90,
                        ha="right", va="center", fontsize=8)
    fig.tight_layout()
    return fig


def show_maps(maps, titles: Sequence[str], cmap: str = "viridis", vmin=None, vmax=None,
              size: float = 1.6, cols: int | None = None):
    """A row (or grid) of 2-D maps with titles and one colour bar."""
    maps = [np.asarray(torch.as_tensor(m).detach().cpu()) for m in maps]
    if len(titles) != len(maps):
        raise ValueError(f"show_maps: {len(maps)} maps but {len(titles)} titles; pass one "
                         "title per map")
    if not maps:
        raise ValueError("show_maps: no maps to show; pass at least one [H, W] map")
    shapes = [m.shape for m in maps if m.ndim != 2]
    if shapes:
        raise ValueError(f"show_maps: every map must be 2-D [H, W], got shape {shapes[0]}")
    if cols is not None and (not isinstance(cols, int) or cols < 1):
        raise ValueError(f"show_maps: cols must be an int >= 1 (or None: one row), got {cols!r}")
    cols = cols or len(maps)
    rows = (len(maps) + cols - 1) // cols
    fig, axes = _axes_grid(rows, cols, size)
    image = None
    for ax, m, title in zip(axes.flat, maps, titles, strict=False):  # axes may be more
        image = ax.imshow(m, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_title(title, fontsize=8)
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8)
    return fig


def plot_curves(frame: pd.DataFrame, x: str, y: str, hue: str | None = None, title: str = "",
                ax=None, **kwargs):
    """A seaborn line plot of ``frame``; returns the figure."""
    missing = [c for c in (x, y, hue) if c is not None and c not in frame.columns]
    if missing:
        raise ValueError(f"plot_curves: no column {missing[0]!r} in the frame; its columns "
                         f"are {list(frame.columns)}")
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 3))
    else:
        fig = ax.figure
    sns.lineplot(data=frame, x=x, y=y, hue=hue, ax=ax, **kwargs)
    ax.set_title(title)
    fig.tight_layout()
    return fig


__all__ = ["IGNORE_INDEX", "mask_to_rgb", "plot_curves", "show_maps", "show_samples", "to_rgb"]
