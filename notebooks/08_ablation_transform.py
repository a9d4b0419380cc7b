# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Ablation: the spatial transformation A
#
# The target view $T = A(S)$ is a rescaling in the paper. Here $A$ is also a horizontal
# flip, a 90-degree rotation, and their combinations with the rescaling (SEAM base, full
# PPC).
#
# The rows "flip" and "rotate 90" keep the target at full size (scale 1.0), so two things
# change at once: the transformation, and the resolution of the contrast (both views'
# maps at 16x16 instead of 8x8: four times the pixels for the same K = 32, and a target
# view with the detail of the source). The rows "scale 0.5 + flip" and "scale 0.5 +
# rotate 90" change only the transformation; compare those with "scale 0.5".
#
# Every row is 3 or more runs of the training notebook (`python -m ppc.ablate transform`),
# stored in `results/ablations/transform/`; this page only reads them. Our numbers are
# best-threshold seed mIoUs on the **synthetic** benchmark's train split (small network,
# 2-core CPU); the paper's column holds its PASCAL VOC numbers, a different data set and
# network: compare directions, not values.
#
# The 15 trained runs were made on 28 November 2026 at commit `eae23b6`, after a fix to
# the warp: a flip or a rotation used to warp maps with zero padding, so SEAM's
# equivariance terms compared the source's CAMs, dimmed along the image border, with the
# target's undimmed ones (a flipped map upsampled from 16 to 64 px: 496 of 4,096 pixels,
# down to 0.39 of their value; computed at the end of this page). The "scale 0.5" runs do
# not go through the warp; they are the full PPC runs of chapter 6 (27 November,
# `a65e3b0`), copied (`same_run_as.txt`). The current code computes what their code
# computed, on the same machine (chapter 6 says what a rerun elsewhere gives). The fix
# moved the 15 trained runs by 6.4 points on average, up to 14.1 (a "scale 0.5 + rotate
# 90" run, from 25.7 to 39.8), and changed one reading (below); the runs before it are
# those of commit `820c21c`. As in chapter 6, a difference is worth a sentence only if it
# holds in every seed and is larger than its spread.

# %% tags=["parameters"]
family = "transform"

# %%
import matplotlib.pyplot as plt

from ppc import ablate

frame = ablate.collect(family, with_base="seam: base")
print(f"{len(frame)} stored runs: results/ablations/{family}, and the base's")
ablate.table(frame)

# %% [markdown]
# ## Paired differences
#
# Each row against SEAM without PPC, seed by seed (why: {doc}`06_ablation_components`),
# then against "scale 0.5", the paper's kind of A: the change of transformation alone.

# %%
ablate.paired_table(frame, "seam: base")

# %%
ablate.paired_table(frame, "scale 0.5")

# %% [markdown]
# ## Where the seeds change
#
# Part and body recall, precision, background marked and the CAMs' offset from their
# objects, per row ({doc}`06_ablation_components` explains the columns).

# %%
ablate.coverage_table(frame)

# %%
fig = ablate.plot(frame, title=family)
plt.show()

# %% [markdown]
# ## What these runs say (3 seeds per row)
#
# * **A full-size target view helps most, and it held through both reruns**: "flip" and
#   "rotate 90" (target at full size, contrast on 16x16 maps) are above SEAM in 3 of 3
#   seeds, by 18.3 ± 2.3 and 16.6 ± 11.5 points (per seed +16.4 to +20.8, and +3.6 to
#   +25.4). With it the seeds' precision doubles (48% and 41% against 20%) and the
#   background they mark falls from about 20% to 8-10%. Two things change at once in
#   these rows (the transformation and the resolution of the contrast); the next reading
#   finds no consistent gain from the flip alone at 8x8, so for "flip" at least the
#   resolution, or a target view with the source's detail, carries the gain. The paper reports
#   rescaling; its other transformations' numbers are not at hand here.
# * **At the same resolution, a rotation helps and a flip does not**: "scale 0.5 +
#   rotate 90" is above "scale 0.5" by 13.1 ± 1.7 and above SEAM by 12.7 ± 0.6 points,
#   in every seed, far beyond its spread (on this machine; on a second one, not: below).
#   "scale 0.5 + flip" (+1.0 ± 6.6 against "scale 0.5", 1 of 3 seeds) and "scale 0.5 +
#   flip + rotate 90" (+1.6 ± 4.6, 2 of 3) are not distinguishable from "scale 0.5":
#   adding the flip to the rotation loses its gain.
# * **What the border fix changed**: before it, adding a flip, a rotation or both to the
#   rescaling helped "a little, in every seed" (+1.7, +3.6 and +2.4 against "scale 0.5");
#   now the rotation's gain is 13 points in every seed and the flip's is not consistent.
#   (Before the loss was made faster, the same rows read "combining hurts", -4.8.) Three
#   versions of the same ablation, two of them differing only in how the warp pads a
#   border, gave three readings of these rows: trust only the full-size rows and the
#   rotation at 8x8.
# * **A rotation alone puts the CAMs on their objects**, as in both earlier sets: the CAMs
#   of SEAM and of the rescaling and flip rows sit 2.0-5.6 pixels above their objects;
#   with "rotate 90" the offset is -0.0 pixels, with "scale 0.5 + rotate 90" -0.3. In
#   "rotate 90" and "flip" part recall is above body recall on average (60.7 against
#   50.5, 56.7 against 52.1, within the seeds' spread), the pattern the benchmark was
#   designed to show. A likely reason: a rotation turns an upward shift in S into a
#   sideways one in T, which the cross-view terms (and SEAM's equivariance loss, which
#   uses the same A) penalise, while a flip or a rescaling keeps a vertical shift
#   consistent between the views. It is a hypothesis, not shown: with the flip added as
#   well (a reflection about a diagonal, which also turns vertical into horizontal) the
#   offset is back at -3.8 pixels, and the mIoU near the rescaling's.
# * "rotate 90" is the noisiest row of the page (one seed +3.6 over SEAM, the others +21
#   and +25): 3 seeds show its direction, not its size.

