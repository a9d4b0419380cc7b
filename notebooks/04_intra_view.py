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
# # Intra-view contrast: semi-hard prototype mining and hard pixel sampling
#
# Within one view, PPC applies $F(v_i; y_i; P)$ with two refinements, as the official code
# implements them:
#
# * **semi-hard prototype mining**: per pixel, the prototypes are ranked by similarity;
#   the denominator keeps the positive and the ranks 3..12 of 21, counted from 0 (the
#   ~60% hardest, minus
#   the very hardest, which are likely wrong labels): `mining_skip_fraction = 3/21`,
#   `mining_keep_fraction = 10/21`;
# * **hard pixel sampling**: per class with $L$ pixels, $\lfloor L/2 \rfloor$ pixels at
#   random plus the pixels at ascending-similarity ranks
#   $\lfloor 0.6L \rfloor - \lfloor L/2 \rfloor \ldots \lfloor 0.6L \rfloor - 1$ (again
#   skipping the hardest ~10%); each class's loss is the mean over its draws, and their
#   sum is divided by the number of classes present (a class with one pixel counts, and
#   adds 0).
#
# ```{admonition} Data and hardware
# Synthetic benchmark, small backbone, 2-core CPU. Not VOC numbers.
# ```

# %% tags=["parameters"]
run_dir = "../results/reference"
batch_size = 8
device = "cpu"
seed = 0
weight_images = 128  # train images for "where the weight goes"

# %%
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import torch

import ppc
from ppc.contrast import flatten_labels, prototype_logits
from ppc.experiment import intra_weight_shares, reference_batch
from ppc.plotting import mask_to_rgb

torch.set_num_threads(2)
config, model, batch = reference_batch(run_dir, batch_size, device)  # the stored run
with torch.no_grad():
    out = model(batch["image"].to(device))
state = ppc.PixelToPrototypeContrast(config.ppc).view_state(out["proj"], out["logits"],
                                                             batch["label"])
names = ["background", *config.synthetic.names]
num_protos = len(names)
skip, keep = ppc.mining_band(num_protos, config.ppc.mining_skip_fraction,
                             config.ppc.mining_keep_fraction)
print(f"{num_protos} prototypes: the band keeps ranks {skip}..{skip + keep - 1}")

# %% [markdown]
# ## Which prototypes enter the denominator
#
# For one pixel, its similarity to every prototype, sorted; the band is highlighted. The
# synthetic benchmark has 7 prototypes, so the same fractions keep fewer ranks (printed
# above) than the ranks 3..12 that VOC's 21 prototypes keep.

# %%
logits = prototype_logits(out["proj"], state.prototypes.vectors, config.ppc.tau)
targets, keep_mask = flatten_labels(state.labels, None)
pixel = int(torch.nonzero(targets > 0)[0])  # a foreground pixel
sims = (logits[pixel] * config.ppc.tau).tolist()
order = sorted(range(num_protos), key=lambda c: -sims[c])
band = ppc.semi_hard_prototypes(logits, targets, skip, keep)
colours = ["tab:orange" if c in band[pixel].tolist() else
           ("tab:green" if c == int(targets[pixel]) else "tab:gray") for c in order]
fig, ax = plt.subplots(figsize=(6, 2.5))
ax.bar([names[c] for c in order], [sims[c] for c in order], color=colours)
ax.set_ylabel("cosine to prototype")
ax.set_title(f"pixel {pixel}: label {names[int(targets[pixel])]} (green, or orange when in "
             "the band), band (orange)")
plt.xticks(rotation=30)
plt.show()

# %% [markdown]
# Over all pixels of the batch: how often each prototype is in a pixel's band, by the
# pixel's label (rows). The positive's own column counts the pixels whose positive falls
# in the band and so appears twice in the denominator, as in the official code
# (`mining_exclude_positive = True` ranks it out).

# %%
counts = torch.zeros(num_protos, num_protos)
rows_index = targets[:, None].expand_as(band)
counts.index_put_((rows_index, band), torch.ones_like(band, dtype=torch.float), accumulate=True)
fig, ax = plt.subplots(figsize=(5, 4))
sns.heatmap(pd.DataFrame(counts.numpy(), index=names, columns=names), annot=True, fmt=".0f",
            cmap="Blues", ax=ax, cbar=False)
