"""The paper's ablations as sweeps of the training notebook.

Each row of a family is a parameter set of ``notebooks/05_training.py``; every (row, seed)
is one papermill execution whose run folder ``results/ablations/<family>/<row>/seed<k>/``
keeps the executed notebook (``notebook.ipynb``, numbers only), ``config.json``,
``metrics.jsonl``, ``curve.csv``, ``summary.json`` (config, seed, versions, git SHA) and
``coverage.json`` (where the seeds are right: discriminative parts against object bodies,
and the CAMs' offset from their objects; :func:`ppc.experiment.seed_coverage`).
A finished run is never recomputed, so an interrupted sweep resumes where it stopped, and
deleting one run folder recomputes only that run. A row whose configuration equals a
finished run of another row (``K = 32`` is the full PPC row) copies that run and says so
in ``same_run_as.txt``. Runs of the same configurations made elsewhere (a rerun of a
run's ``config.json`` on another machine, under ``results/replication/``) are read beside
the stored ones by :func:`replication_table`. Where a run folder keeps its ``model.pt``,
:func:`weight_table` measures where the intra-view term's averagings put their weight on
the model's pseudo labels and keeps it in ``intra_weights.json``
(:func:`ppc.experiment.intra_weights`).

    python -m ppc.ablate components --seeds 3
    python -m ppc.ablate --list
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ._format import mean_std
from .config import RunConfig
from ._checks import blocking_file, check_output, read_json
from .evaluate import WEIGHT_REGIONS
from .notebooks import ROOT, execute

RESULTS = ROOT / "results" / "ablations"
#: the synthetic benchmark in the VOC layout, shared by every run (written once)
VOC_ROOT = ROOT / "results" / "synthetic_voc"
#: the runs of a second machine: stored configurations rerun (:func:`replication_table`),
#: and more seeds and rows made there (chapter 6)
REPLICATION = ROOT / "results" / "replication"


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


def _components(base: str, sampling_parts: bool = False) -> list[Row]:
    """PPC's pieces added one at a time to ``base``; ``sampling_parts``: with
    :func:`_sampling_parts` before the full method."""
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
    if sampling_parts:
        rows[-1:-1] = _sampling_parts(base)
    return rows


def _sampling_parts(base: str) -> list[Row]:
    """Hard pixel sampling taken apart (not in the paper): every pixel, with the classes'
    shares of the loss changed one part at a time (the foreground classes balanced, the
    background at its share of the pixels; the background's share alone lowered to one
    class's; the foreground's alone raised to its share in the next row; the background
    balanced against the foreground, the foreground classes by pixels; all of it: the
    class-balanced mean), then the class-balanced mean over a random half, without the
    hard band."""
    every = dict(sampling_random_fraction=1.0, sampling_hard_fraction=0.0)
    return [
        Row(f"{base}: + intra + mining + every pixel, foreground classes balanced", {
            "base": base, "extra": _ppc(**every, sampling_balance="foreground classes")}),
        Row(f"{base}: + intra + mining + every pixel, background alone at one class's share",
            {"base": base, "extra": _ppc(**every, sampling_balance="background alone")}),
        Row(f"{base}: + intra + mining + every pixel, foreground alone raised", {
            "base": base, "extra": _ppc(**every, sampling_balance="foreground alone")}),
        Row(f"{base}: + intra + mining + every pixel, background balanced against foreground",
            {"base": base, "extra": _ppc(**every, sampling_balance="background vs foreground")}),
        Row(f"{base}: + intra + mining + class-balanced, every pixel", {"base": base, "extra": _ppc(
            **every)}),
        Row(f"{base}: + intra + mining + random half per class, no hard band", {
            "base": base, "extra": _ppc(sampling_hard_fraction=0.0)}),
    ]


FAMILIES: dict[str, list[Row]] = {
    "components": _components("seam", sampling_parts=True) + _components(
        "cam", sampling_parts=True),
    "top_k": [Row(f"K = {k}", {"base": "seam", "extra": _ppc(top_k=k)},
                  "61.5 (K = 32)" if k == 32 else "not available")
              for k in (8, 16, 32, 64, 128)],
    "transform": [
        Row(name, {"base": "seam", "extra": {f"view__{k}": v for k, v in view.items()}},
            "61.5 (rescaling to 128x128)" if name == "scale 0.5" else "not available")
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
    "bg_threshold": [Row(f"pseudo-label background = {b}",
                         {"base": "seam", "extra": _ppc(bg_threshold=b)},
                         "61.5 (0.2)" if b == 0.2 else "not available")
                     for b in (0.1, 0.2, 0.3, 0.4)],
}


def run_dir(family: str, row: Row, seed: int, results: Path = RESULTS) -> Path:
    return Path(results) / family / row.slug / f"seed{seed}"


#: what a run folder holds that a row sharing its configuration copies (model.pt is kept
#: out of git, and copied only where it exists)
_RUN_FILES = ("config.json", "summary.json", "curve.csv", "metrics.jsonl", "per_image.csv",
              "coverage.json", "model.pt")
_NOTEBOOK_ONLY = ("show_figures", "epochs")


def row_config(parameters: dict):
    """The :class:`~ppc.config.RunConfig` a run's notebook parameters resolve to, or None
    where it depends on the data (``epochs``)."""
    from .experiment import training_config

    if parameters.get("epochs") is not None:
        return None
    return training_config(**{k: v for k, v in parameters.items() if k not in _NOTEBOOK_ONLY})


def same_run(config, seed: int, results: Path = RESULTS, exclude: Path | None = None
             ) -> Path | None:
    """A finished run folder under ``results`` with the same experiment as ``config``
    (:meth:`~ppc.config.RunConfig.identity`), e.g. ``K = 32`` and the full PPC row."""
    if config is None:
        return None
    identity = config.identity()
    for summary in sorted(Path(results).glob(f"*/*/seed{seed}/summary.json")):
        folder = summary.parent
        if folder == exclude or (folder / "same_run_as.txt").exists():
            continue
        if not (folder / "notebook.ipynb").exists():
            continue
        stored = RunConfig.from_dict(read_json(summary).get("config", {}), summary)
        if stored.identity() == identity:
            return folder
    return None


def run_row(family: str, row: Row, seed: int, *, results: Path = RESULTS,
            voc_root: Path = VOC_ROOT, base_parameters: dict | None = None) -> dict:
    """Execute (or reuse) one run; returns its summary.

    A row whose configuration equals a finished run of another row (``K = 32`` is the full
    PPC row) is not trained again: that run's files are copied, ``same_run_as.txt`` names
    the source, and the notebook is executed on them (it reuses the finished run).
    """
    out = run_dir(family, row, seed, results)
    summary_path = out / "summary.json"
    if summary_path.exists() and (out / "notebook.ipynb").exists():
        add_coverage(out)  # runs stored before coverage.json existed
        return read_json(summary_path)
    out.mkdir(parents=True, exist_ok=True)
    parameters = {"dataset": "synthetic", "voc_root": str(voc_root), "seed": seed,
                  "out_dir": str(out), "show_figures": False, **(base_parameters or {}),
                  **row.parameters}
    extra = {**(base_parameters or {}).get("extra", {}), **row.parameters.get("extra", {})}
    parameters["extra"] = extra
    source = same_run(row_config(parameters), seed, results, exclude=out)
    if source is not None and not summary_path.exists():
        for name in _RUN_FILES:
            if (source / name).exists():
                shutil.copy2(source / name, out / name)
        (out / "same_run_as.txt").write_text(
            f"{source.relative_to(Path(results))}\n(same configuration and seed: the files "
            "here are copies of that run's)\n")
    tmp = out / ".unfinished.ipynb"
    execute("05_training", parameters, output=tmp, progress=False)
    tmp.replace(out / "notebook.ipynb")  # the run counts as finished only now
    add_coverage(out)
    return read_json(summary_path)


def add_coverage(out: Path) -> dict | None:
    """``coverage.json`` of a run folder (:func:`ppc.experiment.coverage`); a row that
    copies another row's run takes its source's."""
    from .experiment import coverage

    out = Path(out)
    if (out / "same_run_as.txt").exists() and not (out / "coverage.json").exists():
        source = out.parents[2] / (out / "same_run_as.txt").read_text().splitlines()[0]
        if not (source / "coverage.json").exists():
            return None
        shutil.copy2(source / "coverage.json", out / "coverage.json")
    return coverage(out)


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


#: columns of :func:`collect` from each run's ``coverage.json`` (fractions; NaN where a
#: run's seeds were not kept to measure them)
COVERAGE = ("part_recall", "body_recall", "precision", "background_false_positive",
            "offset_y", "offset_x")


def _finished_runs(family: str, row: Row, results: Path, seeds=None) -> list[tuple[int, Path]]:
    """``(seed, run folder)`` of the row's finished runs (those with a ``summary.json``),
    by seed; ``seeds``: only these (default: every stored seed)."""
    found = []
    for path in sorted((Path(results) / family / row.slug).glob("seed*/summary.json")):
        seed = int(path.parent.name[4:])
        if seeds is None or seed in seeds:
            found.append((seed, path.parent))
    return found


def collect(family: str, *, results: Path = RESULTS, rows: list[Row] | None = None,
            with_base: str | None = None, seeds=None) -> pd.DataFrame:
    """One line per stored run of ``family``: row, seed, mIoU (%), threshold, paper, and
    the seed coverage (:data:`COVERAGE`). ``with_base``: a row of the ``components``
    family (e.g. ``"seam: base"``) whose runs are put first, as the no-PPC reference.
    ``seeds``: only the runs of these seeds (default: every stored seed)."""
    if rows is None and family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; the families: {', '.join(FAMILIES)}")
    if not Path(results).is_dir():
        raise ValueError(f"results folder {results} does not exist (or is not a folder); pass "
                         "the folder of a sweep (python -m ppc.ablate ... --results FOLDER)")
    rows = rows if rows is not None else FAMILIES[family]
    if with_base is not None:
        base = [r for r in FAMILIES["components"] if r.name == with_base]
        if not base:
            raise ValueError(f"with_base={with_base!r} is not a row of the components "
                             f"family: {[r.name for r in FAMILIES['components']]}")
        first = collect("components", results=results, rows=base, seeds=seeds)
        rest = collect(family, results=results, rows=rows, seeds=seeds)
        return pd.concat([first, rest.assign(order=rest["order"] + 1)], ignore_index=True)
    records = []
    for order, row in enumerate(rows):
        for seed, folder in _finished_runs(family, row, results, seeds):
            summary = read_json(folder / "summary.json")
            coverage_path = folder / "coverage.json"
            coverage = read_json(coverage_path) if coverage_path.exists() else {}
            records.append({"order": order, "row": row.name, "seed": seed,
                            "miou": 100 * summary["best_miou"],
                            "threshold": summary["best_threshold"], "paper": row.paper,
                            **{k: coverage.get(k, float("nan")) for k in COVERAGE}})
    return pd.DataFrame(records, columns=["order", "row", "seed", "miou", "threshold", "paper",
                                          *COVERAGE])


def coverage_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std over seeds of the seed coverage (%) per row: recall on discriminative
    parts and on object bodies, precision, background pixels marked foreground; and how
    far the CAMs sit from their objects (pixels, positive: below / right)."""
    names = {"part_recall": "part recall", "body_recall": "body recall",
             "precision": "precision", "background_false_positive": "background marked",
             "offset_y": "CAM offset y (px)", "offset_x": "CAM offset x (px)"}
    out = []
    for (_, row), group in frame.groupby(["order", "row"], sort=True):
        line = {"row": row}
        for key, name in names.items():
            scale = 1 if key.startswith("offset") else 100
            line[name] = mean_std((scale * group[key].dropna()).tolist())
        out.append(line)
    return pd.DataFrame(out)


