"""The notebooks: pairs in sync, and a papermill run of the training notebook with tiny
parameters. nbval (``--nbval`` in the test command) re-executes every committed notebook
and compares its outputs."""

from pathlib import Path

import jupytext
import nbformat
import pytest
import torch

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


def test_cells_whose_outputs_nbval_skips_say_why():
    """nbval compares every output except those of cells tagged nbval-ignore-output (or
    nbval-skip); each such cell is followed by a markdown cell that tells the reader."""
    found = []
    for name in notebook_names():
        cells = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4).cells
        for index, cell in enumerate(cells):
            tags = set(cell.metadata.get("tags", []))
            if tags & {"nbval-ignore-output", "nbval-skip"}:
                found.append(name)
                after = cells[index + 1] if index + 1 < len(cells) else None
                assert after is not None and after.cell_type == "markdown" and (
                    "without comparing its output" in after.source), (
                    f"{name}, cell {index}: say in the next markdown cell why the test suite "
                    "does not compare this output")
    assert found == ["12_your_model"], found  # a new exemption is a decision: list it here


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
    assert _value('{"steps": 2, "flip": true}') == {"steps": 2, "flip": True}  # JSON too


@pytest.mark.parametrize("argv,message", [
    (["-p", "extra", "notadict"], "05_training: parameter extra must be a dict of RunConfig "
                                  "fields"),
    (["-p", "epochs", "nan"], "05_training: parameter epochs must be None (the preset's "
                              "length) or a finite number > 0 (epochs of the train split), "
                              "got 'nan' (str)"),
    (["-p", "epochs", "abc"], "parameter epochs must be None (the preset's length) or a "
                              "finite number > 0"),
    (["-p", "epochs", "0"], "parameter epochs must be None (the preset's length) or a finite "
                            "number > 0 (epochs of the train split), got 0 (int)"),
    (["-p", "epochs", "-1"], "got -1 (int); pass e.g. epochs = 2"),
    (["-p", "epochs", "1e999"], "got inf (float)"),
    (["-p", "batch_size", "0"], "parameter batch_size must be an int >= 1 (images per batch) "
                                "or None (the preset's), got 0"),
    (["-p", "seed", "-1"], "parameter seed must be an int in [0, 2**32), got -1"),
    (["-p", "use_ppc", "yes"], "parameter use_ppc must be True or False, got 'yes' (str)"),
    (["-p", "out_dir", "none"], "parameter out_dir must be a string, got None"),
    (["-p", "extra", '{"steps": 2'], "-p extra: '{\"steps\": 2' is neither a Python literal "
                                     "nor JSON"),
    (["-p", "epochs", "1", "-p", "extra", "{'steps': 2}"],
     "05_training: epochs and extra's steps both set the training's length"),
    (["-p", "seed", "1", "-p", "seed", "2"], "parameter(s) ['seed'] given more than once"),
    (["-p", "device", "bogus"], "parameter device must be 'auto', 'cpu' or 'cuda', got 'bogus'"),
    (["-o", "notebooks/05_training.py"], "output notebooks/05_training.py must be a .ipynb"),
])
def test_runner_refuses_bad_parameter_values_before_running(monkeypatch, capsys, argv,
                                                            message):
    from ppc import notebooks

    monkeypatch.setattr(notebooks, "execute", lambda *a, **k: pytest.fail("executed"))
    with pytest.raises(SystemExit) as exit_:
        notebooks.main(["05_training", *argv])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_parameters_are_checked_by_execute_too(tmp_path):
    from ppc.notebooks import check_parameters

    with pytest.raises(ValueError, match=r"parameter epochs must be None .* got 0 \(int\)"):
        execute("05_training", {"epochs": 0}, output=tmp_path / "x.ipynb", progress=False)
    assert not (tmp_path / "x.ipynb").exists()
    check_parameters("05_training", {"epochs": 0.5, "batch_size": None, "extra": {"lr": 0.1},
                                     "backbone": "resnet50", "seed": 3, "device": "cpu"})
    check_parameters("07_ablation_top_k", {"family": "top_k"})
    check_parameters("11_benchmark_design",
                     {"report_path": "../results/benchmark_design/report.json"})
    for name, parameters, message in (
            ("07_ablation_top_k", {"family": "tau"}, "parameter family must be 'top_k'"),
            ("11_benchmark_design", {"report_path": str(tmp_path / "none.json")},
             "parameter report_path must be the path of an existing file"),
            ("12_your_model", {"device": "auto"}, "parameter device must be 'cpu' or 'cuda'")):
        with pytest.raises(ValueError, match=message):
            check_parameters(name, parameters)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="torch finds no CUDA device on this machine"):
            check_parameters("12_your_model", {"device": "cuda"})
    # a parameter of the notebook given again in extra would reach RunConfig twice
    from ppc.experiment import training_config

    with pytest.raises(ValueError, match=r"extra sets \['data_root', 'seed'\], which the "
                                         r"notebook's own parameters set \(voc_root, seed\)"):
        training_config(extra={"seed": 3, "data_root": "x"})
    assert training_config(batch_size=None, extra={"batch_size": 4}).batch_size == 4
    check_parameters("12_your_model", {"steps": 2, "batch_size": 4})
    with pytest.raises(ValueError, match="12_your_model: parameter batch_size must be an int "
                                         ">= 1 .images per batch., got None"):
        check_parameters("12_your_model", {"batch_size": None})  # no preset to fall back on


def test_runner_checks_the_output_location_before_running(tmp_path, monkeypatch, capsys):
    from ppc import notebooks

    monkeypatch.setattr(notebooks, "execute", lambda *a, **k: pytest.fail("executed"))
    (tmp_path / "a_file").write_text("")
    for output, message in (
            (tmp_path / "a_file" / "x.ipynb", f"-o/--output: cannot write {tmp_path}/a_file/"
                                              f"x.ipynb: {tmp_path}/a_file is a file, not a "
                                              "folder"),
            (tmp_path / "a_file" / "sub" / "x.ipynb", f"{tmp_path}/a_file is a file"),
            (tmp_path, f"-o/--output: output {tmp_path} is a folder"),
            ("", "-o/--output: output must be the path of the file to write, got ''"),
            *([("/sys/x.ipynb", "-o/--output: cannot write /sys/x.ipynb")]  # refuses new files
              if Path("/sys/kernel").is_dir() else [])):
        with pytest.raises(SystemExit) as exit_:
            notebooks.main(["05_training", "-o", str(output)])
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    with pytest.raises(ValueError, match="a_file is a file, not a folder"):
        execute("05_training", {}, output=tmp_path / "a_file" / "x.ipynb", progress=False)


def test_runner_reports_a_failing_cell_in_one_line(tmp_path, monkeypatch, capsys):
    import papermill

    from ppc import notebooks

    def failing(name, parameters, output):
        raise papermill.PapermillExecutionError(
            cell_index=3, exec_count=3, source="check_training_parameters(dataset, preset)",
            ename="ValueError", evalue="dataset must be 'synthetic' or 'voc', got 'coco'",
            traceback=["Traceback (most recent call last):"] + ["  deep inside"] * 40)

    monkeypatch.setattr(notebooks, "execute", failing)
    out = tmp_path / "bad.ipynb"
    assert notebooks.main(["05_training", "-p", "dataset", "coco", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.strip() == (f"error: 05_training: ValueError: dataset must be 'synthetic' or "
                           f"'voc', got 'coco' (the failing cell's traceback is in {out})")
