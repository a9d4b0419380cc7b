# ---
# jupyter:
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
#
# All 15 runs were made on 27 November 2026 at commit `a65e3b0` (the training code of
# chapter 6's runs; chapter 6 says how far a rerun elsewhere moves them); the K = 32 runs
# are the full PPC runs of chapter 6, copied (`same_run_as.txt`). They replace an earlier
# set (at commit `7ba3b23`) made before the loss was made faster: that rounding-level
# change moved the 12 trained runs of this page by 2.8 points on average, up to 5.9, and
# two of the earlier readings did not hold (below). As in chapter 6, a difference is worth
# a sentence only if it holds in every seed and is larger than its spread.

# %% tags=["parameters"]
family = "top_k"

# %%
import matplotlib.pyplot as plt

from ppc import ablate

frame = ablate.collect(family, with_base="seam: base")
print(f"{len(frame)} stored runs: results/ablations/{family}, and the base's")
ablate.table(frame)

# %% [markdown]
# ## Paired differences
#
# Each K against SEAM without PPC, seed by seed (why: {doc}`06_ablation_components`).

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

# %% [markdown]
# ## What these runs say (3 seeds per row)
#
# * **Only K = 8 is above SEAM in every seed** (+2.4 ± 1.1; per seed +1.3, +2.5, +3.5),
#   and it is again on a second machine (below).
#   K = 16 (+2.6 ± 3.8) and K = 128 (+1.8 ± 3.1) are above in 2 of 3 seeds, and the
#   paper's K = 32 (the full PPC row of chapter 6) in 2 of 3, by -0.4 ± 2.3 on average.
#   Their spreads overlap; these runs do not rank K = 8, 16, 32 and 128.
# * **K = 64 is below SEAM in every seed**, but only just (-1.4 ± 1.2; -2.5, -1.6, -0.1;
#   not on a second machine, below), and K = 128 is not: so no trend with K shows beyond
#   K = 32. (A class covers about 50 of a view's 2,048 pixels, 8 objects of about 9% of
#   an image in a batch of 32, so K = 64 and 128 must take pixels outside the class;
#   here that does not measurably hurt.)
# * **What the earlier runs said and these do not:** that K from 8 to 32 all help, by
#   about 4 points (K = 32 was above SEAM in every seed), and that K = 64 and 128 lose
#   the gain.
# * The paper uses K = 32 and reports no sweep over K. These runs neither support nor
#   contradict that choice.
# * In the coverage table the CAMs' upward offset shrinks as K grows (about 6 pixels at
#   the base and at K = 8, 3 at K = 32 to 128), without a matching gain in mIoU: a
#   smaller offset alone does not make better seeds. K = 64 marks the least background
#   (12.7%) but also has the lowest part and body recall (19.3 and 25.1).
# * **Those K = 64 averages come mostly from two runs with unusual thresholds.** Their
#   best background scores are 0.83 (seed 0) and 0.44 (seed 2); the page's other runs
#   pick 0.03 to 0.29. Their CAMs are high over much of the background: even at 0.83,
#   seed 0's seeds mark 9.4% of the background pixels and find only 14% of the object
#   pixels, at 18% precision (SEAM's seed 0, at 0.18: 21%, 28% and 17%). Its mIoU, 17.9,
#   is the page's lowest, and its curve is shallow there (15.1 at 0.60, 17.9 at 0.83,
#   16.9 at 0.90): a seed set this poor has no clear best threshold.

# %% [markdown]
# ## The readings on a second machine
#
# The stored runs are reproducible only on the machine that made them
# ({doc}`06_ablation_components`). So K = 8, K = 32 (the full PPC row) and K = 64 were
# rerun with their stored configurations, 3 seeds each, on the 2 December 2026 VM
# (2-core CPU with AVX-512, same torch and code), into `results/replication/`, beside
# the SEAM reruns of chapter 8. `every seed` says whether the row is above (below) SEAM
# in all six seeds, on both machines.

# %%
ablate.replication_table(family, ["K = 8", "K = 32", "K = 64"], "seam: base",
                         with_base="seam: base")

# %%
# the seeds rerun for this page (SEAM has three more there: chapter 6)
replica = ablate.collect(family, results=ablate.REPLICATION, with_base="seam: base",
                         seeds=range(3))
replica[["row", "seed", "miou", "threshold"]].round(2)

# %% [markdown]
# * **K = 8 above SEAM holds**: +3.8 ± 2.8 on the second machine (+2.0, +2.4, +7.0),
#   six seeds of six above on the two machines, the only row of this page that is. Its
#   seeds again mark less background than SEAM's (15.8% against 24.5% there; stored:
#   17.4% against 21.9%) at a higher precision (25.5% against 18.7%; stored: 23.5%
#   against 19.8%).
# * **K = 64 below SEAM does not hold**: -0.1 ± 5.0 (-5.4, +0.5, +4.4). Its seed 0 again
#   picks an unusually high best threshold (0.71; stored: 0.83; every other rerun of the
#   page picks 0.05 to 0.22), so that oddity of K = 64 seed 0 repeats on both machines
#   while its mIoU moved.
# * K = 32, the paper's value, stays level with SEAM on average (+0.4 ± 6.0, from -5.9 to
#   +5.9 per seed).
