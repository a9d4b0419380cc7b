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
# # Cross-view contrast
#
# PPC looks at every image twice: the source view $S$ and a target view $T = A(S)$, a
# spatial transform (a rescaling in the paper). The network runs on both. Applying the
# same $A$ to the *features and CAMs* of $S$ puts them on $T$'s pixel grid, so pixel $i$
# of one view corresponds to pixel $i$ of the other. Then each view learns from the other:
#
# * **cross-prototype**: $F(v_i; y_i; P')$, a view's pixels and pseudo labels against the
#   *other* view's prototypes;
# * **cross-CAM**: $F(v_i; y'_i; P)$, a view's pixels and prototypes with the *other*
#   view's pseudo labels.
#
# Both are computed for both views and averaged (`ppc.PixelToPrototypeContrast`).
#
# ```{admonition} Data and hardware
# Synthetic benchmark, small backbone, 2-core CPU. Not VOC numbers.
# ```

# %% tags=["parameters"]
run_dir = "../results/reference"
batch_size = 8
device = "cpu"

# %%
import matplotlib.pyplot as plt
import torch

import ppc
from ppc import views
from ppc.contrast import nce_map
from ppc.experiment import reference_batch
from ppc.plotting import mask_to_rgb, show_maps, to_rgb

torch.set_num_threads(2)
config, model, batch = reference_batch(run_dir, batch_size, device)  # the stored run
config.view

# %% [markdown]
# ## Two views, one pixel grid

# %%
source = batch["image"].to(device)
target = views.make_target(config.view, source)
with torch.no_grad():
    out_s, out_t = model(source), model(target)
size_t = tuple(out_t["logits"].shape[2:])
print(f"S: image {tuple(source.shape[2:])}, maps {tuple(out_s['logits'].shape[2:])}; "
      f"T: image {tuple(target.shape[2:])}, maps {size_t}")
proj_s = views.apply(config.view, out_s["proj"], size_t)  # A(f_proj(S))
cams_s = views.apply(config.view, out_s["logits"], size_t)  # A(CAM(S))

# %%
loss = ppc.PixelToPrototypeContrast(config.ppc)
state_s = loss.view_state(proj_s, cams_s, batch["label"])
state_t = loss.view_state(out_t["proj"], out_t["logits"], batch["label"])
fig, axes = plt.subplots(4, batch_size, figsize=(1.5 * batch_size, 6.2))
for j in range(batch_size):
    axes[0, j].imshow(to_rgb(source[j]))
    axes[1, j].imshow(to_rgb(target[j]))
    axes[2, j].imshow(mask_to_rgb(state_s.labels[j]), interpolation="nearest")
    axes[3, j].imshow(mask_to_rgb(state_t.labels[j]), interpolation="nearest")
for ax in axes.flat:
    ax.axis("off")
for row, text in enumerate(["S", "T = A(S)", "labels of A(S)", "labels of T"]):
    axes[row, 0].text(-0.1, 0.5, text, transform=axes[row, 0].transAxes, rotation=90,
                      ha="right", va="center", fontsize=8)
plt.show()
agree = (state_s.labels == state_t.labels).float().mean()
print(f"the two views' pseudo labels agree on {100 * agree:.1f}% of the pixels")

# %% [markdown]
# ## Two sets of prototypes
#
# Each view has its own prototypes. The cross-prototype term makes a view's pixels
# consistent with the *other* view's prototypes; cosine between the two sets, per class:

# %%
names = ["background", *config.synthetic.names]
cosine = (state_s.prototypes.vectors * state_t.prototypes.vectors).sum(dim=1)
{name: round(float(c), 3) for name, c in zip(names, cosine)}

# %% [markdown]
# ## What each term asks of each pixel
#
# Per-pixel loss maps of view $S$ for the first images: the cross-prototype term is high
# where $S$'s pixels sit far from $T$'s prototype of their own label; the cross-CAM term is
# high where $T$'s label for the pixel disagrees with what $S$'s embedding says, which is
# how one view's CAM extends the other's.

# %%
tau = config.ppc.tau
cross_prototype = nce_map(proj_s, state_s.labels, state_t.prototypes.vectors, tau)
cross_cam = nce_map(proj_s, state_t.labels, state_s.prototypes.vectors, tau)
fig = show_maps([*cross_prototype[:4], *cross_cam[:4]],
                [f"cross-prototype {j}" for j in range(4)] + [f"cross-CAM {j}" for j in range(4)],
                cmap="magma", cols=4, size=1.7)
plt.show()

# %% [markdown]
# The module returns every term, each averaged over both views, and the weighted total
# $\alpha (L_{cp} + L_{cc}) + \beta L_{intra}$:

# %%
terms = loss(proj_s, cams_s, out_t["proj"], out_t["logits"], batch["label"],
             generator=torch.Generator().manual_seed(0))
{k: round(float(v), 4) for k, v in terms.items()}

# %% [markdown]
# ## Other transformations
#
# The transformation ablation adds a flip or a rotation to the rescaling (as below), or
# uses one instead of it. The same
# warp moves the features; pixels of a rotated frame that fall outside the source (where
# the warp repeats the edge values, as a plain resize does) are masked out of every PPC
# term, and out of each CAM's min-max normalisation.

# %%
for option in (views.ViewConfig(scale=0.5, flip=True), views.ViewConfig(scale=0.5, rotate=30)):
    mask = views.valid_mask(option, 1, size_t)
    warped = views.apply(option, out_s["proj"][:1], size_t)
    title = f"flip={option.flip}, rotate={option.rotate}"
    fig = show_maps([warped[0].norm(dim=0), mask[0].float() if mask is not None
                     else torch.ones(size_t)], [f"|A(f_proj)| {title}", "valid pixels"],
                    size=2.0)
    plt.show()
