"""The notebooks: pairs in sync, and a papermill run of the training notebook with tiny
parameters. nbval (``--nbval`` in the test command) re-executes every committed notebook
and compares its outputs."""

from pathlib import Path

import jupytext
import nbformat
import pytest

from ppc.notebooks import execute, notebook_names

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def test_every_notebook_has_an_executed_pair_with_the_same_cells():
    names = notebook_names()
    assert names, "no notebooks found"
    for name in names:
        ipynb, py = NOTEBOOKS / f"{name}.ipynb", NOTEBOOKS / f"{name}.py"
        assert ipynb.exists(), f"{ipynb} missing: run python -m ppc.notebooks {name}"
        a = [(c.cell_type, c.source.strip()) for c in jupytext.read(ipynb).cells]
        b = [(c.cell_type, c.source.strip()) for c in jupytext.read(py).cells]
        assert a == b, f"{ipynb.name} and {py.name} differ: pair them again"
        nb = nbformat.read(ipynb, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(c.get("execution_count") for c in code), f"{ipynb.name} is not executed"
        assert not [o for c in code for o in c.outputs if o.output_type == "error"]
        tags = [c.metadata.get("tags", []) for c in code]
        assert ["parameters"] in tags, f"{name} has no parameters cell"


def test_training_notebook_runs_with_tiny_parameters(tmp_path):
    out = execute("05_training", {
        "voc_root": str(tmp_path / "voc"), "out_dir": str(tmp_path / "run"), "base": "cam",
        "extra": {"steps": 2, "batch_size": 8, "width": 8, "scales": [1.0],
                  "synthetic__num_train_aug": 32, "synthetic__num_train": 6,
                  "synthetic__num_val": 4, "threads": 2},
    }, output=tmp_path / "out.ipynb", progress=False)
    nb = nbformat.read(out, as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.outputs)
    assert "best mIoU of the seeds on 'train'" in text
    assert (tmp_path / "run" / "summary.json").exists()
    assert (tmp_path / "voc" / "JPEGImages").is_dir()  # written in the VOC layout


@pytest.mark.parametrize("parameters,message", [
    ({"dataset": "coco"}, "dataset must be 'synthetic' or 'voc'"),
    ({"dataset": "voc", "voc_root": "/nowhere"}, "voc_root '/nowhere' is not a VOC2012 folder"),
])
def test_training_notebook_stops_at_the_first_cell_on_bad_parameters(tmp_path, parameters,
                                                                      message):
    import papermill

    with pytest.raises(papermill.PapermillExecutionError) as err:
        execute("05_training", parameters, output=tmp_path / "bad.ipynb", progress=False)
    assert message in str(err.value)
    nb = nbformat.read(tmp_path / "bad.ipynb", as_version=4)
    failed = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
              and any(o.output_type == "error" for o in c.outputs)]
    code_cells = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    assert failed == [code_cells[2]]  # parameters, injected parameters, then the checks


def test_runner_refuses_unknown_notebooks_and_parameters_before_running(capsys):
    from ppc.notebooks import _value, main, parameter_names

    assert "out_dir" in parameter_names("05_training") and "extra" in parameter_names(
        "05_training")
    for argv, message in ((["nope"], "no notebook(s) ['nope']"),
                          (["05_training", "-p", "steps", "50"],
                           "05_training has no parameter(s) ['steps']")):
        with pytest.raises(SystemExit):
            main(argv)
        assert message in capsys.readouterr().err
    # booleans and None in any case (a plain "false" string would be truthy)
    assert [_value(v) for v in ("false", "True", "none", "3", "0.5", "{'a': 1}", "cpu")] == [
        False, True, None, 3, 0.5, {"a": 1}, "cpu"]
