# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     formats: ipynb,py:percent
#     notebook_metadata_filter: kernelspec,-all
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Full training: a base network with PPC, its seeds, their mIoU
#
# ```{admonition} What this page ran on
# :class: warning
# In this book, this notebook ran on the **synthetic benchmark written in the PASCAL VOC
# directory layout** (`dataset = "synthetic"`; the printed configuration says `"voc"`,
# because the written copy is read by the VOC reader), with the small backbone on a 2-core
# CPU. It goes through the same VOC reader as the real data, but **its numbers are not
# VOC numbers**. Pointed at a real VOC 2012 root (`dataset = "voc"`, `voc_root = ...`)
# with `preset = "voc-resnet38"` on a GPU, it runs the official code's recipe (in bf16
# autocast on CUDA by default; `extra = {"amp": "off"}` for float32).
# ```
#
# Run it with your own parameters, e.g.
#
# ```bash
# .venv/bin/python -m ppc.notebooks 05_training -p dataset voc \
#     -p voc_root /data/VOCdevkit/VOC2012 -p preset voc-resnet38 \
#     -p weights /data/weights/resnet38d.pth -p device cuda \
#     -p out_dir ../runs/voc_seam_ppc -o my_run.ipynb   # out_dir: not the book's stored run
# ```

# %% tags=["parameters"]
dataset = "synthetic"  # "synthetic" (written in the VOC layout at voc_root) or "voc"
voc_root = "../results/synthetic_voc"  # the VOC2012 folder (written here for "synthetic")
preset = "synthetic"  # "synthetic" (small net, CPU) or "voc-resnet38" (the paper's recipe)
base = "seam"  # "cam", "seam" or "full" (fully supervised upper bound)
backbone = None  # None: the preset's ("small" / "resnet38"); or resnet50, resnet101
weights = None  # backbone weights: a local .pth file (ResNet-38: converted from MXNet)
use_ppc = True
epochs = None  # None: the preset's length (300 steps / 8 epochs); or epochs of train_split
batch_size = None  # None: the preset's (32 / 8)
device = "auto"
seed = 0
out_dir = "../results/training"
extra = {}  # any other RunConfig field, flat: {"ppc__top_k": 16, "view__scale": 0.5}
show_figures = True  # False: numbers only (the ablation runner's small stored notebooks)

# %%
import json
import math
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from ppc.data import VOCSegmentation, ensure_voc
from ppc.experiment import check_training_parameters, run, training_config
from ppc.infer import sample_cams, seeds_at
from ppc.plotting import plot_curves, show_samples
from ppc.train import build_dataset, load_trained, resolve_device

check_training_parameters(dataset, preset)
if dataset == "voc" and not (voc_root and (Path(voc_root) / "JPEGImages").is_dir()):
    raise ValueError(f"voc_root {voc_root!r} is not a VOC2012 folder (no JPEGImages/): set "
                     "voc_root to .../VOCdevkit/VOC2012")

# %% [markdown]
# ## Configuration
#
# One `RunConfig` holds the whole run; the parameters above fill it in.

# %%
config = training_config(dataset, voc_root, preset, base, backbone, weights, use_ppc,
                         batch_size, device, seed, out_dir, extra)
if dataset == "synthetic":  # written once; rewritten where it holds another benchmark
    ensure_voc(voc_root, config.synthetic, seed=config.data_seed)
train_images = len(VOCSegmentation(voc_root, config.train_split))
if epochs is not None:
    config = config.replace(steps=max(1, math.floor(epochs * train_images / config.batch_size)))
print(f"{train_images} training images ({config.train_split}), {config.steps} steps of "
      f"{config.batch_size} = {config.steps * config.batch_size / train_images:.1f} epochs")
print(json.dumps({k: v for k, v in config.to_dict().items()
                  if k not in ("synthetic", "ppc")}, indent=1))

# %% [markdown]
# ## Train, infer, evaluate
#
# `run` trains (or resumes, or reuses a finished run with the same configuration), infers
# multi-scale + flip seeds on `eval_split` (VOC *train*, as the paper) and sweeps the
# background threshold.

# %%
summary = run(config, progress=False)
print(f"best mIoU of the seeds on '{summary['eval_split']}': {100 * summary['best_miou']:.1f} "
      f"at background threshold {summary['best_threshold']:.2f} "
      f"({summary['num_eval_images']} images)")

# %% [markdown]
# ## Loss curves
#
# (This and the next figures are skipped when `show_figures` is False.)

# %%
rows = [json.loads(line) for line in (Path(out_dir) / "metrics.jsonl").read_text().splitlines()]
metrics = pd.DataFrame(rows)
terms = [c for c in metrics.columns if c not in ("step", "epoch", "lr", "time", "total")
         and not c.endswith("ppc_total")]
if show_figures:
    long = metrics.melt(id_vars="step", value_vars=terms, var_name="term", value_name="loss")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3))
    plot_curves(long, "step", "loss", hue="term", title="loss terms", ax=axes[0])
    plot_curves(metrics, "step", "total", title="total loss", ax=axes[1])
    plt.show()

# %% [markdown]
# ## Background threshold

# %%
curve = pd.read_csv(Path(out_dir) / "curve.csv")
curve["mIoU (%)"] = 100 * curve["miou"]
if show_figures:
    fig = plot_curves(curve, "threshold", "mIoU (%)", title=f"seeds on '{config.eval_split}'")
    plt.show()

# %% [markdown]
# ## Some seeds

# %%
if show_figures:
    device_ = resolve_device(config)
    _, model = load_trained(out_dir, device_)
    eval_set = build_dataset(config, config.eval_split, train=False)
    samples = [eval_set[i] for i in range(6)]
    cams = sample_cams(model, samples, config.scales, config.flip, device_)
    pseudo = seeds_at(samples, cams, summary["best_threshold"])
    fig = show_samples(samples, eval_set.class_names, cams=cams, pseudo=pseudo)
    plt.show()