ax.set_xlabel("prototype in the band")
ax.set_ylabel("pixel's pseudo label")
plt.show()

# %% [markdown]
# ## Which pixels are drawn
#
# The weights of hard pixel sampling for the batch: 0 (not drawn), one draw (random or
# hard) or two (both). Beside them, each pixel's similarity to its own prototype: the hard
# draws are the low-similarity pixels of each class, minus the very lowest.

# %%
positive = logits.gather(1, targets[:, None])[:, 0]
weights, draws = ppc.hard_pixel_sampling(positive.detach(), targets, keep_mask, num_protos,
                                         generator=torch.Generator().manual_seed(seed),
                                         return_draws=True)
shape = tuple(state.labels.shape)
similarity = (positive * config.ppc.tau).view(shape)
fig, axes = plt.subplots(3, 3, figsize=(6, 6))
for j in range(3):
    axes[0, j].imshow(mask_to_rgb(state.labels[j]), interpolation="nearest")
    axes[1, j].imshow(draws.view(shape)[j], cmap="viridis", vmin=0, vmax=2)
    axes[2, j].imshow(similarity[j], cmap="coolwarm", vmin=-1, vmax=1)
for ax in axes.flat:
    ax.axis("off")
for row, text in enumerate(["pseudo label", "draws (0/1/2)", "cos to own prototype"]):
    axes[row, 0].text(-0.1, 0.5, text, transform=axes[row, 0].transAxes, rotation=90,
                      ha="right", va="center", fontsize=8)
plt.show()

# %% [markdown]
# ## Where each averaging puts the loss's weight
#
# Hard pixel sampling changes two things: which pixels count, and how they are averaged
# (each class's mean, then the mean over classes, instead of the mean over pixels). The
# second moves weight between regions of the image. Below, the stored run's pseudo labels
# of the train split's first `weight_images` images (in batches of the training size),
# and the share of the intra-view term's weight on each region of the ground truth, in
# percent, under three weightings: the mean over pixels (no sampling), the class-balanced
# mean over every pixel, and the official sampling (one draw). The first column is also
# the share of the pixels. "part" and "body" are the synthetic objects' discriminative
# part and body.

# %%
shares = intra_weight_shares(run_dir, images=weight_images, seed=seed, device=device)
(100 * shares).round(1).T

# %% [markdown]
# On this run (CAM + PPC, the train split's first 128 images), the mean over
# pixels puts two thirds of the weight on background labelled background, as most pixels
# are. A quarter of the pixels carry a foreground pseudo label (more than the objects
# cover), and most of those lie on the background: at the loss's threshold of 0.2 the
# pseudo labels are imprecise. Averaging per class gives each
# foreground class as much weight as the background, so the weight follows those pixels.
# Two things move at once:
#
# * background pixels labelled as an object, pulled towards that object's prototype, go
#   from about a fifth of the weight to about two thirds (printed below);
# * object bodies labelled background lose weight (8.5% to 1.6%), and bodies labelled
#   their class gain (3.9% to 13.3%).
#
# The first is a wrong label weighted up, the second a wrong label weighted down. Which
# pixels the sampling then keeps changes little (the third column is close to the
# second). Chapter 6 finds that on CAM this averaging alone cancels the gain of the rest
# of PPC, and measures the same shares on the trained models of its rows; this table
# shows where the averaging moves the weight on one trained run, not that the move is
# the cause.

# %%
moved = shares["background labelled an object"]
print(f"{shares.attrs['images']} images; background labelled as an object: "
      f"{100 * moved.iloc[0]:.1f}% of the weight under the mean over pixels, "
      f"{100 * moved.iloc[1]:.1f}% class-balanced, {100 * moved.iloc[2]:.1f}% with the "
      "official sampling")

# %% [markdown]
# ## The intra-view term with and without each refinement

# %%
rows = []
for mining in (False, True):
    for sampling in (False, True):
        value = ppc.intra_view_loss(out["proj"], state.labels, state.prototypes.vectors,
                                    config.ppc.tau, mining=mining, sampling=sampling,
                                    generator=torch.Generator().manual_seed(seed))
        rows.append({"prototype mining": mining, "pixel sampling": sampling,
                     "intra loss": round(float(value), 4)})
pd.DataFrame(rows)
