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
# All 18 runs were made on 27 November 2026 at commit `a65e3b0` (the training code of
# chapter 6's runs, which the current code reproduces bit for bit on a CPU); the
# "scale 0.5" runs are the full PPC runs of chapter 6, copied (`same_run_as.txt`). They
# replace an earlier set made before the loss was made faster. That rounding-level change
# moved the 15 trained runs of this page by 5.2 points on average, up to 19.5 (a
# "scale 0.5 + rotate 90" run that fell from 45.2 to 25.7), more than in any other
# family, and it reversed one earlier reading (below). As in chapter 6, a difference is
# worth a sentence only if it holds in every seed and is larger than its spread.

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
# * **A full-size target view is what helps most, and it held through the rerun**:
#   "flip" and "rotate 90" (target at full size, contrast on 16x16 maps) are above SEAM
#   in 3 of 3 seeds, by 16.8 ± 7.1 and 16.5 ± 4.5 points, and above "scale 0.5" by 17.2
#   ± 5.2 and 16.8 ± 4.5 (the earlier runs: 11-16 points, also in every seed). The flip
#   alone does not do it at 8x8 (below), so the gain belongs to the resolution of the
#   contrast, or to a target view with the source's detail, more than to the flip. With
#   it the seeds' precision doubles (44-45% against 20%) and the background they mark
#   falls from about 20% to 8-9%. The paper reports rescaling; its other
#   transformations' numbers are not at hand here.
# * **At the same resolution, adding a flip or a rotation to the rescaling helps a
#   little, in every seed**: against "scale 0.5", + flip +1.7 ± 1.8, + rotate 90 +3.6 ±
#   2.6, + flip + rotate 90 +2.4 ± 2.1, each 3 of 3 seeds, but only the rotation's gain is
#   clearly larger than its spread. Against SEAM, "scale 0.5 + flip" (+1.4 ± 0.5) and
#   "scale 0.5 + flip + rotate 90" (+2.0 ± 0.8) are above in every seed, which the
#   paper's "scale 0.5" itself is not (2 of 3, -0.4 ± 2.3).
# * **What the earlier runs said and these do not:** that combining the three
#   transformations hurts (it was -4.8 against "scale 0.5", 0 of 3 seeds; now +2.4, 3 of
#   3), and that a rotation at 8x8 adds about 5 points (that came from one seed, the run
#   that moved by 19.5 points).
# * **A rotation alone puts the CAMs on their objects**, as before: the CAMs of SEAM and
#   of the rescaling and flip rows sit 2.8-5.6 pixels above their objects; with "rotate
#   90" the offset is -0.2 pixels, with "scale 0.5 + rotate 90" -0.6. In those two rows
#   (and "flip") part recall is also above body recall on average, by 5-7 points (within
#   the seeds' spread), the pattern the benchmark was designed to show. A likely reason:
#   a rotation turns an upward shift in S into a
#   sideways one in T, which the cross-view terms (and SEAM's equivariance loss, which
#   uses the same A) penalise, while a flip or a rescaling keeps a vertical shift
#   consistent between the views. It is a hypothesis, not shown: with the flip added as
#   well (a reflection about a diagonal, which also turns vertical into horizontal) the
#   offset is back at -3.3 pixels.
# * The rotation and flip rows moved most in the rerun (by up to 19.5, 10.5 and 9.8
#   points) and their spreads reach 4-7 points: 3 seeds show their direction, not their
#   size.
