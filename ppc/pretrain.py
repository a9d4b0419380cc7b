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

import argparse
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

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
    pixel accuracy, and the held-out accuracy of :func:`held_out_accuracy`)."""
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
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ppc.pretrain", description=__doc__)
    parser.add_argument("--out", required=True, help="where to write the backbone .pth")
    parser.add_argument("--steps", type=int, default=PretrainConfig.steps)
    parser.add_argument("--seed", type=int, default=PretrainConfig.seed)
    parser.add_argument("--dilations", type=int, nargs=2, default=PretrainConfig.dilations)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    pretrain(PretrainConfig(steps=args.steps, seed=args.seed,
                            dilations=tuple(args.dilations)), args.out)


if __name__ == "__main__":
    main()
