"""The paper's ablations as sweeps of the training notebook.

Each row of a family is a parameter set of ``notebooks/05_training.py``; every (row, seed)
is one papermill execution whose run folder ``results/ablations/<family>/<row>/seed<k>/``
keeps the executed notebook (``notebook.ipynb``, numbers only), ``config.json``,
``metrics.jsonl``, ``curve.csv`` and ``summary.json`` (config, seed, versions, git SHA).
A finished run is never recomputed, so an interrupted sweep resumes where it stopped, and
deleting one run folder recomputes only that run.

    python -m ppc.ablate components --seeds 3
    python -m ppc.ablate --list
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .notebooks import ROOT, execute

RESULTS = ROOT / "results" / "ablations"
#: the synthetic benchmark in the VOC layout, shared by every run (written once)
VOC_ROOT = ROOT / "results" / "synthetic_voc"


@dataclass(frozen=True)
class Row:
    """One row of an ablation table: a name and the training notebook's parameters."""

    name: str
    parameters: dict = field(default_factory=dict)
    paper: str = "not available"  # the paper's VOC number for this row, where known

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")


def _ppc(**switches) -> dict:
    return {f"ppc__{k}": v for k, v in switches.items()}


def _components(base: str) -> list[Row]:
    paper_base, paper_full = ("55.4", "61.5") if base == "seam" else ("n/a", "n/a")
    off = dict(cross_prototype=False, cross_cam=False, intra=False)
    rows = [
        Row(f"{base}: base", {"base": base, "use_ppc": False}, paper_base),
        Row(f"{base}: + cross-prototype", {"base": base, "extra": _ppc(**{
            **off, "cross_prototype": True})}),
        Row(f"{base}: + cross-CAM", {"base": base, "extra": _ppc(**{**off, "cross_cam": True})}),
        Row(f"{base}: + cross-prototype + cross-CAM", {"base": base, "extra": _ppc(
            intra=False)}),
        Row(f"{base}: + intra, no mining or sampling", {"base": base, "extra": _ppc(
            prototype_mining=False, pixel_sampling=False)}),
        Row(f"{base}: + intra + prototype mining", {"base": base, "extra": _ppc(
            pixel_sampling=False)}),
        Row(f"{base}: + intra + mining + pixel sampling (PPC)", {"base": base}, paper_full),
    ]
    return rows


FAMILIES: dict[str, list[Row]] = {
    "components": _components("seam") + _components("cam"),
    "top_k": [Row(f"K = {k}", {"base": "seam", "extra": _ppc(top_k=k)},
                  "61.5 (K = 32)" if k == 32 else "not available")
              for k in (8, 16, 32, 64, 128)],
    "transform": [
        Row(name, {"base": "seam", "extra": {f"view__{k}": v for k, v in view.items()}})
        for name, view in (
            ("scale 0.5", {"scale": 0.5}),
            ("flip", {"scale": 1.0, "flip": True}),
            ("rotate 90", {"scale": 1.0, "rotate": 90.0}),
            ("scale 0.5 + flip", {"scale": 0.5, "flip": True}),
            ("scale 0.5 + rotate 90", {"scale": 0.5, "rotate": 90.0}),
            ("scale 0.5 + flip + rotate 90", {"scale": 0.5, "flip": True, "rotate": 90.0}),
        )
    ],
    "tau": [Row(f"tau = {t}", {"base": "seam", "extra": _ppc(tau=t)},
                "61.5 (tau = 0.1)" if t == 0.1 else "not available")
            for t in (0.05, 0.1, 0.2, 0.5)],
    "bg_threshold": [Row(f"pseudo-label background = {b}", {"base": "seam",
                                                              "extra": _ppc(bg_threshold=b)})
                     for b in (0.1, 0.2, 0.3, 0.4)],
}


def run_dir(family: str, row: Row, seed: int, results: Path = RESULTS) -> Path:
    return Path(results) / family / row.slug / f"seed{seed}"


