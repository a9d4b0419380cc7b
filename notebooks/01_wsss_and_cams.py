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
# # Weakly supervised segmentation and class activation maps
#
# A segmentation network normally learns from pixel masks. In **weakly supervised semantic
# segmentation** (WSSS) it learns from *image-level labels* only: the list of classes
# present in each image. The standard route trains a classifier, reads its **class
# activation maps** (CAMs) as localisation maps, and thresholds them into *pseudo masks*
# (seeds) that later train an ordinary segmentation network.
#
# CAMs have a well-known flaw: a classifier needs only the most discriminative part of an
# object to recognise it, so its CAM lights up that part and little else. This chapter
# shows CAMs on the book's **synthetic benchmark**, which was built to have that flaw, and
# measures at the end how far it does.
#
# ```{admonition} Data and hardware
# Everything on this page runs on the synthetic benchmark of `ppc.data.synthetic` on a
# 2-core CPU. None of these numbers is a PASCAL VOC number.
# ```

# %% tags=["parameters"]
run_dir = "../results/reference"  # a stored run: reused if present, trained (about 2 min) if not
num_images = 8
device = "cpu"

# %%
import matplotlib.pyplot as plt
import pandas as pd
import torch

from ppc.config import RunConfig
from ppc.data import SyntheticConfig, SyntheticSegmentation, eval_transform
from ppc.experiment import coverage, run
from ppc.infer import sample_cams, seeds_at
from ppc.plotting import plot_curves, show_samples
from ppc.train import load_trained

torch.set_num_threads(2)

# %% [markdown]
# ## The synthetic benchmark
#
# Each object is an ellipse (its *body*) whose colour is shared by a group of classes,
# with a small disc (its *part*) whose colour belongs to its class alone. The background
# holds clutter, and some clutter blobs take a body colour, so a body colour alone does not
# say that an object is there. An image-level classifier therefore needs the part; the
# body is what the segmentation should recover. The knobs live in one config:

# %%
bench = SyntheticConfig()
bench

# %%
eval_set = SyntheticSegmentation(bench, "train", seed=0, transform=eval_transform("synthetic"))
samples = [eval_set[i] for i in range(min(num_images, len(eval_set)))]
print(f"{len(eval_set)} images with pixel masks in the 'train' split, "
      f"classes: {', '.join(bench.names)}")

# %% [markdown]
# ## A CAM network trained from image labels
#
# The reference run trains the small backbone on the image labels of the benchmark's
# `train_aug` split (the plain CAM base with PPC on, two views: `RunConfig`'s defaults;
# chapters 2-4 use it too, and chapter 5 trains SEAM). `run` reuses the stored
# run when its configuration matches, so this page does not retrain.

# %%
config = RunConfig.preset("synthetic", out_dir=run_dir)
summary = run(config, progress=False)
print(f"best-threshold mIoU of the seeds on 'train': {100 * summary['best_miou']:.1f} "
      f"(background threshold {summary['best_threshold']:.2f})")

# %% [markdown]
# For a few images: the image (title: its labels), the ground truth (used for evaluation
# only), the CAM of its first labelled class, and the pseudo mask at the best background
# threshold.

# %%
_, model = load_trained(run_dir, device)
cams = sample_cams(model, samples, config.scales, config.flip, device)
pseudo = seeds_at(samples, cams, summary["best_threshold"])
fig = show_samples(samples, bench.names, cams=cams, pseudo=pseudo)

# %% [markdown]
# ## Choosing the background threshold
#
# A seed is the argmax over a constant background score and the normalised CAMs of the
# image's classes. The score is swept and the best mIoU reported, as in the official
# code; it sweeps 0.00-0.59, this book 0.00-0.95.

# %%
curve = pd.read_csv(f"{run_dir}/curve.csv")
curve["mIoU (%)"] = 100 * curve["miou"]
fig = plot_curves(curve, "threshold", "mIoU (%)", title="seeds on the synthetic 'train' split")
plt.show()

# %% [markdown]
# Per class at the best threshold (index 0 is the background):

# %%
pd.DataFrame({"class": ["background", *bench.names],
              "IoU (%)": [None if v is None else round(100 * v, 1)
                          for v in summary["iou_at_best"]]})

# %% [markdown]
# ## What the seeds get right and wrong
#
# The benchmark's generator knows, for every object pixel, whether it belongs to the
# discriminative *part* or to the *body*. `ppc.experiment.coverage` measures the seeds of
# the run at its best threshold: the share of part pixels and of body pixels labelled with
# their class, the precision of the foreground labels, the share of background pixels
# marked as a class, and how far each CAM's centroid sits from its object's centroid
# (pixels; negative y: above the object). It is stored beside the run (`coverage.json`).

# %%
found = coverage(run_dir)
pd.DataFrame({
    "measure": ["part recall (%)", "body recall (%)", "precision (%)",
                "background marked (%)", "CAM offset y (px)", "CAM offset x (px)"],
    "value": [round(100 * found[k], 1) for k in ("part_recall", "body_recall", "precision",
                                                  "background_false_positive")]
    + [f"{found[k]:+.1f} ± {found[k + '_sem']:.1f}" for k in ("offset_y", "offset_x")],
})

# %% [markdown]
# Read against the design, this is a finding about the benchmark, not only about CAMs:
#
# * the seeds miss most of every object, as intended, **but part recall is not higher than
#   body recall**: the CAMs do not single out the discriminative part, so the benchmark
#   does not show the classic "part only" failure it was designed for;
# * about a quarter of the background pixels are marked as some class, and most foreground
#   labels are wrong (precision): at the best threshold the seeds are *noisy* as much as
#   *partial*;
# * the CAMs sit **several pixels above** their objects (a horizontal offset, where a
#   network has one, cancels in the flip-averaged CAMs of inference). A network trained
#   from scratch on image labels is free to put its evidence beside an object, since the
#   classification loss never sees where; an ImageNet-pretrained network brings local
#   features with it.
#
# {doc}`11_benchmark_design` traces most of the spill and the offset to the small
# backbone's receptive field (its dilated last blocks see the whole image), tries fourteen
# variants of the benchmark against criteria fixed beforehand, and explains why none met
# them all, so this benchmark stays as it is.
#
# The ablation pages report the same measures for every run, so whether PPC moves the
# seeds onto the bodies can be read there, beside the mIoU.
