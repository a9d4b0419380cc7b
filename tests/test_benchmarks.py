"""The benchmark scripts still run (tiny sizes; their numbers are not checked here)."""

import random
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_loss  # noqa: E402
import bench_train_step  # noqa: E402


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
