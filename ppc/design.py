"""The synthetic benchmark's design criteria, and tables of a design study's report.

A benchmark for WSSS is worth having only if a plain CAM baseline fails on it the way CAMs
fail on real images (they cover the discriminative part and miss the body) while a fully
supervised network of the same size does well. ``benchmarks/benchmark_design.py`` trains
candidate benchmarks' CAM bases (and full supervision) and writes a report; :func:`judge`
checks the criteria, which were fixed before any candidate was run:

* C1 under-segmentation: foreground precision >= foreground recall;
* C2 part first: part recall >= body recall + 10 points;
* C3 on the object: |offset_y| and |offset_x| <= 1.5 px;
* C4 a gap worth closing: full supervision >= 70 mIoU and CAM <= 0.6 x full supervision.

All on the *val* split, at each run's best background threshold, means over seeds.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pandas as pd

from ._format import mean_std

CRITERIA = ("C1 precision >= recall", "C2 part >= body + 10", "C3 |offset| <= 1.5 px",
            "C4 FS >= 70, CAM <= 0.6 FS")


def judge(cams: list[dict], full: list[dict]) -> dict[str, bool]:
    """The criteria for one candidate: ``cams`` are its CAM-base runs (``miou`` in %, and
    :func:`ppc.experiment.seed_coverage`'s fractions and offsets), ``full`` its fully
    supervised runs (``miou``); C4 is left out without the latter."""
    if not cams:
        raise ValueError("judge needs at least one CAM run")

    def mean(key, rows=cams):  # rounded: 100 * (0.6 - 0.5) must count as 10 points
        return round(statistics.mean(r[key] for r in rows), 9)

    verdict = {
        CRITERIA[0]: mean("precision") >= mean("recall"),
        CRITERIA[1]: round(100 * (mean("part_recall") - mean("body_recall")), 6) >= 10,
        CRITERIA[2]: max(abs(mean("offset_y")), abs(mean("offset_x"))) <= 1.5,
    }
    if full:
        verdict[CRITERIA[3]] = (mean("miou", full) >= 70
                                and mean("miou") <= 0.6 * mean("miou", full))
    return verdict


def table(report: dict) -> pd.DataFrame:
    """One row per candidate of a report (``benchmarks/benchmark_design.py``'s
    ``report.json``): the CAM base's mIoU, precision, recall, part and body recall (%),
    offsets (px), the area its seeds mark over the area of the objects (recall /
    precision: above 1, the seeds spill) as mean ± std over its seeds, full supervision's
    mIoU, and the seeds."""
    rows = []
    for name, entry in report.items():
        cams, full = list(entry["cam"].values()), list(entry["full"].values())

        def col(key, scale=100.0, digits=1, rows=cams):
            return mean_std([scale * r[key] for r in rows], digits=digits)

        rows.append({
            "candidate": name, "what changes": entry["what"],
            "CAM mIoU": col("miou", 1.0), "precision": col("precision"),
            "recall": col("recall"), "part recall": col("part_recall"),
            "body recall": col("body_recall"), "offset y (px)": col("offset_y", 1.0),
            "offset x (px)": col("offset_x", 1.0),
            "seed area / object area": mean_std(
                [r["recall"] / r["precision"] if r["precision"] > 0 else float("inf")
                 for r in cams], digits=2),
            "full sup. mIoU": col("miou", 1.0, rows=full),
            "seeds (CAM / full)": f"{len(cams)} / {len(full)}",
        })
    return pd.DataFrame(rows).set_index("candidate")


def verdicts(report: dict) -> pd.DataFrame:
    """Which criterion each candidate meets ("yes", "no", or "-" where not measured)."""
    frame = pd.DataFrame({name: {c: ("-" if c not in entry["verdict"]
                                     else "yes" if entry["verdict"][c] else "no")
                                 for c in CRITERIA}
                          for name, entry in report.items()}).T
    frame["all"] = ["yes" if (row == "yes").all() else "no" for _, row in frame.iterrows()]
    frame.index.name = "candidate"
    return frame


def criteria_figure(report: dict):
    """C1 against C4 for every candidate of a report: the CAM base's mIoU (x) and its
    precision minus recall in points (y, C1 above 0), means over its seeds. C4 holds left
    of 0.6 x full supervision, drawn at the median of the candidates that measured it.
    Returns the figure; each point is labelled with its candidate's name."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    full = [statistics.mean(r["miou"] for r in e["full"].values())
            for e in report.values() if e["full"]]
    for name, entry in report.items():
        cams = list(entry["cam"].values())
        x = statistics.mean(r["miou"] for r in cams)
        y = 100 * statistics.mean(r["precision"] - r["recall"] for r in cams)
        ax.scatter(x, y, color="C0" if entry["full"] else "C1", s=18)
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 3), fontsize=8)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_ylim(top=max(ax.get_ylim()[1], 5.0))  # room for the C1 side
    ax.text(0.01, 0.5, "C1 holds above", transform=ax.get_yaxis_transform(), fontsize=8,
            color="grey", va="bottom")
    if full:
        median = statistics.median(full)
        ax.axvline(0.6 * median, color="grey", lw=0.8, ls="--")
        ax.text(0.6 * median, 0.97, f"C4 holds left (0.6 x {median:.1f}) ",
                transform=ax.get_xaxis_transform(), fontsize=8, color="grey", va="top",
                ha="right")
    ax.set_xlabel("CAM mIoU (val, best threshold)")
    ax.set_ylabel("precision - recall (points)")
    ax.set_title("blue: full supervision measured; orange: CAM only", fontsize=8)
    fig.tight_layout()
    return fig


def seed_figure(run_dir, num_images: int = 6, device: str = "cpu", title: str = ""):
    """A figure of a finished CAM-base run's seeds on the first ``num_images`` images of
    its evaluation split: image, ground truth, the CAM of the first class present, and the
    pseudo mask at the run's best background threshold (``ppc.plotting.show_samples``)."""
    from .infer import sample_cams, seeds_at
    from .plotting import show_samples
    from .train import build_dataset, load_trained

    run_dir = Path(run_dir)
    config, model = load_trained(run_dir, device)
    data = build_dataset(config, config.eval_split, train=False)
    samples = [data[i] for i in range(num_images)]
    cams = sample_cams(model, samples, config.scales, config.flip, device)
    best = json.loads((run_dir / "summary.json").read_text())["best_threshold"]
    fig = show_samples(samples, data.class_names, cams=cams,
                       pseudo=seeds_at(samples, cams, best))
    fig.suptitle(f"{title or run_dir} (seeds at background threshold {best:.2f})",
                 fontsize=9, y=1.03)
    return fig
