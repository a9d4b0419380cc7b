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
# # Is the benchmark right? A design study
#
# {doc}`01_wsss_and_cams` found that the synthetic benchmark does not show the failure it
# was built for: its CAMs spread over the background and sit a few pixels above their
# objects, instead of covering the discriminative part and missing the body. This page
# asks what causes that, and whether a small change gives a benchmark that does show it.
#
# **How it was run.** `benchmarks/benchmark_design.py` trains each candidate's plain CAM
# base (no PPC: the benchmark is chosen without looking at the method it will judge) and,
# where shown, the fully supervised network of the same size, 300 steps each, and scores
# the seeds on the benchmark's **val** split (400 images), never on the train split that
# the other chapters report. A candidate is judged by four criteria (`ppc.design`), written
# down before the first candidate ran and not changed since:
#
# | | criterion | why |
# |---|---|---|
# | C1 | foreground precision >= recall | the seeds *under*-segment (miss, not spill) |
# | C2 | part recall >= body recall + 10 points | they find the discriminative part first |
# | C3 | abs(offset) <= 1.5 px in y and in x | the CAMs sit on their objects |
# | C4 | full supervision >= 70 mIoU, CAM <= 0.6 x it | a gap worth closing |
#
# The rule was: try candidates cheapest change first, and make the first one that meets
# all four on 3 seeds the new default. Candidates A-F were listed before any result;
# G-O were added after the earlier ones' first seed (the script says so beside each).
# Every number is measured on the **synthetic** data on a 2-core CPU; none is a VOC
# number.

# %% tags=["parameters"]
report_path = "../results/benchmark_design/report.json"

# %%
import json
from pathlib import Path

import pandas as pd

from ppc.design import table, verdicts

report = json.loads(Path(report_path).read_text())
pd.set_option("display.max_colwidth", 80)
table(report)

# %% [markdown]
# CAM columns: best-threshold mIoU of the CAM base's seeds and, at that threshold, the
# precision and recall of their foreground, the recall of part and of body pixels (%), the
# CAM centroid minus the object centroid (px; negative y: above), and the area the seeds
# mark over the objects' area (recall / precision: above 1 they spill). Mean ± std over
# the seeds run (one value: one seed). The runs are stored in `results/benchmark_design/`
# (config, summary, curve and coverage of each).

# %%
verdicts(report)

# %% [markdown]
# ## The seeds, seen
#
# The first six val images, with the CAM of each image's first class and the seeds at the
# run's best threshold, for seed 0 of three candidates. A and B share their images (the
# benchmark is the same; only the backbone's dilation differs); F has its own, with one
# body colour.

# %%
import matplotlib.pyplot as plt
import torch

from ppc.design import seed_figure

torch.set_num_threads(2)
for name in ("A", "B", "F"):
    seed_figure(Path(report_path).parent / name / "cam-seed0",
                title=f"{name}: {report[name]['what']}")
    plt.show()

# %% [markdown]
# In these six images:
#
# * **A** (v1): the CAMs are diffuse and lie beside or above the objects.
# * **B** (no dilation): the CAMs light up every body-coloured blob, decoys included. In
#   v1 a body colour is evidence for a group of classes.
# * **F** (no dilation, one body colour): the CAMs peak on the discriminative parts, the
#   textbook picture. Yet at the best threshold (0.20, after each map is min-max
#   normalised) the seeds still reach body-coloured clutter and neighbouring objects.
#   That is where F misses C1.

