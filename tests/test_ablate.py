import json
import shutil
from pathlib import Path

import nbformat
import pytest

from ppc import ablate
from ppc.ablate import FAMILIES, Row
from ppc.experiment import seed_coverage

TINY = {"extra": {"steps": 2, "batch_size": 8, "width": 8, "scales": [1.0], "threads": 2,
                  "synthetic__num_train_aug": 32, "synthetic__num_train": 6,
                  "synthetic__num_val": 4}}


def test_families_cover_the_paper_tables():
    components = [r.name for r in FAMILIES["components"]]
    assert len(components) == 26 and components[0] == "seam: base"
    assert components[-1] == "cam: + intra + mining + pixel sampling (PPC)"
    parts = {r.name: r.parameters.get("extra") for r in FAMILIES["components"]}
    every = {"ppc__sampling_random_fraction": 1.0, "ppc__sampling_hard_fraction": 0.0}
    assert parts["cam: + intra + mining + class-balanced, every pixel"] == every
    assert parts["cam: + intra + mining + every pixel, foreground classes balanced"] == {
        **every, "ppc__sampling_balance": "foreground classes"}
    assert parts["cam: + intra + mining + every pixel, background balanced against "
                 "foreground"] == {**every, "ppc__sampling_balance": "background vs foreground"}
    assert parts["seam: + intra + mining + every pixel, background alone at one class's "
                 "share"] == {**every, "ppc__sampling_balance": "background alone"}
    assert parts["seam: + intra + mining + every pixel, foreground alone raised"] == {
        **every, "ppc__sampling_balance": "foreground alone"}
    assert [r.parameters["extra"]["ppc__top_k"] for r in FAMILIES["top_k"]] == [8, 16, 32, 64,
                                                                                 128]
    assert {"transform", "tau", "bg_threshold"} <= set(FAMILIES)
    slugs = [r.slug for rows in FAMILIES.values() for r in rows]
    assert len(slugs) == len(set(slugs))


def test_sweep_stores_runs_reuses_them_and_recomputes_only_a_deleted_one(tmp_path,
                                                                          monkeypatch):
    rows = [Row("plain cam", {"base": "cam", "use_ppc": False}),
            Row("cam with ppc", {"base": "cam", "extra": {"ppc__top_k": 8}}),
            # the same experiment spelled differently: copied, not trained again
            Row("cam with ppc, tau given", {"base": "cam", "extra": {"ppc__top_k": 8,
                                                                      "ppc__tau": 0.1}})]
    kwargs = dict(results=tmp_path / "results", voc_root=tmp_path / "voc", rows=rows,
                  base_parameters=TINY, log=None)
    frame = ablate.sweep("tiny", seeds=[0], **kwargs)
    assert frame["row"].tolist() == ["plain cam", "cam with ppc", "cam with ppc, tau given"]
    first = ablate.run_dir("tiny", rows[0], 0, tmp_path / "results")
    second = ablate.run_dir("tiny", rows[1], 0, tmp_path / "results")
    summary = json.loads((second / "summary.json").read_text())
    assert summary["config"]["ppc"]["top_k"] == 8 and summary["config"]["seed"] == 0
    assert summary["versions"]["torch"] and "git" in summary
    nb = nbformat.read(second / "notebook.ipynb", as_version=4)
    assert not any(o.output_type == "display_data" for c in nb.cells if c.cell_type == "code"
                   for o in c.outputs)  # numbers only: no figures stored
    third = ablate.run_dir("tiny", rows[2], 0, tmp_path / "results")
    assert (third / "same_run_as.txt").read_text().startswith("tiny/cam-with-ppc/seed0")
    # not trained again: a byte copy of the source, timings and all
    assert (third / "summary.json").read_bytes() == (second / "summary.json").read_bytes()
    assert (third / "notebook.ipynb").exists()  # but its notebook executed on the copy
    assert frame["miou"].iloc[2] == frame["miou"].iloc[1]
    assert not (second / "same_run_as.txt").exists()
    # seed coverage by region, measured from the seeds (the copy takes its source's)
    coverage = json.loads((second / "coverage.json").read_text())
    assert 0 <= coverage["part_recall"] <= 1 and 0 <= coverage["body_recall"] <= 1
    assert coverage["part_pixels"] > 0 and coverage["bg_threshold"] == summary["best_threshold"]
    assert json.loads((third / "coverage.json").read_text()) == coverage
    assert frame["body_recall"].notna().all()
    assert list(ablate.coverage_table(frame).columns) == [
        "row", "part recall", "body recall", "precision", "background marked",
        "CAM offset y (px)", "CAM offset x (px)"]
    assert abs(coverage["offset_y"]) < 64 and coverage["pairs"] > 0
    with pytest.raises(FileNotFoundError, match="finished run"):
        seed_coverage(tmp_path)
    stamp = (first / "notebook.ipynb").stat().st_mtime_ns
    shutil.rmtree(second)
    shutil.rmtree(third)
    again = ablate.sweep("tiny", seeds=[0], **kwargs)
    assert (first / "notebook.ipynb").stat().st_mtime_ns == stamp  # reused
    assert (second / "notebook.ipynb").exists()  # recomputed
    assert not (second / "same_run_as.txt").exists()  # a copy is never the source
    assert again["miou"].tolist() == frame["miou"].tolist()  # deterministic
    table = ablate.table(again)
    assert list(table.columns) == ["row", "ours: mIoU (synthetic train)", "median", "seeds",
                                   "paper: VOC train seeds"]
    # where the intra-view term's weight goes, measured from model.pt, then kept in JSON
    monkeypatch.setitem(FAMILIES, "tiny", rows)
    names = ["plain cam", "cam with ppc"]
    weights = ablate.weight_table("tiny", names, results=tmp_path / "results")
    assert weights["row"].tolist() == ["plain cam"] * 3 + ["cam with ppc"] * 3
    assert weights["weighting"].tolist()[:3] == ["mean over pixels",
                                                 "class-balanced, every pixel",
                                                 "official sampling"]
    assert (weights["seeds"] == 1).all()
    stored = json.loads((second / "intra_weights.json").read_text())
    assert stored["images"] == 6 and stored["split"] == "train"  # all it has
    shares = stored["shares"]["class-balanced, every pixel"]
    assert sum(shares.values()) == pytest.approx(1.0)
    assert weights.iloc[4]["bg -> object"] == f"{100 * shares['background labelled an object']:.1f}"
    (second / "model.pt").unlink()  # read back from the JSON
    assert ablate.weight_table("tiny", names, results=tmp_path / "results").equals(weights)
    (second / "intra_weights.json").unlink()  # neither: the run is left out
    assert ablate.weight_table("tiny", names[1:], results=tmp_path / "results").empty
    with pytest.raises(ValueError, match=r"rows \['no such row'\] are not rows of the tiny"):
        ablate.weight_table("tiny", ["no such row"], results=tmp_path / "results")