#: short column names of :func:`weight_table` for :data:`ppc.evaluate.WEIGHT_REGIONS`, in
#: its order (true region -> pseudo label)
WEIGHT_COLUMNS = dict(zip(WEIGHT_REGIONS, (
    "bg -> bg", "bg -> object", "part -> its class", "part -> bg", "body -> its class",
    "body -> bg", "object -> other class"), strict=True))


def weight_table(family: str, rows: list[str], *, results: Path = RESULTS,
                 seeds=None) -> pd.DataFrame:
    """Where the intra-view term's averagings put their weight on each trained run's own
    pseudo labels (:func:`ppc.experiment.intra_weights`; % of the weight, mean ± std over
    seeds): one line per row of ``family`` named in ``rows`` and weighting. Finished runs
    with neither ``intra_weights.json`` nor ``model.pt`` are left out (``seeds`` counts the
    rest); ``seeds``: only these seeds (default: every stored seed)."""
    from .experiment import intra_weights

    unknown = sorted(set(rows) - {row.name for row in FAMILIES[family]})
    if unknown:
        raise ValueError(f"rows {unknown} are not rows of the {family} family")
    out = []
    for row in (r for r in FAMILIES[family] if r.name in rows):
        found = [weights["shares"] for _, folder in _finished_runs(family, row, results, seeds)
                 if (weights := intra_weights(folder)) is not None]
        for weighting in (found[0] if found else {}):
            line = {"row": row.name, "weighting": weighting, "seeds": len(found)}
            for region, name in WEIGHT_COLUMNS.items():
                line[name] = mean_std([100 * shares[weighting][region] for shares in found])
            out.append(line)
    return pd.DataFrame(out, columns=["row", "weighting", "seeds", *WEIGHT_COLUMNS.values()])