# %% [markdown]
# ## The readings on a second machine
#
# The stored runs are reproducible on the machine that made them; on another CPU the math
# libraries round differently and a rerun lands elsewhere ({doc}`06_ablation_components`).
# So SEAM, the two full-size rows and "scale 0.5 + rotate 90" were rerun with the stored
# configurations, 3 seeds each, on the 2 December 2026 VM (2-core CPU with AVX-512, same
# torch and code), into `results/replication/` ("scale 0.5" is the full PPC row, rerun
# for chapter 6). Do "above SEAM in every seed" and "above scale 0.5 in every seed" hold
# there too? `every seed` says whether a row is above (below) its reference in all six
# seeds, on both machines.

# %%
rerun_rows = ["flip", "rotate 90", "scale 0.5 + rotate 90"]
# the seeds rerun for this page (SEAM has three more there: chapter 6)
replica = ablate.collect(family, results=ablate.REPLICATION, with_base="seam: base",
                         seeds=range(3))
both = frame.merge(replica, on=["row", "seed"], suffixes=(" (stored)", " (2 Dec VM)"))
both.pivot(index="row", columns="seed", values=["miou (stored)", "miou (2 Dec VM)"]).round(1)

# %%
ablate.replication_table(family, rerun_rows, ["seam: base", "scale 0.5"],
                         with_base="seam: base")

# %%
ablate.coverage_table(replica)

# %% [markdown]
# * **The full-size rows hold on the second machine.** Both are above SEAM in every seed
#   there too: "flip" by 10.9 ± 3.0 points (+14.4, +8.7, +9.7; stored: 18.3 ± 2.3) and
#   "rotate 90" by 22.9 ± 8.3 (+14.7, +22.8, +31.2; stored: 16.6 ± 11.5). The sizes move
#   by several points, as a change of seed does, and in these two rows one seed's value
#   moves by up to 18 points ("rotate 90" seed 1: 31.3 stored, 49.6 rerun; "scale 0.5 +
#   rotate 90" seed 1 moves by 19.9, below). The seeds' precision rises as
#   in the stored runs (18.7% for SEAM, 33.5% with "flip", 47.8% with "rotate 90"), and
#   with "rotate 90" the CAMs again sit on their objects (offset -0.1 px, against -3.8
#   for SEAM).
# * **The rotation at the usual resolution does not.** "scale 0.5 + rotate 90" was the
#   reading of the book with the smallest spread for its size (+12.7 ± 0.6 over SEAM,
#   +13.1 ± 1.7 over "scale 0.5", in every seed). On the second machine it is +5.2 ±
#   10.7 over SEAM (+13.4, -6.9, +9.0) and +4.8 ± 13.7 over "scale 0.5": seed 1 falls
#   below both. Its CAMs again sit on their objects (offset -0.6 px, against -3.8 for
#   SEAM and -5.0 for "scale 0.5"): the mechanism repeats, the gain in mIoU is not
#   reliable.
#
# What one machine's seeds say about the full-size rows' direction, the other's repeat;
# what they say about sizes, they do not, and a spread of 0.6 points over 3 seeds on one
# machine was no guarantee of the sign on another.

# %% [markdown]
# ## The border fix, in numbers
#
# What zero padding did to a map that a flip upsamples (a constant 16x16 map onto a 64x64
# grid, as SEAM compares CAMs at the image's size), and what `ppc.views.apply` does now.

# %%
import torch
import torch.nn.functional as F

from ppc.views import ViewConfig, apply

ones = torch.ones(1, 1, 16, 16)
flip = torch.tensor([[[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])  # target -> source coordinates
grid = F.affine_grid(flip, [1, 1, 64, 64], align_corners=False)
before = F.grid_sample(ones, grid, padding_mode="zeros", align_corners=False)
now = apply(ViewConfig(flip=True), ones, (64, 64))
for name, warped in (("zero padding (before)", before), ("ppc.views.apply (now)", now)):
    print(f"{name}: {int((warped < 1 - 1e-6).sum())} of {warped.numel()} pixels dimmed, "
          f"smallest value {float(warped.min()):.2f}")