def test_command_line_lists_and_refuses_unknown_families(capsys):
    assert ablate.main(["--list"]) == 0
    assert "components:" in capsys.readouterr().out
    assert ablate.main(["nonsense"]) == 2
    assert "unknown ablation family" in capsys.readouterr().err


def _config(row, seed=0):
    return ablate.row_config({"seed": seed, "out_dir": "x", **row.parameters})


def test_command_line_sends_runs_to_the_results_folder(tmp_path, monkeypatch, capsys):
    calls = []

    def fake_sweep(family, seeds, *, results, log):
        calls.append((family, list(seeds), results))
        return ablate.collect(family, results=results)

    monkeypatch.setattr(ablate, "sweep", fake_sweep)
    assert ablate.main(["tau", "--seeds", "2", "--results", str(tmp_path)]) == 0  # absolute
    assert ablate.main(["tau"]) == 0
    assert calls == [("tau", [0, 1], tmp_path), ("tau", [0, 1, 2], ablate.RESULTS)]


@pytest.mark.parametrize("family", list(FAMILIES))
def test_rows_are_valid_run_configs(family):
    for row in FAMILIES[family]:
        assert _config(row).identity()


def test_rows_that_repeat_the_full_ppc_row_are_recognised():
    full = _config(next(r for r in FAMILIES["components"]
                        if r.name == "seam: + intra + mining + pixel sampling (PPC)"))
    assert full.base == "seam" and full.use_ppc and full.ppc.intra
    same = [r.name for rows in FAMILIES.values() for r in rows
            if _config(r).identity() == full.identity()]
    assert same == ["seam: + intra + mining + pixel sampling (PPC)", "K = 32", "scale 0.5",
                    "tau = 0.1", "pseudo-label background = 0.2"]
    assert _config(FAMILIES["components"][0]).identity() != full.identity()


def test_table_gives_mean_std_and_the_median_the_paper_reports():
    import pandas as pd

    frame = pd.DataFrame({"order": [0, 0, 0, 1, 1], "row": ["a"] * 3 + ["b"] * 2,
                          "seed": [0, 1, 2, 0, 1], "miou": [20.0, 30.0, 22.0, 10.0, 13.0],
                          "paper": ["61.5"] * 3 + ["n/a"] * 2})
    table = ablate.table(frame).set_index("row")
    assert table.loc["a", "ours: mIoU (synthetic train)"] == "24.0 ± 5.3"
    assert table.loc["a", "median"] == "22.0" and table.loc["a", "seeds"] == 3
    assert table.loc["b", "median"] == "11.5"  # of an even count: the middle two's mean
    assert table.loc["a", "paper: VOC train seeds"] == "61.5"


