# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Ablation: the background score of the pseudo labels
#
# The pseudo labels that PPC contrasts come from an argmax over a constant background
# score (0.2 in the official code) and the CAMs. The paper does not sweep it; this does
# (SEAM base, full PPC). This is the score used *during training*, not the background
# threshold of the seed evaluation, which is always swept.
#
# Every row is 3 or more runs of the training notebook (`python -m ppc.ablate bg_threshold`),
# stored in `results/ablations/bg_threshold/`; this page only reads them. Our numbers are
# best-threshold seed mIoUs on the **synthetic** benchmark's train split (small network,
# 2-core CPU); the paper's column holds its PASCAL VOC numbers, a different data set and
# network: compare directions, not values.
#
# All 12 runs were made on 27-28 November 2026 at commit `a65e3b0` (the training code of
# chapter 6's runs; chapter 6 says how far a rerun elsewhere moves them); the 0.2 runs
# are the full PPC runs of chapter 6, copied (`same_run_as.txt`). They replace an earlier
# set (at commit `bdab97d`) made before the loss was made faster: that rounding-level
# change moved the 9 trained runs of this page by 3.9 points on average, up to 9.7. The
# direction of the earlier reading held, with smaller effects (below). As in chapter 6, a
# difference is worth a sentence only if it holds in every seed and is larger than its
# spread.

# %% tags=["parameters"]
family = "bg_threshold"

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
# then against the official background score 0.2.

# %%
ablate.paired_table(frame, "seam: base")

# %%
ablate.paired_table(frame, "pseudo-label background = 0.2")

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
# * **A lower background score helps, a higher one hurts**: against the official 0.2, a
#   score of 0.1 is +4.8 ± 4.0 points (above in 3 of 3 seeds), 0.3 is +0.7 ± 1.2 (2 of
#   3) and 0.4 is -5.5 ± 3.0 (below in 3 of 3). Against SEAM, 0.1 is the only row of
#   this page above in every seed by more than its spread (+4.4 ± 1.8), one of the few
#   settings of the book that beat the base consistently; 0.4 is below SEAM in every seed
#   (-5.9 ± 5.3). On a second machine only the sign of the last reading holds (below).
# * The earlier runs read the same, with larger effects (0.1: +7.2 over SEAM; 0.4: -10.0
#   against 0.2).
# * **Where it comes from**: with a lower score more pixels get a class as pseudo label
#   during training, so more of each body is pulled to its class's prototype. Body recall
#   rises (46% at 0.1, 33% at 0.2, 17% at 0.4), with a little more background marked (24%
#   against 19%) and a higher precision. On this benchmark the CAMs cover too little of
#   each body, and a low background score counters that.
# * The paper does not sweep this score. These runs are on the train split, which the
#   book reports on; they are not a reason to change the recipe's 0.2. A choice would
#   be made on the synthetic validation split, then reported here.

# %% [markdown]
# ## The readings on a second machine
#
# The stored runs are reproducible only on the machine that made them
# ({doc}`06_ablation_components`). So the rows 0.1 and 0.4, and the official 0.2 (the
# full PPC row), were rerun with their stored configurations, 3 seeds each, on the
# 2 December 2026 VM (2-core CPU with AVX-512, same torch and code), into
# `results/replication/`, beside the SEAM reruns of chapter 8. `every seed` says whether
# the row is above (below) its reference in all six seeds, on both machines.

# %%
rerun_rows = ["pseudo-label background = 0.1", "pseudo-label background = 0.4"]
ablate.replication_table(family, rerun_rows, ["seam: base", "pseudo-label background = 0.2"],
                         with_base="seam: base")

# %%
# the seeds rerun for this page (SEAM has three more there: chapter 6)
replica = ablate.collect(family, results=ablate.REPLICATION, with_base="seam: base",
                         seeds=range(3))
ablate.coverage_table(replica)

# %% [markdown]
# * **0.1 above SEAM in every seed does not hold there**: +3.0 ± 4.1 (+1.3, -0.2, +7.7),
#   against the stored +4.4 ± 1.8; against the official 0.2 it is above in 2 of 3 seeds
#   (+2.6 ± 4.3). The mean is positive on both machines, but one seed is level with
#   SEAM.
# * **0.4 below SEAM in every seed holds, its size does not**: six seeds of six are below
#   on the two machines, but on the second by -2.5, -11.3 and -0.5 (-4.8 ± 5.8), a mean
#   within its spread (as SEAM + cross-CAM in {doc}`06_ablation_components`). Against 0.2
#   it is below in 2 of 3 seeds there.
# * **The mechanism repeats**: body recall at 0.1, 0.2 and 0.4 is 40.6%, 33.1% and 15.8%
#   on the second machine (stored: 46%, 33%, 17%). A lower background score labels more
#   of each body, and a higher one less, on both machines; only the size of the gain in
#   mIoU at 0.1 is within the noise of 3 seeds.
