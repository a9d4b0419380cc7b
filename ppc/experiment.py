"""One experiment end to end: train, infer the seeds on the evaluation split, score them.

``run(config)`` leaves in ``config.out_dir``: the training outputs of :mod:`ppc.train`,
``seeds/cams/*.npz`` and ``seeds/masks/*.png`` from :mod:`ppc.infer`, ``curve.csv`` (mIoU
per background threshold), ``per_image.csv`` and ``summary.json`` (best threshold and
mIoU, timings, versions). A finished run is not recomputed.
"""

from __future__ import annotations

import json
import math
import platform
import subprocess
import time
from pathlib import Path

import torch

from .config import RunConfig
from .evaluate import evaluate_cam_dir, load_cam_npz, per_image_report
from .infer import infer
from .train import build_dataset, load_trained, resolve_device, train


def _git_sha() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def evaluate_run(config: RunConfig, out: Path) -> dict:
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


def run(config: RunConfig, *, progress: bool = True, force: bool = False) -> dict:
    """Train, infer and evaluate; returns (and writes) ``summary.json``."""
    out = Path(config.out_dir)
    summary_path = out / "summary.json"
    if summary_path.exists() and not force:
        summary = json.loads(summary_path.read_text())
        if RunConfig(**summary.get("config", {})).identity() == config.identity():
            return summary
    started = time.perf_counter()
    train(config, progress=progress)
    trained = time.perf_counter()
    device = resolve_device(config)
    _, model = load_trained(out, device)
    dataset = build_dataset(config, config.eval_split, train=False)
    infer(model, dataset, out / "seeds", scales=config.scales, flip=config.flip,
          png_threshold=config.png_threshold, batch_size=config.infer_batch_size,
          device=device, amp=config.amp == "bf16" or (config.amp == "auto"
                                                     and device.type == "cuda"),
          progress=progress)
    inferred = time.perf_counter()
    summary = evaluate_run(config, out)
    summary.update({
        "config": config.to_dict(),
        "seconds": {"train": round(trained - started, 1), "infer": round(inferred - trained, 1),
                    "evaluate": round(time.perf_counter() - inferred, 1)},
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "threads": torch.get_num_threads(),
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
        "git": _git_sha(),
    })
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    return json.loads(summary_path.read_text())


def reference_batch(run_dir: str | Path, batch_size: int = 8, device="cpu", split="train"):
    """(config, model, batch) for the book's chapters: the stored synthetic reference run
    (reused, or trained if missing), and the first ``batch_size`` images of ``split`` with
    the evaluation transform, collated."""
    from torch.utils.data import default_collate

    from .data.synthetic import SyntheticSegmentation
    from .data.transforms import eval_transform

    config = RunConfig.preset("synthetic", out_dir=str(run_dir))
    run(config, progress=False)
    _, model = load_trained(run_dir, device)
    data = SyntheticSegmentation(config.synthetic, split, config.data_seed,
                                 transform=eval_transform(config.augment))
    return config, model, default_collate([data[i] for i in range(batch_size)])
