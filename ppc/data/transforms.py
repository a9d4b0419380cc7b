"""Joint image/mask augmentation (torchvision transforms v2) and inference inputs.

The official recipe for VOC: resize the long side to a random 448-768 px, horizontal flip,
colour jitter (0.3, 0.3, 0.3, 0.1), ImageNet normalisation, random 448 crop padded with 0
(image) and 255 (mask: ignore). The synthetic preset scales the sizes by 64/448.
Transforms take and return the sample dicts of :mod:`ppc.data.voc` and
:mod:`ppc.data.synthetic`; torchvision routes each entry by its type (``tv_tensors.Image``
gets colour and bilinear resizing, ``tv_tensors.Mask`` nearest resizing and the ignore fill).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from .._checks import check_field_types, check_scales, replace_fields
from .voc import IGNORE_INDEX

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation. ``resize_long``: (min, max) long side in px, or None to keep
    the size; ``crop``: square crop side (padded with 0 / the ignore label); ``flip``:
    horizontal flip probability; ``jitter``: ColorJitter (brightness, contrast, saturation,
    hue) or None; ``mean``/``std``: normalisation."""

    resize_long: tuple[int, int] | None = (448, 768)
    crop: int = 448
    flip: float = 0.5
    jitter: tuple[float, float, float, float] | None = (0.3, 0.3, 0.3, 0.1)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        check_field_types(self, "AugmentConfig")

        def bad(field: str, expected: str):
            raise ValueError(f"AugmentConfig.{field} must be {expected}, got "
                             f"{getattr(self, field)!r}")

        if self.resize_long is not None and not 0 < self.resize_long[0] <= self.resize_long[1]:
            bad("resize_long", "None (keep the size) or (min, max) long sides in px with "
                "0 < min <= max (the VOC recipe: (448, 768))")
        if self.crop < 1:
            bad("crop", "the side of the square crop in px, >= 1 (the VOC recipe: 448)")
        if not 0 <= self.flip <= 1:
            bad("flip", "a horizontal flip probability in [0, 1] (the VOC recipe: 0.5)")
        if self.jitter is not None and not (
                all(math.isfinite(v) and v >= 0 for v in self.jitter) and self.jitter[3] <= 0.5):
            bad("jitter", "None or ColorJitter's (brightness, contrast, saturation, hue), "
                "finite and >= 0 with hue <= 0.5 (the VOC recipe: (0.3, 0.3, 0.3, 0.1))")
        if not all(math.isfinite(v) for v in self.mean):
            bad("mean", "3 finite per-channel means (ImageNet's: (0.485, 0.456, 0.406))")
        if not all(math.isfinite(v) and v > 0 for v in self.std):
            bad("std", "3 finite per-channel standard deviations > 0 (ImageNet's: "
                "(0.229, 0.224, 0.225))")

    def replace(self, **changes) -> AugmentConfig:
        """A copy with ``changes`` (checked again; unknown names raise ``ValueError``)."""
        return replace_fields(self, changes)


PRESETS = {
    "voc": AugmentConfig(),
    # the VOC recipe scaled by 64/448 for the 64 px synthetic images
    "synthetic": AugmentConfig(resize_long=(64, 110), crop=64),
}


class RandomLongSideResize(v2.Transform):
    """Resize so that the long side is a random integer in ``[low, high]`` (aspect kept)."""

    def __init__(self, low: int, high: int) -> None:
        super().__init__()
        if not 0 < low <= high:
            raise ValueError(f"RandomLongSideResize needs 0 < low <= high, got {(low, high)}")
        self.low, self.high = low, high

    def make_params(self, flat_inputs):
        height, width = v2.query_size(flat_inputs)
        target = int(torch.randint(self.low, self.high + 1, ()).item())
        scale = target / max(height, width)
        return {"size": [max(1, round(height * scale)), max(1, round(width * scale))]}

    def transform(self, inpt, params):
        if isinstance(inpt, (tv_tensors.Image, tv_tensors.Mask)):
            return TF.resize(inpt, params["size"], antialias=True)
        return inpt


def preset(name: str) -> AugmentConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown augmentation preset {name!r}; expected one of {sorted(PRESETS)}")
    return PRESETS[name]


def train_transform(config: AugmentConfig | str = "voc") -> v2.Compose:
    """The training augmentation of a sample dict (see :class:`AugmentConfig`)."""
    cfg = preset(config) if isinstance(config, str) else config
    steps: list = []
    if cfg.resize_long is not None:
        steps.append(RandomLongSideResize(*cfg.resize_long))
    if cfg.flip > 0:
        steps.append(v2.RandomHorizontalFlip(cfg.flip))
    if cfg.jitter is not None:
        steps.append(v2.ColorJitter(*cfg.jitter))
    steps += [
        v2.ToDtype({tv_tensors.Image: torch.float32, "others": None}, scale=True),
        v2.Normalize(cfg.mean, cfg.std),
        v2.RandomCrop(cfg.crop, pad_if_needed=True,
                      fill={tv_tensors.Image: 0.0, tv_tensors.Mask: IGNORE_INDEX}),
    ]
    return v2.Compose(steps)


def eval_transform(config: AugmentConfig | str = "voc") -> v2.Compose:
    """Evaluation: only conversion to float and normalisation (full image, no crop)."""
    cfg = preset(config) if isinstance(config, str) else config
    return v2.Compose([
        v2.ToDtype({tv_tensors.Image: torch.float32, "others": None}, scale=True),
        v2.Normalize(cfg.mean, cfg.std),
    ])


def multiscale_inputs(image: torch.Tensor, scales=(0.5, 1.0, 1.5, 2.0),
                      flip: bool = True) -> list[torch.Tensor]:
    """Inference inputs of one normalised image ``[3, H, W]``: for every scale, the resized
    image and (``flip``) its horizontal mirror, each ``[1, 3, h, w]``, in the order
    ``s0, s0-flipped, s1, ...``. Undo the flip on the outputs before summing them."""
    if not isinstance(image, torch.Tensor):
        raise ValueError(f"image must be a torch.Tensor of shape [3, H, W] (normalised, e.g. "
                         f"by eval_transform), got {type(image).__name__}")
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"image must have shape [3, H, W], got {tuple(image.shape)}")
    check_scales(scales)
    height, width = image.shape[1:]
    inputs = []
    for scale in scales:
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        scaled = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False)
        inputs.append(scaled)
        if flip:
            inputs.append(scaled.flip(-1))
    return inputs

