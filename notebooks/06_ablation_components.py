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
# # Ablation: the components of PPC
#
# The paper's central ablation adds PPC's pieces one at a time to the base network:
# the cross-prototype term, the cross-CAM term, both, then the intra-view term without
# refinements, with semi-hard prototype mining, and with hard pixel sampling as well (the
# full method). The paper reports it for SEAM; this book runs it for SEAM and for the
# plain CAM base. The paper's per-row numbers are not at hand here: only its base (SEAM,
# 55.4) and full (SEAM + PPC, 61.5) VOC seed mIoUs are shown.
#
# Every row is 3 or more runs of the training notebook (`python -m ppc.ablate components`),
# stored in `results/ablations/components/`; this page only reads them. Our numbers are
# best-threshold seed mIoUs on the **synthetic** benchmark's train split (small network,
# 2-core CPU); the paper's column holds its PASCAL VOC numbers, a different data set and
# network: compare directions, not values.

# %% tags=["parameters"]
family = "components"

# %%
import matplotlib.pyplot as plt

from ppc import ablate

frame = ablate.collect(family)
print(f"{len(frame)} stored runs in results/ablations/{family}")
ablate.table(frame)

# %%
fig = ablate.plot(frame, title=family)
plt.show()