def test_paired_table_differences_seed_by_seed():
    import pandas as pd

    frame = pd.DataFrame([
        {"order": 0, "row": "x: base", "seed": 0, "miou": 20.0},
        {"order": 0, "row": "x: base", "seed": 1, "miou": 30.0},
        {"order": 1, "row": "x: more", "seed": 0, "miou": 21.0},
        {"order": 1, "row": "x: more", "seed": 1, "miou": 33.0},
        {"order": 1, "row": "x: more", "seed": 2, "miou": 99.0},  # no base run: left out
        {"order": 2, "row": "x: less", "seed": 1, "miou": 29.5},
    ])
    table = ablate.paired_table(frame, "x: base").set_index("row")
    assert list(table.index) == ["x: more", "x: less"]
    assert table.loc["x: more", "mIoU difference (points)"] == "+2.0 ± 1.4"
    assert table.loc["x: more", "per seed"] == "+1.0, +3.0"
    assert table.loc["x: more", "better in"] == "2 of 2 seeds"
    assert table.loc["x: less", "mIoU difference (points)"] == "-0.5"  # one seed: no spread
    by_prefix = ablate.paired_table(frame, lambda row: row.split(":")[0] + ": base")
    assert by_prefix.equals(ablate.paired_table(frame, "x: base"))
    with pytest.raises(ValueError, match=r"reference 'K = 999' is not a row of the frame"):
        ablate.paired_table(frame, "K = 999")
    with pytest.raises(ValueError, match=r"holds row 'x: base' seed 0 more than once"):
        ablate.paired_table(pd.concat([frame, frame]), "x: base")
    with pytest.raises(ValueError, match=r"frame lacks column\(s\) \['miou'\]"):
        ablate.paired_table(frame.drop(columns="miou"), "x: base")
    with pytest.raises(ValueError, match="unknown family 'bogus'"):
        ablate.collect("bogus")
    with pytest.raises(ValueError, match="results folder /nonexistent does not exist"):
        ablate.collect("top_k", results=Path("/nonexistent"))


def test_collect_puts_the_base_first(tmp_path):
    for family, row, miou in (("components", "seam-base", 0.2), ("top_k", "k-8", 0.25)):
        out = tmp_path / family / row / "seed0"
        out.mkdir(parents=True)
        (out / "summary.json").write_text(json.dumps({"best_miou": miou,
                                                      "best_threshold": 0.1}))
    frame = ablate.collect("top_k", results=tmp_path, with_base="seam: base")
    assert frame["row"].tolist() == ["seam: base", "K = 8"]
    assert frame["order"].tolist() == [0, 1] and frame["miou"].tolist() == [20.0, 25.0]
    assert frame["body_recall"].isna().all()  # no coverage.json: NaN, not an error
    with pytest.raises(ValueError, match="components"):
        ablate.collect("top_k", results=tmp_path, with_base="nope")


