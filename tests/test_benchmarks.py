"""The benchmark scripts still run (tiny sizes; their numbers are not checked here)."""

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import base_table  # noqa: E402
import bench_loss  # noqa: E402
import bench_train_step  # noqa: E402
import benchmark_design  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _restore_global_state():
    # the scripts set torch's thread count and seed Python's random module
    threads, state = torch.get_num_threads(), random.getstate()
    yield
    torch.set_num_threads(threads)
    random.setstate(state)


def test_bench_loss_prints_a_speed_up_per_map_size(capsys):
    bench_loss.main(["--device", "cpu", "--sizes", "4,6", "--repeats", "1", "--warmup", "0",
                     "--threads", "1"])
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.lstrip().startswith(("4x4", "6x6"))]
    assert len(rows) == 6  # per size: a timing row, and the loop's and ours loss values
    assert all(row.split()[4].endswith("x") for row in rows[:2])  # the speed-up column
    assert all(row.split()[6].endswith("x") for row in rows[:2])  # the kernels' bound
    floor = [line for line in out.splitlines() if line.startswith("floor (cpu)")]
    assert len(floor) == 1 and float(floor[0].split(", ")[1].split()[0]) > 0
    calls = [line for line in out.splitlines() if " per pass, " in line]
    assert len(calls) == 1 and int(calls[0].split("(")[1].split()[0]) > 100
    # the two implementations compute the same loss, up to their documented differences
    # (random draws, the background prototype's ranking): totals within 5%
    for size in ("4x4", "6x6"):
        loop, ours = (float(r.split()[3]) for r in rows[2:] if r.split()[0] == size)
        assert abs(loop - ours) < 0.05 * abs(loop), (size, loop, ours)


def test_bench_loss_rejects_bad_sizes():
    with pytest.raises(SystemExit):
        bench_loss.main(["--sizes", "2"])


def test_bench_train_step_runs_one_step(capsys):
    bench_train_step.main(["--device", "cpu", "--bases", "cam", "--steps", "1", "--warmup", "1",
                           "--threads", "1"])
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.startswith("cpu small")]
    assert [row[4] for row in rows] == ["base", "head", "ppc"]
    assert rows[0][-2:] == ["-", "-"] and rows[1][-1] == "-"
    assert rows[1][-2].startswith(("+", "-")) and rows[2][-2].startswith(("+", "-"))
    assert rows[2][-1].startswith(("+", "-"))  # the PPC loss's own share, in %


def test_cuda_case_recipe_trains_a_step_on_the_cpu():
    # the CUDA case's code path (ResNet-38, SEAM + PPC, bf16 autocast, channels-last
    # images) at a small size on the CPU, so it is known to run before a GPU is lent
    cpu = torch.device("cpu")
    config = bench_train_step.cuda_config("resnet38").replace(
        device="cpu", amp="bf16", channels_last="on", batch_size=2)
    batch = bench_train_step.random_batches(2, bench_train_step.VOC_CLASSES, 64, cpu)[0]
    variant = bench_train_step.build_variant(config, "ppc", bench_train_step.VOC_CLASSES, cpu)
    assert variant.ctx.amp and variant.config.base == "seam"
    before = variant.model.cam_head.weight.detach().clone()
    bench_train_step.train_step(variant, batch)
    after = variant.model.cam_head.weight.detach()
    assert torch.isfinite(after).all() and not torch.equal(after, before)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal without CUDA")
def test_gpu_checks_script_refuses_without_cuda(tmp_path):
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_checks.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0  # it parses
    result = subprocess.run(["bash", str(script)], capture_output=True, text=True,
                            env={**os.environ, "PYTHON": sys.executable, "OUT": str(tmp_path)})
    assert result.returncode == 3
    assert "sees no CUDA device" in result.stderr and "NVIDIA GPU" in result.stderr
    # the tests it runs on the GPU exist
    text = script.read_text()
    root = script.parents[1]
    assert (root / "tests" / "test_cuda.py").exists()
    assert "def test_loss_makes_no_sync_on_cuda(" in (root / "tests" / "test_loss.py").read_text()
    assert "tests/test_loss.py::test_loss_makes_no_sync_on_cuda" in text


