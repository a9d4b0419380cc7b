"""A stand-in for ImageNet pre-training of the small backbone: a dense colour task.

The paper's backbone starts from ImageNet weights, whose features describe the image
around each position before any WSSS training. The small backbone of the synthetic runs
starts from random weights, and a classifier trained from there may put its evidence
anywhere in its receptive field (see the book's benchmark design study). This module
pre-trains it on a separate synthetic task that makes its features local: images of
random ellipses, each filled with one of ``num_colours`` reference colours (their own
seeded palette, not the benchmark's), and the network predicts, for every pixel, which
reference colour it shows. No benchmark image, label or class is used.

    python -m ppc.pretrain --out results/pretrain/small_local.pth

writes the backbone's ``state_dict`` (load it with ``--weights``, like any local file).
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_field_types, check_seed
from ._checks import check_output as _check_output
from .data.synthetic import ellipse, hsv_to_rgb
from .data.transforms import IMAGENET_MEAN, IMAGENET_STD
from .models.backbones import SMALL_DILATIONS, SmallNet


@dataclass(frozen=True)
class PretrainConfig:
    """The dense colour task and its training (AdamW, one-cycle, like the CPU recipe)."""

    image_size: int = 64
    num_colours: int = 16
    shapes: tuple[int, int] = (4, 10)  # (min, max) ellipses per image
    pixel_noise: float = 0.03
    width: int = 32
    dilations: tuple[int, int] = SMALL_DILATIONS
    steps: int = 300
    batch_size: int = 32
    lr: float = 3e-3
    seed: int = 0
    palette_seed: int = 1234

    def __post_init__(self) -> None:
        check_field_types(self, "PretrainConfig")
        for name, low, what in (("image_size", 16, "pixels per side"),
                                ("num_colours", 2, "reference colours"),
                                ("width", 1, "channels of the first block"),
                                ("steps", 1, "training steps"),
                                ("batch_size", 1, "images per step")):
            value = getattr(self, name)
            if value < low:
                raise ValueError(f"PretrainConfig.{name} must be an int >= {low} ({what}), got "
                                 f"{value!r}; pass e.g. {name}={_DEFAULTS[name]}")
        low, high = self.shapes
        if not 0 <= low <= high:
            raise ValueError(f"PretrainConfig.shapes must be (min, max) ellipses per image with "
                             f"0 <= min <= max, got {tuple(self.shapes)}; pass e.g. "
                             f"shapes={_DEFAULTS['shapes']}")
        if len(self.dilations) != 2 or any(d < 1 for d in self.dilations):
            raise ValueError(f"PretrainConfig.dilations must be two ints >= 1 (blocks 5 and 6 "
                             f"of SmallNet), got {tuple(self.dilations)}; pass e.g. "
                             f"dilations=(1, 1)")
        for name, positive in (("pixel_noise", False), ("lr", True)):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0 or (positive and value == 0):
                raise ValueError(f"PretrainConfig.{name} must be a finite number "
                                 f"{'> 0' if positive else '>= 0'}, got {value!r}; pass e.g. "
                                 f"{name}={_DEFAULTS[name]}")
        check_seed(self.seed, "PretrainConfig", bits=32)
        if self.palette_seed < 0:
            raise ValueError(f"PretrainConfig.palette_seed must be an int >= 0, got "
                             f"{self.palette_seed!r}; pass e.g. palette_seed=1234")


_DEFAULTS = {f.name: f.default for f in dataclasses.fields(PretrainConfig)}


def check_output(out) -> Path:
    """``out`` as a :class:`Path`, its folder created, or a ``ValueError`` saying what is in
    the way (checked before training, not after it)."""
    out = _check_output(out, "out", "results/pretrain/small_local.pth")
    if Path(str(out) + ".json").is_dir():
        raise ValueError(f"cannot write {out}.json (the report next to {out}): it is a "
                         "folder; pass another out, or remove that folder")
    return out


def reference_colours(config: PretrainConfig) -> np.ndarray:
    """``[num_colours, 3]`` in [0, 1]: hues around the circle at two saturations and
    brightnesses, from their own seed."""
    rng = np.random.default_rng(config.palette_seed)
    n = config.num_colours
    hues = (np.arange(n) / n + rng.uniform(0, 1 / n)) % 1.0
    sat = np.where(np.arange(n) % 2 == 0, 0.9, 0.45)
    val = np.where(np.arange(n) % 4 < 2, 0.95, 0.6)
    return hsv_to_rgb(hues, sat, val)


def make_batch(config: PretrainConfig, rng: np.random.Generator, colours: np.ndarray
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """(images ``[B, 3, S, S]`` ImageNet-normalised, labels ``[B, S, S]`` int64: the
    reference colour of every pixel)."""
    size, b = config.image_size, config.batch_size
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    labels = np.zeros((b, size, size), np.int64)
    for i in range(b):
        labels[i] = rng.integers(config.num_colours)
        for _ in range(rng.integers(config.shapes[0], config.shapes[1] + 1)):
            r = rng.uniform(3, size / 3)
            blob = ellipse(yy, xx, *rng.uniform(0, size, 2), r * rng.uniform(0.4, 1.0), r,
                           rng.uniform(0, np.pi))
            labels[i][blob] = rng.integers(config.num_colours)
    images = colours[labels] + rng.normal(0, config.pixel_noise, (b, size, size, 3))
    images = torch.from_numpy(np.clip(images, 0, 1).astype(np.float32)).permute(0, 3, 1, 2)
    mean = torch.tensor(IMAGENET_MEAN)[:, None, None]
    std = torch.tensor(IMAGENET_STD)[:, None, None]
    return (images - mean) / std, torch.from_numpy(labels)


def colour_logits(backbone: nn.Module, head: nn.Module, images: torch.Tensor, size
                  ) -> torch.Tensor:
    """``[B, num_colours, *size]``: the head's scores upsampled to the labels' size."""
    return F.interpolate(head(backbone(images)["feat"]), size=size, mode="bilinear",
                         align_corners=False)


def pretrain(config: PretrainConfig, out: str | Path, progress: bool = True) -> Path:
    """Train :class:`SmallNet` + a 1x1 head on the dense colour task; save the backbone's
    ``state_dict`` to ``out`` (and ``out`` + ``.json``: config, the last training batch's
    pixel accuracy, and the held-out accuracy of :func:`held_out_accuracy`). ``out`` is
    checked (and its folder created) before training."""
    if not isinstance(config, PretrainConfig):
        raise ValueError(f"config must be a PretrainConfig, got {type(config).__name__}; pass "
                         "e.g. PretrainConfig(steps=300)")
    out = check_output(out)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    colours = reference_colours(config)
    backbone = SmallNet(config.width, config.dilations)
    head = nn.Conv2d(backbone.out_channels, config.num_colours, 1)
    params = list(backbone.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, config.lr, total_steps=config.steps)
    started, accuracy = time.perf_counter(), float("nan")
    backbone.train()
    for step in range(1, config.steps + 1):
        images, labels = make_batch(config, rng, colours)
        logits = colour_logits(backbone, head, images, labels.shape[1:])
        loss = F.cross_entropy(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 50 == 0 or step == config.steps:
            accuracy = float((logits.argmax(1) == labels).float().mean())
            if progress:
                print(f"step {step}: loss {loss.item():.3f}, pixel accuracy {accuracy:.3f}",
                      flush=True)
    seconds = round(time.perf_counter() - started, 1)
    held_out = held_out_accuracy(config, backbone, head, colours)
    torch.save(backbone.state_dict(), out)
    Path(str(out) + ".json").write_text(json.dumps({
        "config": dataclasses.asdict(config), "pixel_accuracy": accuracy,
        "held_out_pixel_accuracy": held_out, "seconds": seconds,
        "torch": torch.__version__}, indent=1) + "\n")
    return out


def held_out_accuracy(config: PretrainConfig, backbone: nn.Module, head: nn.Module,
                      colours: np.ndarray, batches: int = 4) -> float:
    """Pixel accuracy in eval mode (BatchNorm's running statistics) on ``batches`` fresh
    batches from their own seed, never drawn in training (``pixel_accuracy`` in the report
    is the last training batch's, in train mode). The modules are left in eval mode."""
    rng = np.random.default_rng([config.seed, 1])  # a stream of its own
    backbone.eval()
    head.eval()
    correct = total = 0
    with torch.no_grad():
        for _ in range(batches):
            images, labels = make_batch(config, rng, colours)
            logits = colour_logits(backbone, head, images, labels.shape[1:])
            correct += int((logits.argmax(1) == labels).sum())
            total += labels.numel()
    return correct / total


def main(argv=None) -> int:
    from .cli import OneLineParser, thread_count  # one-line errors, like python -m ppc

    parser = OneLineParser(prog="python -m ppc.pretrain", description=__doc__)
    parser.add_argument("--out", required=True, help="where to write the backbone .pth")
    parser.add_argument("--steps", type=int, default=PretrainConfig.steps)
    parser.add_argument("--seed", type=int, default=PretrainConfig.seed)
    parser.add_argument("--dilations", type=int, nargs=2, default=PretrainConfig.dilations)
    parser.add_argument("--threads", type=thread_count, default=None,
                        help="torch's CPU threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be >= 1 (training steps), got {args.steps}; "
                     f"e.g. --steps {PretrainConfig.steps}")
    if not 0 <= args.seed < 2**32:
        parser.error(f"--seed must be an int in [0, 2**32), got {args.seed}; e.g. --seed 0")
    if min(args.dilations) < 1:
        parser.error(f"--dilations must be two ints >= 1 (blocks 5 and 6), got "
                     f"{' '.join(map(str, args.dilations))}; e.g. --dilations 1 1")
    try:
        config = PretrainConfig(steps=args.steps, seed=args.seed,
                                dilations=tuple(args.dilations))
        out = check_output(args.out)
    except ValueError as err:
        parser.error(str(err))
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        pretrain(config, out)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
