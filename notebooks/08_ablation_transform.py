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
# Each row against SEAM without PPC, seed by seed (why: {doc}`06_ablation_components`).

# %%
ablate.paired_table(frame, "seam: base")

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
