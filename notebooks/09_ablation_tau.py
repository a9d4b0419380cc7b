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
# # Ablation: the temperature tau
#
# The paper fixes $\tau = 0.1$ without a sweep; this one varies it (SEAM base, full
# PPC).
#
# Every row is 3 or more runs of the training notebook (`python -m ppc.ablate tau`),
# stored in `results/ablations/tau/`; this page only reads them. Our numbers are
# best-threshold seed mIoUs on the **synthetic** benchmark's train split (small network,
# 2-core CPU); the paper's column holds its PASCAL VOC numbers, a different data set and
# network: compare directions, not values.

# %% tags=["parameters"]
family = "tau"

# %%
import matplotlib.pyplot as plt

from ppc import ablate

frame = ablate.collect(family, with_base="seam: base")
print(f"{len(frame)} stored runs: results/ablations/{family}, and the base's")
ablate.table(frame)

# %% [markdown]
# ## Paired differences
#
# Seeds move the mIoU of every row by several points (the data order, the augmentation
# draws and the initialisation all come from the seed), but runs with the same seed share
# them. The difference to SEAM without PPC (the first row, from the components runs), seed
# by seed, removes most of that noise: it is the number to read for "does this help here".

# %%
ablate.paired_table(frame, "seam: base")

# %% [markdown]
# ## Where the seeds change
#
# The synthetic benchmark knows which object pixels are the small discriminative *part*
# and which the larger *body* (`ppc.data.synthetic`, `regions`). For each run,
# `coverage.json` holds, at its best background threshold: the share of part and of body
# pixels labelled with their class, the precision of the foreground labels, and the share
# of background pixels marked as some class (`ppc.experiment.seed_coverage`). PPC's claim
# is that the seeds spread from the discriminative parts over the whole object: body
# recall should rise without the background being marked. Runs whose seed files were not
# kept show n/a.

# %%
ablate.coverage_table(frame)

# %%
fig = ablate.plot(frame, title=family)
plt.show()
