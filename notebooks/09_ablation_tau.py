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
#
# All 12 runs were made on 27 November 2026 at commit `a65e3b0` (the training code of
# chapter 6's runs; chapter 6 says how far a rerun elsewhere moves them); the
# tau = 0.1 runs are the full PPC runs of chapter 6, copied (`same_run_as.txt`). They
# replace an earlier set (at commit `0c4d1d2`) made before the loss was made faster: that
# rounding-level change moved the 9 trained runs of this page by 3.1 points on average,
# up to 7.3, and it reversed the earlier reading of this page (below). As in chapter 6, a
# difference is worth a sentence only if it holds in every seed and is larger than its
# spread.

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
# * **No temperature is above SEAM in every seed.** tau = 0.2 comes closest (+3.7 ±
#   5.5, 2 of 3 seeds); the paper's 0.1 is -0.4 ± 2.3 (2 of 3), 0.05 is -1.5 ± 5.1 (1 of
#   3) and 0.5 is -0.6 ± 6.3 (2 of 3).
# * **tau = 0.2 is above the paper's 0.1 in every seed** (+4.0 ± 3.6; +7.9, +0.7,
#   +3.5), a gain just larger than its spread; 0.05 and 0.5 are not separable from 0.1.
#   Rerun on a second machine, it is not (below).
# * **What the earlier runs said and these do not:** that the paper's 0.1 is the best of
#   the four and the only value above SEAM in every seed (+4.0), with every other value
#   below it. The rerun turns that around for 0.2. The paper fixes tau = 0.1 without a
#   sweep; on this benchmark these runs do not support that value over 0.2.
# * **A sharper softmax still marks more background**: at tau = 0.05 the seeds label
#   28% of the background as some class (19-20% at 0.1 and 0.2), with the lowest
#   precision (17%). But 0.5 marks almost as much (27%), so the background marked does
#   not simply follow tau.
# * tau = 0.2 has the highest body recall and precision of the page (42 and 25%), and
#   its CAMs sit furthest above their objects (-7.1 pixels, against -3.2 at 0.1): as in
#   chapter 7, the offset and the mIoU do not move together.
# * These runs are scored on the train split, where the paper also scores its seeds;
#   they report the effect of tau, they were not used to choose it (the recipe keeps the
#   paper's value; a choice would be made on the synthetic validation split).

# %% [markdown]
# ## The tau = 0.2 reading on a second machine
#
# The stored runs are reproducible only on the machine that made them
# ({doc}`06_ablation_components`). So tau = 0.2 and the paper's 0.1 (the full PPC row)
# were rerun with their stored configurations, 3 seeds each, on the 2 December 2026 VM
# (2-core CPU with AVX-512, same torch and code), into `results/replication/`, beside
# the SEAM reruns of chapter 8. `every seed` says whether the row is above (below) its
# reference in all six seeds, on both machines.

# %%
ablate.replication_table(family, ["tau = 0.2"], ["tau = 0.1", "seam: base"],
                         with_base="seam: base")

# %% [markdown]
# **The reading does not hold there.** Against the paper's 0.1, tau = 0.2 is +2.4 ± 7.2
# on the second machine (+9.5, -4.9, +2.6), where the stored runs had +4.0 ± 3.6 in
# every seed; against SEAM it is again above in 2 of 3 seeds (+2.8 ± 6.2). The mean is
# positive on both machines, but one seed in six goes the other way by about 5 points:
# these runs do not separate tau = 0.2 from the paper's 0.1.
