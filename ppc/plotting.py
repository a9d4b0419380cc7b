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
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 3))
    else:
        fig = ax.figure
    sns.lineplot(data=frame, x=x, y=y, hue=hue, ax=ax, **kwargs)
    ax.set_title(title)
    fig.tight_layout()
    return fig


__all__ = ["IGNORE_INDEX", "mask_to_rgb", "plot_curves", "show_maps", "show_samples", "to_rgb"]