def table(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std over seeds per row, in the family's order, and the median (what the paper
    reports, of 3 runs), beside the paper's number."""
    out = []
    for (_, row), group in frame.groupby(["order", "row"], sort=True):
        values = group["miou"].tolist()
        out.append({"row": row, "ours: mIoU (synthetic train)": mean_std(values),
                    "median": f"{np.median(values):.1f}" if values else "n/a",
                    "seeds": len(values),
                    "paper: VOC train seeds": group["paper"].iloc[0]})
    return pd.DataFrame(out)


def _paired_differences(frame: pd.DataFrame, reference) -> list[tuple[str, str, list[float]]]:
    """``(row, reference row, per-seed differences)`` in the family's order; see
    :func:`paired_table`."""
    missing = sorted({"order", "row", "seed", "miou"} - set(frame.columns))
    if missing:
        raise ValueError(f"frame lacks column(s) {missing}; pass a frame of ppc.ablate.collect")
    if frame.duplicated(["row", "seed"]).any():
        row, seed = frame.loc[frame.duplicated(["row", "seed"]), ["row", "seed"]].iloc[0]
        raise ValueError(f"frame holds row {row!r} seed {seed} more than once (a seed would "
                         "count twice); concatenate frames of different runs only")
    if not callable(reference) and reference not in set(frame["row"]):
        raise ValueError(f"reference {reference!r} is not a row of the frame: "
                         f"{sorted(set(frame['row']))}")
    pick = reference if callable(reference) else (lambda _row: reference)
    by_row = {row: group.set_index("seed")["miou"] for row, group in frame.groupby("row")}
    out = []
    for (_, row), _group in frame.groupby(["order", "row"], sort=True):
        base = pick(row)
        if base == row or base not in by_row:
            continue
        out.append((row, base, (by_row[row] - by_row[base]).dropna().tolist()))
    return out


