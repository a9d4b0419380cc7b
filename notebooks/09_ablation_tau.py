# ---
# jupyter:
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
# Each row against SEAM without PPC, seed by seed (why: {doc}`06_ablation_components`),
# then against the paper's tau = 0.1.

# %%
ablate.paired_table(frame, "seam: base")

# %%
ablate.paired_table(frame, "tau = 0.1")

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
# * **The paper's tau = 0.1 is the best of the four here**: it is the only value above
#   SEAM in every seed (+4.0). Against it, tau = 0.05 is -5.2 points (below in 2 of 3
#   seeds), 0.2 is -2.2 (below in 2 of 3, the third +0.1) and 0.5 is -3.0 (below in 3 of
#   3). The paper fixes tau = 0.1 without a sweep; these runs agree with the choice.
# * **A sharper softmax marks more background**: at tau = 0.05 the seeds label 30% of
#   the background as some class (18-22% for the other values), with the lowest
#   precision, although its part and body recall are the highest.
# * These runs are scored on the train split, where the paper also scores its seeds;
#   they report the effect of tau, they were not used to choose it (the recipe keeps the
#   paper's value).
