"""Multi-scale + flip CAM inference: the seeds that PPC improves.

For every image: the network runs at each scale (0.5, 1.0, 1.5, 2.0 by default) on the
image and its mirror; the ReLU'd CAMs (the PCM-refined ones for SEAM, as the official
code) are resized to the image, un-flipped and summed; the classes of the image's labels
are kept and each map is min-max normalised to [0, 1], as the official code. Outputs per
image: ``cams/<id>.npz`` (see :func:`ppc.evaluate.save_cam_npz`) and ``masks/<id>.png``,
the pseudo mask at a background threshold in the VOC palette.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, default_collate
from tqdm import tqdm

from ._checks import (
    as_device,
    blocking_file,
    check_scales,
    require_floating,
    require_int,
    require_score,
    require_tensor,
)
from .cams import normalize_cams
from .data.voc import write_label_png
from .evaluate import cams_to_prediction, save_cam_npz


def _class_maps(model, images: Tensor) -> Tensor:
    """ReLU'd foreground maps ``[N, C, h, w]`` of one forward pass."""
    out = model(images, project=False)
    if "cam_rv" in out:
        return F.relu(out["cam_rv"][:, 1:].float())
    logits = out["logits"].float()
    if logits.shape[1] == model.num_classes + 1:  # fully supervised: probabilities
        return logits.softmax(dim=1)[:, 1:]
    return F.relu(logits)


@torch.no_grad()
def multiscale_cams(model, images: Tensor, scales=(0.5, 1.0, 1.5, 2.0),
                    flip: bool = True, amp: bool = False) -> Tensor:
    """Summed CAMs ``[N, C, H, W]`` at the images' resolution (``images`` ``[N, 3, H, W]``
    normalised), over ``scales`` and (``flip``) mirrors."""
    require_tensor("images", images, "[N, 3, H, W]", 4)
    require_floating("images", images, "[N, 3, H, W]")
    check_scales(scales)
    height, width = images.shape[2:]
    total = None
    for scale in scales:
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        x = images if size == (height, width) else F.interpolate(
            images, size=size, mode="bilinear", align_corners=False)
        batch = torch.cat([x, x.flip(-1)]) if flip else x
        with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=amp):
            maps = _class_maps(model, batch)
        maps = F.interpolate(maps, size=(height, width), mode="bilinear", align_corners=False)
        if flip:
            maps = maps[: len(x)] + maps[len(x):].flip(-1)
        total = maps if total is None else total + maps
    return total


def normalise_present(cams: Tensor, label: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Keep the classes of ``label`` ``[C]`` from the summed ``cams`` ``[C, H, W]`` and
    min-max normalise each to [0, 1], as the official SEAM/PPC inference (ReLU, then
    ``(x - min) / (max - min + 1e-5)``) -> (maps ``[K, H, W]``, keys ``[K]``)."""
    if label.dim() != 1 or label.shape[0] != cams.shape[0]:
        raise ValueError(f"label must be [C] with C = {cams.shape[0]} (one per CAM), got shape "
                         f"{tuple(label.shape)}")
    keys = torch.nonzero(label > 0.5).flatten()
    maps = normalize_cams(cams[keys][None].float(), validate=False)[0]
    return maps.cpu().numpy(), keys.cpu().numpy()


def infer(model, dataset, out_dir: str | Path, *, scales=(0.5, 1.0, 1.5, 2.0), flip=True,
          png_threshold: float = 0.26, batch_size: int = 1, device="cpu", amp: bool = False,
          progress: bool = True) -> Path:
    """Write ``cams/<id>.npz`` and ``masks/<id>.png`` for every image of ``dataset`` (with
    the evaluation transform). Up to ``batch_size`` consecutive images go through the
    network together; those of different sizes (VOC) in separate forward passes."""
    check_scales(scales)
    require_score("png_threshold", png_threshold)
    batch_size = require_int("batch_size", batch_size)
    device = as_device(device)
    if not isinstance(out_dir, (str, os.PathLike)) or not str(out_dir).strip():
        raise ValueError(f"out_dir must be the path of the folder to write the seeds into, got "
                         f"{out_dir!r}; pass e.g. 'results/run/seeds'")
    out = Path(out_dir)
    for folder in ("cams", "masks"):
        blocking = blocking_file(out / folder)
        if blocking is not None:
            raise ValueError(f"cannot write the seeds into {out}: {blocking} is a file, not a "
                             "folder; pass the path of a folder for out_dir")
    (out / "cams").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    model.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0,
                        collate_fn=collate_by_size)
    for groups in tqdm(loader, desc="infer", unit="batch", disable=not progress):
        for batch in groups:
            images = batch["image"].to(device)
            cams = multiscale_cams(model, images, scales, flip, amp)
            for ident, cam, label in zip(batch["id"], cams, batch["label"], strict=True):
                maps, keys = normalise_present(cam, label.to(cam.device))
                save_cam_npz(out / "cams" / f"{ident}.npz", maps.astype(np.float16), keys)
                pred = cams_to_prediction(maps, keys, png_threshold)
                write_label_png(out / "masks" / f"{ident}.png",
                                np.asarray(pred, dtype=np.uint8))
    return out


def collate_by_size(samples: list[dict]) -> list[dict]:
    """Collate samples into one batch per image size (in order of first appearance), so
    that images of different sizes never meet in :func:`torch.stack`."""
    groups: dict[tuple, list[dict]] = {}
    for sample in samples:
        groups.setdefault(tuple(sample["image"].shape), []).append(sample)
    return [default_collate(group) for group in groups.values()]


@torch.no_grad()
def sample_cams(model, samples: list[dict], scales=(0.5, 1.0, 1.5, 2.0), flip: bool = True,
                device="cpu") -> list[Tensor]:
    """Seeds of a few samples (evaluation transform) for figures: ``[C, H, W]`` per sample,
    the classes of its labels normalised to [0, 1] as in :func:`infer`, others 0."""
    device = as_device(device)
    model.eval()
    result = []
    for sample in samples:
        cams = multiscale_cams(model, sample["image"][None].to(device), scales, flip)[0].cpu()
        maps, keys = normalise_present(cams, sample["label"])
        full = torch.zeros_like(cams)
        full[torch.as_tensor(keys, dtype=torch.long)] = torch.from_numpy(maps)
        result.append(full)
    return result


def seeds_at(samples: list[dict], cams: list[Tensor], bg_threshold: float) -> list[Tensor]:
    """Pseudo masks ``[H, W]`` of :func:`sample_cams`' output at a background threshold,
    from the classes of each sample's labels (as the scored seeds)."""
    masks = []
    for sample, cam in zip(samples, cams, strict=True):
        keys = torch.nonzero(sample["label"]).flatten()
        masks.append(cams_to_prediction(cam[keys], keys, bg_threshold))
    return masks
