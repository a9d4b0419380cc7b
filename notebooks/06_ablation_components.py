# ---
# jupyter:
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
#
# A run is reproducible bit for bit with the code that made it (each `summary.json`
# records the git commit; the stored runs come from commits up to `39829a1`), not across
# code changes that only move float rounding. The loss was made faster after these runs
# (the same loss values, gradients equal to about 4e-9): rerun at the new code, the full
# PPC run of seed 0 gives 21.1 instead of 23.8 (its old code reproduces 23.8 exactly). A
# rounding-level change moves one run by as much as the spread between seeds, which is
# one more reason to read only differences that hold in every seed.

# %% tags=["parameters"]
family = "components"

# %%
import matplotlib.pyplot as plt

from ppc import ablate

frame = ablate.collect(family)
print(f"{len(frame)} stored runs in results/ablations/{family}")
ablate.table(frame)

# %% [markdown]
# ## Paired differences
#
# Seeds move the mIoU of every row by several points (the data order, the augmentation
# draws and the initialisation all come from the seed), but runs with the same seed share
# them. The difference to the base network of the same block (SEAM or CAM), seed by seed,
# removes most of that noise: it is the number to read for "does this help here".

# %%
ablate.paired_table(frame, lambda row: row.split(":")[0] + ": base")

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

# %% [markdown]
# ## What these runs say (3 seeds per row)
#
# **Caution: a rerun contradicts part of this reading.** Every row is being rerun at one
# commit (the current code: the same loss values, float rounding moved). The base runs
# reproduce exactly; of 21 PPC runs redone so far (27 November 2026), the seed mIoU moved
# by 3.2 points on average and by up to 6.9. Paired differences to the base, stored ->
# rerun: full PPC on SEAM +3.4, +0.9, +7.8 -> +0.7, -3.0, +1.3; + cross-prototype on
# SEAM +1.3, +0.9, +0.7 -> +1.8, +0.3, +1.7; + cross-prototype on CAM +5.1, +1.8, +1.5
# -> +4.5, -3.5, +1.1; SEAM + intra without mining or sampling -0.7, -10.1, -4.4 ->
# +2.2, -3.3, -1.2. So only the SEAM cross-prototype gain holds in every seed of both
# runs; the 4-point gain of full PPC on SEAM below does not survive a rounding-level
# change. The tables and this reading will be replaced by the complete rerun.
#
# Read the paired differences, the per-seed signs and the spread together: with 3 seeds,
# only a difference of the same sign in every seed, and larger than its spread, is worth
# a sentence. Against the paper's direction (every component adds, cross-view most):
#
# * **Cross-view terms help on both bases**: + cross-prototype is above its base in
#   3 of 3 seeds for SEAM (by about 1 point) and for CAM (about 3); + cross-CAM and both
#   together are above the CAM base in 3 of 3 seeds, and mixed on SEAM. Same direction as
#   the paper.
# * **The intra-view term without hard pixel sampling hurts SEAM** (below the base in
#   most seeds, by about 5 points), and prototype mining alone does not repair it. The
#   paper reports gains; this is a finding against it on this benchmark.
# * **Full PPC on SEAM** (the paper's method) is above SEAM in 3 of 3 seeds, by about
#   4 points, and has the best body recall of the SEAM rows: the paper's direction.
# * **Full PPC on the plain CAM base** is not better than CAM (1 of 3 seeds), while the
#   cross-view rows are better in every seed (and + intra with mining in 2 of 3): on this
#   base, the intra-view term with hard pixel sampling undoes what the cross-view terms
#   gain. The CAM rows' paired differences range over up to 19 points between seeds, so
#   this needs more seeds before it is more than a hint.
#
# In the coverage table, part recall is never clearly above body recall, in any row: the
# benchmark's CAMs do not single out the discriminative part (chapter 1), so "spreading
# from the part to the body" cannot be seen here as such. The CAMs of the SEAM base sit
# about 5 pixels above their objects; several PPC rows bring them closer.