# %% [markdown]
# ## What the study says
#
# * **No candidate meets all four criteria.** By the rule fixed beforehand, the benchmark
#   stays as it was (A), and so do the runs of every other chapter. One candidate meets
#   C1 (L, below), and its CAM is too good for C4. In A-K, at the best threshold, every
#   candidate's seeds mark more pixels than its objects have: the area ratio is 1.12 to
#   1.68.
# * **v1's spill and most of its offset come from the backbone's receptive field.** The
#   small backbone dilates its last two blocks (2 and 4), so every CAM cell sees the whole
#   64 px image. A classifier trained with global average pooling may then put its
#   evidence anywhere in the image. Without dilation (B, receptive field 33 px, 3 seeds),
#   the seeds change a lot:
#   * CAM mIoU 28.1 → 56.4 and precision 28.1 → 59.6;
#   * part recall 36.3 → 87.8, now above body recall (76.9);
#   * offset y −2.0 → −1.2 px.
#
#   At 41 px (D, one seed) the offset is back at −2.7 px. v1's offset also varies between
#   seeds (−3.2, −0.2 and −2.4 px), so single-seed offsets say little.
# * **The shared body colours make the CAMs use the body.** In v1 a body colour names a
#   group of three classes, so the body is evidence too. With one body colour for every
#   class, a classifier has only the part to go on:
#   * without dilation (F against B, 3 seeds each), body recall falls 76.9 → 62.4, while
#     part recall stays at 85-88;
#   * with v1's dilated backbone (E, 3 seeds), the CAMs stay weak (34.6).
# * **Why C1 may be out of reach here (a hypothesis).** A CAM trained from scratch with
#   average pooling fires wherever its receptive field holds the part: a blob about the
#   receptive field's size around the part. If so, two criteria pull against each other:
#   * to stay inside the object (C1), that blob must be smaller than the object;
#   * to name the class of every body pixel, full supervision must see the part from all
#     of them, which needs a receptive field about the object's size.
#
#   Larger bodies (G) raised recall and lowered full supervision to 79.1. A part at the
#   body's centre (I) kept the seeds tighter, but raised CAM to 62.0, above 0.6 x full
#   supervision (C4). Both fit the hypothesis, with one seed each; the figures above add
#   a second cause, the seeds' reach onto clutter at a low threshold.
# * **A stand-in for ImageNet pre-training did not help either.** Real CAMs come from
#   ImageNet-pretrained networks, whose features are local before any WSSS training.
#   `ppc.pretrain` pre-trains the small backbone on a dense task of its own: name the
#   colour of every pixel, on images of random ellipses. After 300 steps (51 s here) it
#   names the colour of 97.3% of the pixels of unseen images. Starting from it, with one
#   seed each:
#   * on v1 (J), CAM mIoU rises 28.1 → 47.9, but the seeds still spill (area ratio 1.51),
#     cover the body more than the part (71.2 / 63.0), and sit −2.2 px above;
#   * with one body colour (K), the seeds are poor (25.3): part 63.3 against body 35.5,
#     but precision 25.7, and they sit +3.4 px below.
#
#   J and K were rerun on 2 December from a backbone regenerated with the documented
#   command on that day's machine, where the file they used before could not be
#   regenerated (its own commit's code gives the same weights as the current code there;
#   the math libraries round differently on another CPU, see {doc}`06_ablation_components`).
#   The reading did not change (before: J 49.0, K 23.5; `report.json` at commit
#   `b6bfe66`).
# * **F comes closest: no dilation and one body colour.** It meets:
#   * C2: part 85.0 against body 62.4;
#   * C3: −0.5 px;
#   * C4, narrowly: CAM 49.7 ± 4.4 against 0.6 x 83.3 = 50.0.
#
#   It misses C1 (precision 56.2, recall 63.6). Adopting it would mean changing the rule
#   after seeing the results, so the book does not; the decision is left open. One thing
#   could inform it and was not measured: whether real CAM seeds meet C1 on PASCAL VOC
#   (there is no VOC on this machine). If they do not either, C1 asks more of the
#   benchmark than real data shows.
#
#   The one public per-class table of CAM seed precision and recall on VOC *train* that
#   we found points that way, but it is weak evidence: a user's reproduction of the
#   ResNet-38 CAM of PSA ([psa issue 13](https://github.com/jiwoon-ahn/psa/issues/13),
#   2019), at mIoU 42.3 (the PSA paper has 48), at PSA's fixed background score 0.2
#   rather than the best threshold; the copy we could read stops after 12 of the 20
#   classes. Precision is below recall in 10 of those 12 (aeroplane 40.8 / 93.8, bird
#   39.6 / 86.1, bottle 31.9 / 81.9; cat 73.3 / 57.9
#   and dog 66.4 / 63.4 are the exceptions). We found no paper that reports these
#   numbers for CAM or SEAM seeds; the papers' own words differ (some stress missed
#   object pixels, others false activations on co-occurring background).
#
# * **What C3 measures.** It averages signed offsets over (image, class) pairs, so
#   offsets in opposite directions cancel: it detects a shift in one direction, not
#   scatter. Per pair, the offsets scatter widely in every candidate (standard deviation
#   of offset y 6.8 to 11.2 px over pairs; 4.0 px for C), so passing C3 says that the CAMs
#   are not displaced one way, not that each one sits on its object. The criterion stays
#   as it was written before the runs.
#
# * **Without the decoys, C1 holds, and then C4 cannot (L-O, seed 0, CAM only, added on
#   2 December).** In F's figure the seeds reach body-coloured clutter and neighbouring
#   objects, so L removes the body-coloured clutter and M keeps one object per image:
#   * L meets C1, C2 and C3 (precision 75.2 against recall 74.6, area ratio 0.99; part
#     89.8 against body 73.8; −0.3 px). But its CAM mIoU is 64.7, and C4 asks for at most
#     0.6 x full supervision: no full supervision (at most 100) allows more than 60. Its
#     full supervision was not trained.
#   * M misses C1 by a hair (62.2 against 62.3) and C3 (+1.8 px).
#   * Larger bodies on L, to leave more of each object beyond the part's reach (N: 12-20
#     px, O: 16-24 px), lower the CAM (58.4, 56.4) but lose C1 again (67.6 / 72.0 and
#     65.2 / 71.9): the best threshold drops (0.12, 0.02) to take in the body, and the
#     seeds spill.
#
#   Within this family C1 and C4 pull against each other: the threshold is chosen for the
#   best mIoU, and it goes down until the seeds cover the body, spilling unless the CAM
#   is already good. That is a property of scoring seeds at their best threshold, which
#   real CAMs are scored at too; so C1, as written, may not be meetable together with C4.
#   Whether to keep it is the maintainers' call. The figure places every candidate by the
#   two criteria (means over its seeds).

# %%
from ppc.design import criteria_figure

criteria_figure(report)
plt.show()

# %% [markdown]
# In the figure no candidate sits in the upper left, where C1 and C4 both hold.
#
# **For the rest of the book** this means: the ablations measure PPC on a benchmark whose
# CAM seeds are spread and displaced, not one where they cover only the discriminative
# part. Read their gains and losses as effects on that kind of seed.
#
# Rerun the study, or add a candidate (`CANDIDATES` in the script), with
#
# ```bash
# .venv/bin/python benchmarks/benchmark_design.py --candidates A B F --seeds 0 1 2 --full \
#     --out runs/design -- --threads 2
# ```
#
# Every run takes about 2 minutes here. Finished runs are reused, and
# `--out results/benchmark_design` reuses this page's runs. To run the training
# notebook on candidate F instead of the book's benchmark (in a folder of its own, so the
# book's VOC-layout copy is left alone):
#
# ```bash
# .venv/bin/python -m ppc.notebooks 05_training -p voc_root /tmp/bench_f -p out_dir /tmp/run_f \
#     -p extra '{"dilations": [1, 1], "synthetic__body_groups": 1}' -o /tmp/run_f.ipynb
# ```