def test_replication_table_sets_two_machines_side_by_side(tmp_path):
    def write(results, family, row, seed, miou):
        out = results / family / row / f"seed{seed}"
        out.mkdir(parents=True)
        (out / "summary.json").write_text(json.dumps({"best_miou": miou,
                                                      "best_threshold": 0.1}))

    stored, rerun = tmp_path / "stored", tmp_path / "rerun"
    for seed, (base, k8, k64) in enumerate([(0.20, 0.22, 0.19), (0.30, 0.31, 0.28)]):
        write(stored, "components", "seam-base", seed, base)
        write(stored, "top_k", "k-8", seed, k8)
        write(stored, "top_k", "k-64", seed, k64)
    for seed, (base, k8) in enumerate([(0.25, 0.24), (0.30, 0.35)]):
        write(rerun, "components", "seam-base", seed, base)
        write(rerun, "top_k", "k-8", seed, k8)
    write(rerun, "top_k", "k-64", 0, 0.20)  # below in the one seed rerun
    write(rerun, "components", "seam-base", 7, 0.20)  # seeds only the rerun has: left out
    write(rerun, "top_k", "k-8", 7, 0.10)
    assert 7 in set(ablate.collect("top_k", results=rerun, with_base="seam: base")["seed"])
    chosen = ablate.collect("top_k", results=rerun, with_base="seam: base", seeds=range(2))
    assert set(chosen["seed"]) == {0, 1} and "seam: base" in set(chosen["row"])
    table = ablate.replication_table(
        "top_k", ["K = 64", "K = 8"], "seam: base", with_base="seam: base",
        stored=stored, rerun=rerun, labels=("A", "B")).set_index("row")
    assert list(table.index) == ["K = 8", "K = 64"]  # the family's order
    assert table.loc["K = 8", "A: per seed"] == "+2.0, +1.0"
    assert table.loc["K = 8", "B: per seed"] == "-1.0, +5.0"
    assert table.loc["K = 8", "B: difference"] == "+2.0 ± 4.2"
    assert table.loc["K = 8", "every seed"] == "no"  # above in A, not in B
    assert table.loc["K = 64", "B: per seed"] == "-5.0"
    assert table.loc["K = 64", "every seed"] == "below"
    assert table.loc["K = 8", "against"] == "seam: base"
    only_stored = ablate.replication_table("top_k", ["K = 16"], "seam: base",
                                           with_base="seam: base", stored=stored, rerun=rerun)
    assert only_stored.empty  # a row without runs on both sides is left out
    write(rerun, "top_k", "k-128", 5, 0.3)  # rerun, but not with a seed SEAM has there
    write(stored, "top_k", "k-128", 0, 0.3)
    assert ablate.replication_table("top_k", ["K = 128"], "seam: base", with_base="seam: base",
                                    stored=stored, rerun=rerun).empty
    # a reference in the family itself, not among the rows asked for
    for seed, (k8, k16) in enumerate([(0.22, 0.23), (0.31, 0.33)]):
        write(stored, "top_k", "k-16", seed, k16)
        write(rerun, "top_k", "k-16", seed, k8 - 0.01)
    within = ablate.replication_table("top_k", ["K = 16"], "K = 8", stored=stored,
                                      rerun=rerun).set_index("row")
    assert within.loc["K = 16", "stored: per seed"] == "+1.0, +2.0"
    assert within.loc["K = 16", "every seed"] == "no"  # above, then below, K = 8
    two = ablate.replication_table("top_k", ["K = 16"], ["seam: base", "K = 8"],
                                   with_base="seam: base", stored=stored, rerun=rerun)
    assert two["against"].tolist() == ["seam: base", "K = 8"]  # one line per reference
    assert two.iloc[1].equals(within.reset_index().iloc[0])
    with pytest.raises(ValueError, match="K = 7"):
        ablate.replication_table("top_k", ["K = 7"], "seam: base", stored=stored, rerun=rerun)


def test_mean_std_text_of_every_table():
    from ppc._format import mean_std

    assert mean_std([1.0, 2.0, 4.0]) == "2.3 ± 1.5"  # sample std: sqrt(7/3)
    assert mean_std([0.25, 0.75], digits=2, sign="+") == "+0.50 ± 0.35"
    assert mean_std([-0.04]) == "-0.0" and mean_std([3.0], sign="+") == "+3.0"
    assert mean_std([]) == "n/a"
    # a run without foreground seeds has no precision: left out, and said so
    assert mean_std([1.0, float("nan"), 3.0]) == "2.0 ± 1.4 (1 n/a)"
    assert mean_std([float("inf")]) == "n/a"


def test_plot_is_the_same_at_every_execution_and_keeps_the_callers_rng():
    import io

    import matplotlib
    import numpy as np
    import pandas as pd

    matplotlib.use("Agg")
    frame = pd.DataFrame({"row": ["a", "a", "a", "b", "b", "b"], "order": [0, 0, 0, 1, 1, 1],
                          "miou": [20.0, 22.0, 21.0, 25.0, 24.0, 26.0]})

    def png():
        buffer = io.BytesIO()
        ablate.plot(frame, title="t").savefig(buffer, format="png")
        return buffer.getvalue()

    np.random.seed(1)
    first = png()
    after = np.random.random()
    np.random.seed(2)
    assert png() == first  # the dots' jitter does not depend on the global RNG
    np.random.seed(1)
    png()
    assert np.random.random() == after  # and the global RNG is left as it was


def test_command_line_refuses_zero_seeds(capsys):
    with pytest.raises(SystemExit):
        ablate.main(["tau", "--seeds", "0"])
    assert "--seeds must be >= 1" in capsys.readouterr().err


def test_command_line_refuses_a_results_path_that_is_not_a_folder(tmp_path, monkeypatch,
                                                                   capsys):
    monkeypatch.setattr(ablate, "sweep", lambda *a, **k: pytest.fail("swept"))
    (tmp_path / "a_file").write_text("")
    for results, message in (
            ("", "argument --results: an empty path would put the runs in the current folder"),
            (str(tmp_path / "a_file"), f"--results {tmp_path / 'a_file'} is not a folder: "
                                       f"{tmp_path / 'a_file'} is a file"),
            (str(tmp_path / "a_file" / "sub"), f"{tmp_path / 'a_file'} is a file"),
            *([("/proc/ppc_no_such", "--results /proc/ppc_no_such: cannot create the folder")]
              if Path("/proc/self").is_dir() else [])):  # a folder no one can create
        with pytest.raises(SystemExit) as exit_:
            ablate.main(["tau", "--results", results])
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
