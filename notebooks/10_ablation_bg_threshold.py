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
# **Provisional.** These runs predate the faster loss. Rerun at the current code (the
# same values, float rounding moved), the 36 PPC runs of chapter 6 moved by 2.5 points on
# average, up to 6.9, and several of its readings did not hold
# ({doc}`06_ablation_components`). Read the sentences below as provisional until this
# family is rerun at one commit; its base runs (SEAM) are the rerun ones, which came out
# identical to the earlier ones.
#
# * **A lower background score helps, a higher one hurts, monotonically**: against the
#   official 0.2, a score of 0.1 is +3.2 points (above in 2 of 3 seeds, the third equal),
#   0.3 is -2.3 (above in 1 of 3) and 0.4 is -10.0 (below in 3 of 3). 0.1 is the only
#   row of this page above SEAM by more than its spread (+7.2, 3 of 3 seeds).
# * **Where it comes from**: with a lower score more pixels get a class as pseudo label
#   during training, so more of each body is pulled to its class's prototype. Body recall
#   rises (48% at 0.1, 39% at 0.2, 23% at 0.4) without more background marked (19%
#   against 18%) and with a higher precision. On this benchmark the CAMs cover too little
#   of each body, and a low background score counters that.
# * The paper does not sweep this score. These runs are on the train split, which the
#   book reports on; they are not a reason to change the recipe's 0.2. A choice would
#   be made on the synthetic validation split, then reported here.
