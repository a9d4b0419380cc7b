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

frame = ablate.collect(family)
print(f"{len(frame)} stored runs in results/ablations/{family}")
ablate.table(frame)

# %%
fig = ablate.plot(frame, title=family)
plt.show()
