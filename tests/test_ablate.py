import json
import shutil

import nbformat
import pytest

from ppc import ablate
from ppc.ablate import FAMILIES, Row

TINY = {"extra": {"steps": 2, "batch_size": 8, "width": 8, "scales": [1.0], "threads": 2,
                  "synthetic__num_train_aug": 32, "synthetic__num_train": 6,
                  "synthetic__num_val": 4}}


def test_families_cover_the_paper_tables():
    components = [r.name for r in FAMILIES["components"]]
    assert len(components) == 14 and components[0] == "seam: base"
    assert components[-1] == "cam: + intra + mining + pixel sampling (PPC)"
    assert [r.parameters["extra"]["ppc__top_k"] for r in FAMILIES["top_k"]] == [8, 16, 32, 64,
                                                                                 128]
    assert {"transform", "tau", "bg_threshold"} <= set(FAMILIES)
    slugs = [r.slug for rows in FAMILIES.values() for r in rows]
    assert len(slugs) == len(set(slugs))


def test_sweep_stores_runs_reuses_them_and_recomputes_only_a_deleted_one(tmp_path):
    rows = [Row("plain cam", {"base": "cam", "use_ppc": False}),
            Row("cam with ppc", {"base": "cam", "extra": {"ppc__top_k": 8}})]
    kwargs = dict(results=tmp_path / "results", voc_root=tmp_path / "voc", rows=rows,
                  base_parameters=TINY, log=None)
    frame = ablate.sweep("tiny", seeds=[0], **kwargs)
    assert frame["row"].tolist() == ["plain cam", "cam with ppc"]
    first = ablate.run_dir("tiny", rows[0], 0, tmp_path / "results")
    second = ablate.run_dir("tiny", rows[1], 0, tmp_path / "results")
    summary = json.loads((second / "summary.json").read_text())
    assert summary["config"]["ppc"]["top_k"] == 8 and summary["config"]["seed"] == 0
    assert summary["versions"]["torch"] and "git" in summary
    nb = nbformat.read(second / "notebook.ipynb", as_version=4)
    assert not any(o.output_type == "display_data" for c in nb.cells if c.cell_type == "code"
                   for o in c.outputs)  # numbers only: no figures stored
    stamp = (first / "notebook.ipynb").stat().st_mtime_ns
    shutil.rmtree(second)
    again = ablate.sweep("tiny", seeds=[0], **kwargs)
    assert (first / "notebook.ipynb").stat().st_mtime_ns == stamp  # reused
    assert (second / "notebook.ipynb").exists()  # recomputed
    assert again["miou"].tolist() == frame["miou"].tolist()  # deterministic
    table = ablate.table(again)
    assert list(table.columns) == ["row", "ours: mIoU (synthetic train)", "seeds",
                                   "paper: VOC train seeds"]


def test_command_line_lists_and_refuses_unknown_families(capsys):
    assert ablate.main(["--list"]) == 0
    assert "components:" in capsys.readouterr().out
    assert ablate.main(["nonsense"]) == 2
    assert "unknown ablation family" in capsys.readouterr().err


@pytest.mark.parametrize("family", list(FAMILIES))
def test_rows_are_valid_run_configs(family):
    from ppc.config import RunConfig

    for row in FAMILIES[family]:
        flat = {k: v for k, v in row.parameters.items() if k not in ("extra",)}
        RunConfig.from_flat(RunConfig(), **{**flat, **row.parameters.get("extra", {})})