def _describe(values: list[float]) -> dict:
    return {"mIoU difference (points)": mean_std(values, sign="+"),
            "per seed": ", ".join(f"{v:+.1f}" for v in values),
            "better in": f"{sum(v > 0 for v in values)} of {len(values)} seeds"}


def paired_table(frame: pd.DataFrame, reference) -> pd.DataFrame:
    """Each row's mIoU minus its reference row's, seed by seed, as mean ± std (points).

    Runs with the same seed share the data order and augmentation draws, so the paired
    difference is far less noisy than comparing two means whose seeds vary by several
    points. ``reference``: a row name, or a function from a row name to its reference's
    (e.g. ``"cam: base"`` for the ``cam:`` rows). Only seeds run for both rows count.
    """
    out = [{"row": row, "against": base, **_describe(values)}
           for row, base, values in _paired_differences(frame, reference)]
    return pd.DataFrame(out, columns=["row", "against", "mIoU difference (points)",
                                      "per seed", "better in"])


def replication_table(family: str, rows: list[str], reference, *, with_base: str | None = None,
                      stored: Path = RESULTS, rerun: Path = REPLICATION,
                      labels: tuple[str, str] = ("stored", "rerun")) -> pd.DataFrame:
    """:func:`paired_table` of the same configurations run twice, side by side: the
    ``stored`` runs and their ``rerun`` (e.g. on another machine, whose math libraries
    round differently).

    ``rows``: names of rows of ``family`` (shown where both sets hold a seed run for the
    row and its reference); only seeds run in both sets count (a set may hold more: read
    those with :func:`paired_table`);
    ``reference`` as in :func:`paired_table`, or a list of row names (one line per row and
    reference); ``with_base`` as in :func:`collect`. Column ``every seed``: ``"above"``
    (``"below"``) where the row is above (below) its reference in every seed of both
    sets, else ``"no"``.
    """
    chosen = [r.name for r in FAMILIES[family] if r.name in rows]
    missing = sorted(set(rows) - set(chosen))
    if missing:
        raise ValueError(f"rows {missing} are not rows of family {family!r}: "
                         f"{[r.name for r in FAMILIES[family]]}")
    references = reference if isinstance(reference, (list, tuple)) else [reference]
    frames = [collect(family, results=results, with_base=with_base)
              for results in (stored, rerun)]
    common = set(frames[0]["seed"]) & set(frames[1]["seed"])
    frames = [frame[frame["seed"].isin(common)] for frame in frames]
    out = []
    for ref in references:
        sets = [{row: (base, values) for row, base, values in _paired_differences(frame, ref)}
                for frame in frames]
        for row in chosen:
            if not (sets[0].get(row, (None, []))[1] and sets[1].get(row, (None, []))[1]):
                continue  # no seed run for both the row and its reference in a set
            both = sets[0][row][1] + sets[1][row][1]
            direction = ("above" if all(v > 0 for v in both) else
                         "below" if all(v < 0 for v in both) else "no")
            line = {"row": row, "against": sets[0][row][0]}
            for label, found in zip(labels, sets, strict=True):
                described = _describe(found[row][1])
                line[f"{label}: difference"] = described["mIoU difference (points)"]
                line[f"{label}: per seed"] = described["per seed"]
            line["every seed"] = direction
            out.append(line)
    columns = ["row", "against", *(f"{label}: {what}" for label in labels
                                   for what in ("difference", "per seed")), "every seed"]
    return pd.DataFrame(out, columns=columns)