def run_row(family: str, row: Row, seed: int, *, results: Path = RESULTS,
            voc_root: Path = VOC_ROOT, base_parameters: dict | None = None) -> dict:
    """Execute (or reuse) one run; returns its summary."""
    out = run_dir(family, row, seed, results)
    summary_path = out / "summary.json"
    if summary_path.exists() and (out / "notebook.ipynb").exists():
        return json.loads(summary_path.read_text())
    out.mkdir(parents=True, exist_ok=True)
    parameters = {"dataset": "synthetic", "voc_root": str(voc_root), "seed": seed,
                  "out_dir": str(out), "show_figures": False, **(base_parameters or {}),
                  **row.parameters}
    extra = {**(base_parameters or {}).get("extra", {}), **row.parameters.get("extra", {})}
    parameters["extra"] = extra
    tmp = out / ".unfinished.ipynb"
    execute("05_training", parameters, output=tmp, progress=False)
    tmp.replace(out / "notebook.ipynb")  # the run counts as finished only now
    return json.loads(summary_path.read_text())


def sweep(family: str, seeds=(0, 1, 2), *, results: Path = RESULTS, voc_root: Path = VOC_ROOT,
          rows: list[Row] | None = None, base_parameters: dict | None = None,
          log=print) -> pd.DataFrame:
    """Run every (row, seed) of ``family`` not run yet; return all their results."""
    rows = rows if rows is not None else FAMILIES[family]
    for row in rows:
        for seed in seeds:
            started = time.perf_counter()
            done = (run_dir(family, row, seed, results) / "notebook.ipynb").exists()
            summary = run_row(family, row, seed, results=results, voc_root=voc_root,
                              base_parameters=base_parameters)
            if log:
                how = "stored" if done else f"{time.perf_counter() - started:.0f} s"
                log(f"{family} | {row.name} | seed {seed}: mIoU "
                    f"{100 * summary['best_miou']:.1f} ({how})")
    return collect(family, results=results, rows=rows)


def collect(family: str, *, results: Path = RESULTS, rows: list[Row] | None = None
            ) -> pd.DataFrame:
    """One line per stored run of ``family``: row, seed, mIoU (%), threshold, paper."""
    rows = rows if rows is not None else FAMILIES[family]
    records = []
    for order, row in enumerate(rows):
        for path in sorted((Path(results) / family / row.slug).glob("seed*/summary.json")):
            summary = json.loads(path.read_text())
            records.append({"order": order, "row": row.name, "seed": int(path.parent.name[4:]),
                            "miou": 100 * summary["best_miou"],
                            "threshold": summary["best_threshold"], "paper": row.paper})
    return pd.DataFrame(records, columns=["order", "row", "seed", "miou", "threshold", "paper"])


def table(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std over seeds per row, in the family's order, beside the paper's number."""
    out = []
    for (_, row), group in frame.groupby(["order", "row"], sort=True):
        values = group["miou"].tolist()
        std = statistics.stdev(values) if len(values) > 1 else float("nan")
        out.append({"row": row, "ours: mIoU (synthetic train)": f"{statistics.mean(values):.1f}"
                    f" ± {std:.1f}", "seeds": len(values),
                    "paper: VOC train seeds": group["paper"].iloc[0]})
    return pd.DataFrame(out)


def plot(frame: pd.DataFrame, title: str = ""):
    """Mean ± std of each row (seeds as dots) as a seaborn point plot; returns the figure."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    order = frame.sort_values("order")["row"].drop_duplicates().tolist()
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(order) + 1.2))
    if len(frame):
        sns.stripplot(data=frame, y="row", x="miou", order=order, color="0.6", size=4, ax=ax)
        sns.pointplot(data=frame, y="row", x="miou", order=order, errorbar="sd",
                      linestyle="none", color="tab:blue", ax=ax)
    ax.set_xlabel("best-threshold seed mIoU (%), synthetic train split")
    ax.set_ylabel("")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ppc.ablate", description=__doc__)
    parser.add_argument("families", nargs="*", help=f"families: {', '.join(FAMILIES)}")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per row")
    parser.add_argument("--list", action="store_true", help="list families and rows")
    args = parser.parse_args(argv)
    if args.list or not args.families:
        for name, rows in FAMILIES.items():
            print(f"{name}: " + "; ".join(r.name for r in rows))
        return 0
    unknown = [f for f in args.families if f not in FAMILIES]
    if unknown:
        print(f"error: unknown ablation family {unknown}; expected {list(FAMILIES)}",
              file=sys.stderr)
        return 2
    for family in args.families:
        frame = sweep(family, range(args.seeds), log=lambda m: print(m, flush=True))
        print(table(frame).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
