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
# # Pseudo labels and prototypes
#
# PPC describes every class by one **prototype**: a unit vector in the embedding space of
# the projection head $f_\text{proj}$. This chapter computes, on one batch of the
# reference run, the three steps that lead to it:
#
# 1. **normalised CAMs**: ReLU, then each class map of each image min-max scaled to [0, 1]
#    (`ppc.normalize_cams`);
# 2. **pseudo labels**: per pixel, the argmax over a constant background score and the CAMs
#    of the classes in the image's labels (`ppc.pseudo_labels`);
# 3. **prototypes**: per class, the $K$ pixels of the *whole batch* with the highest
#    confidence for that class; their embeddings averaged with the confidences as weights,
#    then L2-normalised (`ppc.estimate_prototypes`). For the background the confidence is
#    $1 - \max_c \text{CAM}_c$ over the image's classes.
#
# ```{admonition} Data and hardware
# Synthetic benchmark, small backbone, 2-core CPU. Not VOC numbers.
# ```

# %% tags=["parameters"]
run_dir = "../results/reference"
batch_size = 8
top_k = 32
device = "cpu"

# %%
import matplotlib.pyplot as plt
import torch

import ppc
from ppc.contrast import similarity_maps
from ppc.experiment import reference_batch
from ppc.plotting import mask_to_rgb, show_maps, to_rgb
from ppc.prototypes import selection_maps

torch.set_num_threads(2)
config, model, batch = reference_batch(run_dir, batch_size, device)  # the stored run
names = ["background", *config.synthetic.names]

# %% [markdown]
# One batch of the benchmark and the network's outputs: CAM logits and projections on the
# 16x16 feature grid of the 64 px images.

# %%
with torch.no_grad():
    out = model(batch["image"].to(device))
print({k: tuple(v.shape) for k, v in out.items()})

# %% [markdown]
# ## Normalised CAMs and pseudo labels

# %%
norm = ppc.normalize_cams(out["logits"])
labels = ppc.pseudo_labels(norm, batch["label"], bg_threshold=config.ppc.bg_threshold)
fig, axes = plt.subplots(3, batch_size, figsize=(1.6 * batch_size, 5))
for j in range(batch_size):
    first = int(torch.nonzero(batch["label"][j])[0])
    axes[0, j].imshow(to_rgb(batch["image"][j]))
    axes[0, j].set_title(names[first + 1], fontsize=8)
    axes[1, j].imshow(norm[j, first], cmap="jet", vmin=0, vmax=1)
    axes[2, j].imshow(mask_to_rgb(labels[j]), interpolation="nearest")
for ax in axes.flat:
    ax.axis("off")
for row, text in enumerate(["image", "normalised CAM", "pseudo label"]):
    axes[row, 0].text(-0.1, 0.5, text, transform=axes[row, 0].transAxes, rotation=90,
                      ha="right", va="center", fontsize=8)
plt.show()

# %% [markdown]
# ## Top-K pixels and prototypes
#
# The prototypes of the batch, with the official defaults: $K = 32$, the raw projections
# averaged (the paper's formula averages the normalised ones: `prototype_embeddings =
# "normalized"`), and every class ranked in every image (`prototype_classes = "all"`).
#
# The background needs care. Its confidence $1 - \max_c \text{CAM}_c$ is exactly 1 at
# every pixel where all the image's classes score $\le 0$, since the CAMs are ReLU'd: a
# large tie, which the top-K then breaks by position (lower pixel index first; the
# official code's constant channel leaves the order to `torch.topk`). Ranked on the CAMs
# normalised *without* the ReLU, those pixels keep their order (the most negative scores
# first); `ppc.PixelToPrototypeContrast` does that.

# %%
tied = ppc.estimate_prototypes(out["proj"], norm, batch["label"], top_k)
background = ppc.background_confidence(ppc.normalize_cams(out["logits"], relu=False),
                                       batch["label"])
protos = ppc.estimate_prototypes(out["proj"], norm, batch["label"], top_k,
                                 background=background)
print("prototypes:", tuple(protos.vectors.shape), "valid:", protos.valid.tolist())
print(f"pixels with background confidence exactly 1: with the ReLU "
      f"{int((ppc.background_confidence(norm, batch['label']) == 1).sum())}, without "
      f"{int((background == 1).sum())} (of {labels.numel()})")

# %% [markdown]
# Where the top-K pixels of each class lie (summed over the batch's images; brighter = a
# higher CAM weight). Left: the background's pixels when the tie at 1 is broken by
# position (the first image's top rows); then the module's background and the classes.

# %%
shape = tuple(labels.shape)
maps = [selection_maps(tied, shape)[0].sum(dim=0), *selection_maps(protos, shape).sum(dim=1)]
fig = show_maps(maps, ["background (ties)", *names], cmap="magma", size=1.5)
plt.show()

# %% [markdown]
# How similar every pixel of the first image is to each prototype ($v_i \cdot p_c$).
# $f_\text{proj}$ ends in a ReLU, so every embedding is non-negative and every cosine is
# $\ge 0$; in this run most are high (range and median printed below), so the colour
# scale spans only their range. The loss divides them by $\tau$ = 0.1, which turns
# differences of a few hundredths into clear differences of probability. The last line
# says how often the nearest prototype is the pixel's pseudo label.

# %%
sims = similarity_maps(out["proj"], protos.vectors)[0]
print(f"v_i . p_c in the first image: {sims.min():.2f} to {sims.max():.2f} "
      f"(median {sims.median():.2f})")
print(f"nearest prototype = pseudo label at {(sims.argmax(0) == labels[0]).float().mean():.0%}"
      " of its pixels")
fig = show_maps(sims, names, cmap="viridis", vmin=float(sims.min()), vmax=float(sims.max()),
                size=1.5)
plt.show()

# %% [markdown]
# The paper's averaging of normalised embeddings and the official code's averaging of
# raw ones give close prototypes, not always equal ones; the cosine between the two, per
# class (1.0 where they agree to four decimals):

# %%
paper = ppc.estimate_prototypes(out["proj"], norm, batch["label"], top_k,
                                normalize_embeddings=True, background=background)
cosine = (paper.vectors * protos.vectors).sum(dim=1)
{name: round(float(c), 4) for name, c in zip(names, cosine)}