def test_base_table_refuses_unknown_variants_in_one_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        base_table.main(["--variants", "bogus"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "argument --variants: invalid choice: 'bogus' (choose from 'CAM', 'CAM + PPC', " \
           "'SEAM', 'SEAM + PPC', 'full supervision')" in err


@pytest.mark.parametrize("script,argv,message", [
    (base_table, ["--variants", "CAM"], "error: the run of 'CAM' seed 0 ("),
    (benchmark_design, ["--candidates", "A"], "error: the cam run of seed 0 ("),
])
def test_a_failed_run_ends_the_script_with_its_exit_code_and_one_line(
        tmp_path, capfd, script, argv, message):
    # a real child run that fails at once: its own error, then ours, and no traceback
    code = script.main([*argv, "--seeds", "0", "--out", str(tmp_path), "--", "--no_such"])
    assert code == 2
    err = capfd.readouterr().err
    assert "Traceback" not in err and "CalledProcessError" not in err, err
    lines = err.strip().splitlines()
    assert "unrecognized arguments: --no_such" in lines[0]  # the run's own error
    assert len(lines) == 2 and lines[1].startswith(message), err
    assert lines[1].endswith(") failed with exit code 2")


def test_benchmark_design_uses_the_stored_weights_from_any_folder(tmp_path, monkeypatch,
                                                                  capsys):
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append((cmd, kwargs))
        return subprocess.CompletedProcess(cmd, 3)

    monkeypatch.setattr(benchmark_design.subprocess, "run", fake_run)
    monkeypatch.chdir(tmp_path)  # outside the repository
    assert (ROOT / benchmark_design.PRETRAINED).exists()  # the stored weights
    assert benchmark_design.main(["--candidates", "J", "--seeds", "0", "--out", "mine"]) == 3
    (cmd, kwargs), = calls  # no pre-training: the first run is the CAM run
    assert cmd[1:4] == ["-m", "ppc", "run"] and kwargs["cwd"] == ROOT
    assert cmd[cmd.index("--weights") + 1] == benchmark_design.PRETRAINED  # as stored runs
    assert cmd[cmd.index("--out_dir") + 1] == str(tmp_path / "mine" / "J" / "cam-seed0")
    assert capsys.readouterr().err.strip() == (
        f"error: the cam run of seed 0 ({tmp_path / 'mine' / 'J' / 'cam-seed0'}) failed with "
        "exit code 3")


def test_benchmark_scripts_default_to_folders_of_the_repository(tmp_path, monkeypatch):
    seen = []

    def fake_run(cmd, **kwargs):
        seen.append(cmd[cmd.index("--out_dir") + 1])
        return subprocess.CompletedProcess(cmd, 1)

    monkeypatch.chdir(tmp_path)
    for script, argv in ((base_table, ["--variants", "CAM"]),
                         (benchmark_design, ["--candidates", "A"])):
        monkeypatch.setattr(script.subprocess, "run", fake_run)
        assert script.main([*argv, "--seeds", "0"]) == 1
    assert seen == [str(ROOT / "runs" / "base_table" / "CAM" / "seed0"),
                    str(ROOT / "runs" / "design" / "A" / "cam-seed0")]


def test_resize_conventions_reproduces_its_stored_measurement():
    # book/paper_vs_code.md quotes results/measurements/resize_conventions.txt: seeded
    # float64 maps, printed to 4 decimals, so a rerun prints the same table
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "resize_conventions.py")],
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout
    stored = (ROOT / "results" / "measurements" / "resize_conventions.txt").read_text()
    assert out == stored


@pytest.mark.parametrize("script,argv,message", [
    (base_table, ["--seeds", "0", "-1"], "--seeds must be ints in [0, 2**32), got [-1]"),
    (benchmark_design, ["--seeds", "-1"], "--seeds must be ints in [0, 2**32), got [-1]"),
    (base_table, ["--", "--seed", "7"], "['--seed'] after -- would override what the script"),
    (benchmark_design, ["--", "--out_dir=x"], "['--out_dir'] after -- would override"),
])
def test_run_scripts_refuse_bad_seeds_and_owned_options_before_any_run(
        tmp_path, monkeypatch, capsys, script, argv, message):
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("ran"))
    with pytest.raises(SystemExit) as exit_:
        script.main(["--out", str(tmp_path), *argv])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_benchmark_design_refuses_a_damaged_report_before_any_run(tmp_path, monkeypatch,
                                                                   capsys):
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("ran"))
    for content, message in (("garbage", "cannot be read as JSON"),
                             ("[]", "is not a design report")):
        (tmp_path / "report.json").write_text(content)
        assert benchmark_design.main(["--candidates", "A", "--out", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err


def test_benchmark_options_are_checked_in_one_line(capsys):
    for script, argv, message in (
            (bench_train_step, ["--_peak-rss", "cam", "bogus"],
             "--_peak-rss takes a base (cam, seam) and a variant"),
            (bench_train_step, ["--threads", "100000"], "the thread count must be an int in"),
            (bench_loss, ["--threads", "0"], "the thread count must be an int in")):
        with pytest.raises(SystemExit) as exit_:
            script.parse_args(argv)
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
