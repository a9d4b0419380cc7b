"""One experiment end to end: train, infer the seeds on the evaluation split, score them.

``run(config)`` leaves in ``config.out_dir``: the training outputs of :mod:`ppc.train`,
``seeds/cams/*.npz`` and ``seeds/masks/*.png`` from :mod:`ppc.infer`, ``curve.csv`` (mIoU
per background threshold), ``per_image.csv`` and ``summary.json`` (best threshold and
mIoU, timings, versions). A finished run is not recomputed.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ._checks import as_device, is_int, read_json
from .config import RunConfig
from .evaluate import (
    cams_to_prediction,
    centroid_offsets,
    evaluate_cam_dir,
    load_cam_npz,
    per_image_report,
    region_coverage,
    weight_by_region,
)
from .infer import infer
from .machine import describe_machine
from .train import (
    build_dataset,
    load_trained,
    require_same_weights,
    resolve_device,
    train,
    weights_digest,
)


def _git_sha() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def evaluate_run(config: RunConfig, out: str | Path) -> dict:
    """Score the seeds in ``out/seeds`` (a run of ``config``) on ``config.eval_split``;
    writes ``curve.csv`` and ``per_image.csv`` there and returns the summary's scores."""
    out = Path(out)
    stored = out / "config.json"
    if stored.is_file() and config.changed_fields(RunConfig.load(stored)):
        raise ValueError(f"{out} holds a run of another config than the one passed (its "
                         f"seeds belong to other data or another model); pass "
                         f"RunConfig.load({str(stored)!r})")
    dataset = build_dataset(config, config.eval_split, train=False)
    curve = evaluate_cam_dir(out / "seeds" / "cams", dataset)
    curve.to_frame().to_csv(out / "curve.csv", index=False)
    samples = []
    for index, ident in enumerate(dataset.ids):
        cams, keys = load_cam_npz(out / "seeds" / "cams" / f"{ident}.npz")
        samples.append((cams, keys, dataset[index]["mask"]))
    report = per_image_report(samples, len(dataset.class_names) + 1, curve.best_threshold,
                              dataset.ids)
    report.to_csv(out / "per_image.csv", index=False)
    return {"best_threshold": float(curve.best_threshold), "best_miou": float(curve.best_miou),
            "iou_at_best": [None if math.isnan(v) else float(v) for v in curve.iou[
                int(curve.thresholds.tolist().index(curve.best_threshold))]],
            "eval_split": config.eval_split, "num_eval_images": len(dataset.ids),
            "skipped": int(curve.skipped)}


def check_training_parameters(dataset: str, preset: str) -> None:
    """The training notebook's choices of ``dataset`` and ``preset``, or a ``ValueError``
    naming the allowed values (the notebook calls it first, to stop before any work)."""
    if dataset not in ("synthetic", "voc"):
        raise ValueError(f"dataset must be 'synthetic' or 'voc', got {dataset!r}")
    if preset not in ("synthetic", "voc-resnet38"):
        raise ValueError(f"preset must be 'synthetic' or 'voc-resnet38', got {preset!r}")


def training_config(dataset: str = "synthetic", voc_root: str | Path = "results/synthetic_voc",
                    preset: str = "synthetic", base: str = "seam", backbone: str | None = None,
                    weights: str | None = None, use_ppc: bool = True,
                    batch_size: int | None = None, device: str = "auto", seed: int = 0,
                    out_dir: str | Path = "results/training", extra: dict | None = None
                    ) -> RunConfig:
    """The :class:`RunConfig` of the training notebook's parameters (``05_training``): the
    preset, read from the VOC-layout folder ``voc_root``, with the named fields and the
    flat ``extra`` fields (``{"ppc__top_k": 16}``) changed. ``epochs`` is applied by the
    notebook, which knows the split's size."""
    check_training_parameters(dataset, preset)
    changes = dict(dataset="voc", data_root=str(voc_root), base=base, use_ppc=use_ppc,
                   seed=seed, device=device, out_dir=str(out_dir))
    for name, value in (("backbone", backbone), ("weights", weights),
                        ("batch_size", batch_size)):
        if value is not None:
            changes[name] = str(value) if name == "weights" else value
    twice = sorted(set(extra or {}) & set(changes))
    if twice:
        given = {"data_root": "voc_root", "dataset": "dataset"}
        raise ValueError(f"extra sets {twice}, which the notebook's own parameters set "
                         f"({', '.join(given.get(k, k) for k in twice)}); pass them as "
                         "parameters, not in extra")
    return RunConfig.from_flat(RunConfig.preset(preset, data_root=str(voc_root)), **changes,
                               **(extra or {}))


