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
# # Ablation: the number of pixels K per prototype
#
# $K$ pixels of the batch define each prototype. The paper uses $K = 32$ with 16x16 maps
# and batches of 8, i.e. 2,048 pixels; the synthetic recipe contrasts on 8x8 maps of 32
# images, also 2,048 pixels, so the same K values apply (SEAM base, full PPC).
#
# Every row is 3 or more runs of the training notebook (`python -m ppc.ablate top_k`),
# stored in `results/ablations/top_k/`; this page only reads them. Our numbers are
# best-threshold seed mIoUs on the **synthetic** benchmark's train split (small network,
# 2-core CPU); the paper's column holds its PASCAL VOC numbers, a different data set and
# network: compare directions, not values.

# %% tags=["parameters"]
family = "top_k"

# %%
import matplotlib.pyplot as plt

from ppc import ablate

frame = ablate.collect(family)
print(f"{len(frame)} stored runs in results/ablations/{family}")
ablate.table(frame)

# %%
fig = ablate.plot(frame, title=family)
plt.show()