def plot(frame: pd.DataFrame, title: str = ""):
    """Mean ± std of each row (seeds as dots) as a seaborn point plot; returns the figure."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    order = frame.sort_values("order")["row"].drop_duplicates().tolist()
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(order) + 1.2))
    if len(frame):
        # seaborn jitters the dots with NumPy's global RNG: a fixed draw, so the figure
        # is the same at every execution, and the caller's RNG state is left as it was
        state = np.random.get_state()
        np.random.seed(0)
        try:
            sns.stripplot(data=frame, y="row", x="miou", order=order, color="0.6", size=4,
                          ax=ax)
        finally:
            np.random.set_state(state)
        sns.pointplot(data=frame, y="row", x="miou", order=order, errorbar="sd",
                      linestyle="none", color="tab:blue", ax=ax)
    ax.set_xlabel("best-threshold seed mIoU (%), synthetic train split")
    ax.set_ylabel("")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def main(argv=None) -> int:
    from .cli import OneLineParser, runs_folder  # one-line errors, like python -m ppc

    parser = OneLineParser(prog="python -m ppc.ablate", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("families", nargs="*", help=f"families: {', '.join(FAMILIES)}")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per row")
    parser.add_argument("--list", action="store_true", help="list families and rows")
    parser.add_argument("--results", default=RESULTS, type=runs_folder(
                            "pass a folder, e.g. --results runs/ablations, or leave the "
                            "option out for results/ablations"),
                        help="where the runs go (default: results/ablations, which the book "
                             "reads); another folder keeps a rerun apart until it is complete")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1 (seeds 0..N-1 per row), got {args.seeds}")
    blocking = blocking_file(args.results)
    if blocking is not None:
        parser.error(f"--results {args.results} is not a folder: {blocking} is a file; pass a "
                     "folder (created if missing)")
    if args.list or not args.families:
        for name, rows in FAMILIES.items():
            print(f"{name}: " + "; ".join(r.name for r in rows))
        return 0
    unknown = [f for f in args.families if f not in FAMILIES]
    if unknown:
        print(f"error: unknown ablation family {unknown}; expected {list(FAMILIES)}",
              file=sys.stderr)
        return 2
    try:  # a folder that cannot be made or written fails now, not at the first run
        check_output(Path(args.results) / ".write_check", "--results",
                     "results/ablations/x")
    except ValueError as err:
        parser.error(f"--results {args.results}: {err}")
    for family in args.families:
        frame = sweep(family, range(args.seeds), results=args.results,
                      log=lambda m: print(m, flush=True))
        print(table(frame).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
