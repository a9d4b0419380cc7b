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
# **Provisional.** These runs predate the faster loss. Rerun at the current code (the
# same values, float rounding moved), the 36 PPC runs of chapter 6 moved by 2.5 points on
# average, up to 6.9, and several of its readings did not hold
# ({doc}`06_ablation_components`). Read the sentences below as provisional until this
# family is rerun at one commit; its base runs (SEAM) are the rerun ones, which came out
# identical to the earlier ones.
#
# * **At the same resolution the transformation matters little**: against "scale 0.5"
#   (the paper's kind of A), adding a flip is +0.3 points (2 of 3 seeds, spread 7),
#   adding a rotation +4.9 (2 of 3, spread 10: one seed gains 17, the others 0 and -2),
#   and all three together -4.8 (0 of 3). Only the last is a difference of one sign, and
#   it is against combining transformations.
# * **A full-size target view is what helps most**: "flip" and "rotate 90" (target at
#   full size, contrast on 16x16 maps) are above "scale 0.5" in 3 of 3 seeds, by about 7
#   and 12 points, and above SEAM by 11 and 16. The flip alone does not do it at 8x8, so
#   the gain belongs to the resolution of the contrast, or to a target view with the
#   source's detail, more than to the flip. The paper reports rescaling; its other
#   transformations' numbers are not at hand here.
# * **A rotation alone puts the CAMs on their objects**: the CAMs of SEAM and of the
#   scale and flip rows sit 2.5-6 pixels above their objects; with "rotate 90" the
#   offset is -0.4 pixels, with "scale 0.5 + rotate 90" -1.0, and at full size part
#   recall rises above body recall (65 against 54), the pattern the benchmark was
#   designed to show. A likely reason: a rotation turns an upward shift in S into a
#   sideways one in T, which the cross-view terms (and SEAM's equivariance loss, which
#   uses the same A) penalise, while a flip or a rescaling keeps a vertical shift
#   consistent between the views. It is a hypothesis, not shown: with the flip added as
#   well (a reflection about a diagonal, which also turns vertical into horizontal) the
#   offset is back at -3.0 pixels.
# * The rotation rows are the noisiest of the book (spreads of 9-12 points): 3 seeds are
#   enough to see their direction, not their size.
