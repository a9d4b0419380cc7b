"""Datasets: PASCAL VOC 2012 (+SBD) in its devkit layout, and the synthetic benchmark.

Both return the same sample dicts (``id``, ``image``, ``label``, ``mask``, ``has_mask``),
so the rest of ``ppc`` does not care which one it reads.
"""

from .loader import SeededDataset, default_num_workers, make_loader
from .synthetic import (
    SyntheticConfig,
    SyntheticSegmentation,
    ensure_voc,
    generate,
    write_voc,
)
from .transforms import (
    PRESETS,
    AugmentConfig,
    RandomLongSideResize,
    eval_transform,
    multiscale_inputs,
    train_transform,
)
from .voc import (
    IGNORE_INDEX,
    VOC_CLASSES,
    DatasetLayoutError,
    VOCSegmentation,
    read_label_png,
    voc_palette,
    write_label_png,
)

__all__ = [
    "IGNORE_INDEX",
    "PRESETS",
    "VOC_CLASSES",
    "AugmentConfig",
    "DatasetLayoutError",
    "RandomLongSideResize",
    "SeededDataset",
    "SyntheticConfig",
    "SyntheticSegmentation",
    "VOCSegmentation",
    "default_num_workers",
    "ensure_voc",
    "eval_transform",
    "generate",
    "make_loader",
    "multiscale_inputs",
    "read_label_png",
    "train_transform",
    "voc_palette",
    "write_label_png",
    "write_voc",
]