def write_seeds(config: RunConfig, model, split: str, out_dir: str | Path, device,
                progress: bool = True) -> Path:
    """:func:`ppc.infer.infer` of ``split`` with the run's inference settings (scales,
    flip, mask threshold, batch size, and bf16 where the run trained with it)."""
    device = as_device(device)
    return infer(model, build_dataset(config, split, train=False), out_dir,
                 scales=config.scales, flip=config.flip, png_threshold=config.png_threshold,
                 batch_size=config.infer_batch_size, device=device,
                 amp=config.bf16_autocast(device), progress=progress)


def run(config: RunConfig, *, progress: bool = True, force: bool = False) -> dict:
    """Train, infer and evaluate; returns (and writes) ``summary.json``. Under
    ``torchrun`` every process trains and rank 0 alone infers and evaluates (the others
    return an empty dict)."""
    out = Path(config.out_dir)
    summary_path = out / "summary.json"
    rank = int(os.environ.get("RANK", "0"))
    digest = weights_digest(config)
    if summary_path.exists() and not force:
        summary = read_json(summary_path)
        changed = config.changed_fields(RunConfig.from_dict(summary.get("config", {}),
                                                            summary_path))
        if not changed:
            trained_from = summary.get("weights_sha256")
            require_same_weights(trained_from, digest, config, f"{out} holds a run that",
                                 "pass a new out_dir, or force=True (--force) to retrain "
                                 "from the file as it is")
            if trained_from is None and digest is not None and rank == 0:
                print(f"note: {out} is reused without checking that {config.weights} is the "
                      "file it was trained from (its summary predates that check)")
            return summary if rank == 0 else {}
        raise ValueError(
            f"{out} holds a finished run of another configuration (differs in {changed}); "
            "pass a new out_dir, or force=True (--force) to replace it")
    if config.data_root is not None:  # a broken evaluation split fails now, not after training
        build_dataset(config, config.eval_split, train=False)
    started = time.perf_counter()
    # force: train from the start (a finished run's checkpoint would otherwise be resumed)
    train(config.replace(resume=False) if force else config, progress=progress)
    if rank != 0:
        return {}
    trained = time.perf_counter()
    device = resolve_device(config)
    _, model = load_trained(out, device)
    write_seeds(config, model, config.eval_split, out / "seeds", device, progress=progress)
    inferred = time.perf_counter()
    summary = evaluate_run(config, out)
    summary.update({
        "config": config.to_dict(),
        "seconds": {"train": round(trained - started, 1), "infer": round(inferred - trained, 1),
                    "evaluate": round(time.perf_counter() - inferred, 1)},
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "threads": torch.get_num_threads(),
        "machine": describe_machine(device),
        "versions": {"torch": torch.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
        "git": _git_sha(),
    })
    if digest is not None:
        summary["weights_sha256"] = digest
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    return read_json(summary_path)


def reference_batch(run_dir: str | Path, batch_size: int = 8, device="cpu", split="train"):
    """(config, model, batch) for the book's chapters: the stored synthetic reference run
    (reused, or trained if missing), and the first ``batch_size`` images of ``split`` with
    the evaluation transform, collated."""
    from torch.utils.data import default_collate

    from .data.synthetic import SyntheticSegmentation
    from .data.transforms import eval_transform

    config = RunConfig.preset("synthetic", out_dir=str(run_dir))
    available = getattr(config.synthetic, f"num_{split}", None)
    if available is None:
        raise ValueError(f"split must be 'train_aug', 'train' or 'val', got {split!r}")
    if not is_int(batch_size) or not 1 <= batch_size <= available:
        raise ValueError(f"batch_size must be an int in [1, {available}] (the images of split "
                         f"{split!r}), got {batch_size!r}")
    run(config, progress=False)
    _, model = load_trained(run_dir, device)
    data = SyntheticSegmentation(config.synthetic, split, config.data_seed,
                                 transform=eval_transform(config.augment))
    return config, model, default_collate([data[i] for i in range(batch_size)])


def _benchmark_of(config: RunConfig, split: str, caller: str, transform=None):
    """The synthetic benchmark of a run's config (a :class:`SyntheticSegmentation` of
    ``split``), checked against the VOC-layout copy the run read where it read one."""
    from .data.synthetic import SyntheticSegmentation

    data = SyntheticSegmentation(config.synthetic, split, config.data_seed, transform)
    if config.dataset == "voc":  # the benchmark written in the VOC layout: same masks?
        from .data.voc import VOCSegmentation

        written = VOCSegmentation(config.data_root, split)
        if written.ids != data.ids or any(
                not np.array_equal(written[i]["mask"].numpy(), data.data.masks[i])
                for i in range(len(data.ids))):
            raise ValueError(f"{config.data_root} does not hold the synthetic benchmark of "
                             f"the run's config (synthetic, data_seed={config.data_seed}): "
                             f"{caller} needs the region maps of the same images")
    return data


def seed_coverage(run_dir: str | Path, bg_threshold: float | None = None) -> dict:
    """:func:`ppc.evaluate.region_coverage` of a finished synthetic run's seeds (the CAM
    files under ``seeds/cams``) on its evaluation split, at ``bg_threshold`` (default: the
    run's best), and :func:`ppc.evaluate.centroid_offsets` of its CAMs. Tells whether the
    seeds cover the discriminative parts and miss the bodies (the failure WSSS methods
    address), and whether the CAMs are shifted from their objects in one direction."""
    run_dir = Path(run_dir)
    summary_path = run_dir / "summary.json"
    if not summary_path.is_file():
        raise FileNotFoundError(f"{summary_path} not found: seed_coverage needs a finished "
                                "run folder (ppc.experiment.run)")
    summary = read_json(summary_path)
    config = RunConfig.from_dict(summary.get("config"), summary_path)
    if bg_threshold is None:
        bg_threshold = summary["best_threshold"]
    data = _benchmark_of(config, config.eval_split, "seed_coverage").data
    cams = [load_cam_npz(run_dir / "seeds" / "cams" / f"{ident}.npz") for ident in data.ids]
    coverage = region_coverage(
        (cams_to_prediction(c, k, bg_threshold), mask, regions)
        for (c, k), mask, regions in zip(cams, data.masks, data.regions, strict=True))
    offsets = centroid_offsets((c, k, mask) for (c, k), mask in zip(cams, data.masks,
                                                                    strict=True))
    return {"bg_threshold": float(bg_threshold), **coverage, **offsets}


def intra_weight_shares(run_dir: str | Path, *, images: int = 128, split: str = "train",
                        seed: int = 0, device="cpu") -> pd.DataFrame:
    """Where the intra-view term's averagings of the per-pixel losses put their weight, on
    a finished synthetic run's pseudo labels (:func:`ppc.evaluate.weight_by_region`).

    The run's model labels the first ``images`` images of ``split`` (all of them where it
    holds fewer) in batches of its training ``batch_size``: one view, full images, the
    CAMs its PPC term reads, the prototypes of each batch. Three weightings of the batch's
    per-pixel losses follow:

    * ``mean over pixels``: the intra-view term without pixel sampling;
    * ``class-balanced, every pixel``: each class's mean, averaged over the classes
      (``sampling_random_fraction = 1``, ``sampling_hard_fraction = 0``);
    * ``official sampling``: hard pixel sampling with the official fractions (the
      defaults of :class:`ppc.PPCConfig`, whatever the run used), one draw from a
      generator seeded ``seed``.

    Returns a frame with one row per weighting and the share of its weight in each of
    :data:`ppc.evaluate.WEIGHT_REGIONS` (the first row's shares are the pixels' shares
    where every batch is full), and the number of images in ``frame.attrs["images"]``.
    """
    from torch.utils.data import default_collate

    from .contrast import flatten_labels, hard_pixel_sampling, prototype_logits
    from .data.transforms import eval_transform
    from .loss import PixelToPrototypeContrast, PPCConfig

    if images < 1:
        raise ValueError(f"images must be at least 1, got {images}")
    config, model = load_trained(run_dir, device)
    if config.base == "full":
        raise ValueError(f"{run_dir} is a fully supervised run: it has no pseudo labels")
    data = _benchmark_of(config, split, "intra_weight_shares", eval_transform(config.augment))
    count, size = min(images, len(data)), config.batch_size
    contrast = PixelToPrototypeContrast(config.ppc)
    generator = torch.Generator().manual_seed(seed)
    official = PPCConfig()
    samples = {"mean over pixels": [], "class-balanced, every pixel": [],
               "official sampling": []}
    for first in range(0, count, size):
        last = min(first + size, count)
        batch = default_collate([data[i] for i in range(first, last)])
        with torch.no_grad():
            out = model(batch["image"].to(device))
            cams = out["cam_rv"][:, 1:] if config.base == "seam" else out["logits"]
            state = contrast.view_state(out["proj"], cams, batch["label"].to(device))
            logits = prototype_logits(out["proj"], state.prototypes.vectors, config.ppc.tau)
        targets, keep = flatten_labels(state.labels, None)
        positive = logits.gather(1, targets[:, None])[:, 0]
        weights = (
            keep / keep.sum(),
            hard_pixel_sampling(positive, targets, keep, logits.shape[1], random_fraction=1,
                                hard_fraction=0),
            hard_pixel_sampling(positive, targets, keep, logits.shape[1],
                                random_fraction=official.sampling_random_fraction,
                                hard_fraction=official.sampling_hard_fraction,
                                hard_upper=official.sampling_hard_upper, generator=generator),
        )
        truth = (data.data.masks[first:last], data.data.regions[first:last])
        for name, weight in zip(samples, weights, strict=True):
            samples[name].append((weight.view(state.labels.shape).cpu(),
                                  state.labels.cpu(), *truth))
    frame = pd.DataFrame({name: weight_by_region(batch) for name, batch in samples.items()}).T
    frame.attrs["images"] = count
    return frame


def _require_run_folder(run_dir) -> None:
    if not (Path(run_dir) / "config.json").is_file():
        raise ValueError(f"{run_dir} is not a run folder (it has no config.json); pass the "
                         "out_dir of a run")


def coverage(run_dir: str | Path) -> dict | None:
    """The run's ``coverage.json`` (:func:`seed_coverage`), measured and written the first
    time from its seed files; None where neither exists (seeds are not kept in git, the
    small JSON is)."""
    _require_run_folder(run_dir)
    path = Path(run_dir) / "coverage.json"
    if path.exists():
        return read_json(path)
    if not (Path(run_dir) / "seeds" / "cams").is_dir():
        return None
    result = seed_coverage(run_dir)
    path.write_text(json.dumps(result, indent=1) + "\n")
    return result


def intra_weights(run_dir: str | Path) -> dict | None:
    """The run's ``intra_weights.json``: :func:`intra_weight_shares` of the train split's
    first 128 images (or all it has), seed 0, as ``{"images", "split", "seed", "shares":
    {weighting: {region: share}}}``, measured and written the first time from the run's
    ``model.pt``; None where neither exists."""
    _require_run_folder(run_dir)
    path = Path(run_dir) / "intra_weights.json"
    if path.exists():
        return read_json(path)
    if not (Path(run_dir) / "model.pt").is_file():
        return None
    settings = {"split": "train", "seed": 0}
    shares = intra_weight_shares(run_dir, images=128, **settings)
    result = {"images": shares.attrs["images"], **settings,
              "shares": {name: row.to_dict() for name, row in shares.iterrows()}}
    path.write_text(json.dumps(result, indent=1) + "\n")
    return result
