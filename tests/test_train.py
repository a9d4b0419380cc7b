import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ppc.cli import main as cli_main
from ppc.config import RunConfig
from ppc.data import DatasetLayoutError, SyntheticConfig, write_voc
from ppc.evaluate import load_cam_npz
from ppc.cams import normalize_cams, pseudo_labels
from ppc.data.synthetic import SyntheticSegmentation
from ppc.data.transforms import eval_transform
from ppc.evaluate import WEIGHT_REGIONS, weight_by_region
from ppc.experiment import intra_weight_shares, run
from ppc.loss import PixelToPrototypeContrast
from ppc.machine import cpu_name
from ppc.views import ViewConfig
from ppc.train import StepContext, build_model, load_trained, train, training_losses
from sync_check import FailOnSync

ROOT = Path(__file__).resolve().parents[1]
TINY = SyntheticConfig(num_train_aug=48, num_train=8, num_val=8)


def tiny(tmp_path, name="run", **changes) -> RunConfig:
    values = dict(synthetic=TINY, steps=3, batch_size=8, width=8, proj_dim=16,
                  scales=(1.0,), infer_batch_size=8, log_every=1, checkpoint_every=100,
                  threads=2, device="cpu", out_dir=str(tmp_path / name))  # CPU: bit-exact
    values.update(changes)
    return RunConfig(**values)


def _metrics(out) -> list[dict]:
    rows = [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]
    for row in rows:
        row.pop("time")
    return rows


def _weights(out) -> dict:
    return torch.load(Path(out) / "model.pt", weights_only=True)


@pytest.mark.parametrize("base,use_ppc", [("cam", False), ("cam", True), ("seam", False),
                                          ("seam", True), ("full", False)])
def test_three_steps_per_base(tmp_path, base, use_ppc):
    out = train(tiny(tmp_path, base=base, use_ppc=use_ppc), progress=False)
    rows = _metrics(out)
    assert [r["step"] for r in rows] == [1, 2, 3]
    for row in rows:
        assert all(np.isfinite(v) for v in row.values())
    expected = {"cam": {"cls"}, "seam": {"cls", "er", "ecr", "rvmin"}, "full": {"ce"}}[base]
    assert expected <= set(rows[0])
    assert ("ppc_total" in rows[0]) == use_ppc
    if use_ppc:
        assert rows[0]["total"] > sum(rows[0][k] for k in expected)
    assert (out / "model.pt").exists() and (out / "config.json").exists()


@pytest.mark.parametrize("base", ["cam", "seam"])
def test_bf16_autocast_and_channels_last_train_and_infer(tmp_path, base):
    # the CUDA defaults (amp and channels_last "auto"), forced on the CPU: SEAM's PCM
    # once fed the backbone's bf16 features to its float32 convolutions and failed
    summary = run(tiny(tmp_path, base=base, use_ppc=True, amp="bf16", channels_last="on"),
                  progress=False)
    rows = _metrics(tmp_path / "run")
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert all(np.isfinite(v) for row in rows for v in row.values())
    assert 0.0 <= summary["best_miou"] <= 1.0


def step_parts(base, view=None, device="cpu", amp=False):
    """(model in train mode, a random batch of 4 images, the step context) of a small
    PPC run of ``base``, for one call of ``training_losses`` on ``device``."""
    config = RunConfig(base=base, use_ppc=True, width=8, proj_dim=16, device=device)
    config = config if view is None else config.replace(view=view)
    model = build_model(config, num_classes=6).to(device).train()
    if amp:  # as training on CUDA: bf16 autocast and channels-last
        model = model.to(memory_format=torch.channels_last)
    ctx = StepContext(config, PixelToPrototypeContrast(config.ppc.replace(validate=False)),
                      torch.Generator(device=device).manual_seed(0), amp=amp)
    g = torch.Generator().manual_seed(0)
    batch = {"image": torch.randn(4, 3, 64, 64, generator=g).to(device),
             "label": (torch.rand(4, 6, generator=g) < 0.4).float().to(device)}
    return model, batch, ctx


@pytest.mark.parametrize("base,view", [("cam", {}), ("seam", {}),
                                       ("seam", dict(flip=True, rotate=30.0))])
def test_training_losses_and_backward_make_no_host_device_sync(base, view):
    # both views, the base's losses, the alignment of S's maps and PPC, forward and
    # backward (the optimizer's step is torch's; AdamW reads its CPU step counter)
    model, batch, ctx = step_parts(base, ViewConfig(**view))
    training_losses(model, batch, ctx, step=0)["total"].backward()  # warm-up
    with FailOnSync() as mode:
        terms = training_losses(model, batch, ctx, step=0)
        terms["total"].backward()
    assert "ppc_total" in terms
    assert mode.syncs == []


def test_f_proj_runs_only_where_ppc_uses_it(tmp_path, monkeypatch):
    # without PPC (and before ppc_start_step) training skips the projection head
    from ppc.models.net import WSSSNet

    projected = []
    forward = WSSSNet.forward

    def spy(self, images, project=True):
        projected.append(project)
        return forward(self, images, project)

    monkeypatch.setattr(WSSSNet, "forward", spy)
    train(tiny(tmp_path, "off", base="cam", use_ppc=False, steps=2), progress=False)
    assert projected == [False] * 4  # two views a step
    projected.clear()
    train(tiny(tmp_path, "late", base="cam", use_ppc=True, steps=3, ppc_start_step=2),
          progress=False)
    assert projected == [False] * 4 + [True] * 2


def test_same_run_twice_is_identical(tmp_path):
    a = train(tiny(tmp_path, "a", base="seam"), progress=False)
    b = train(tiny(tmp_path, "b", base="seam"), progress=False)
    assert _metrics(a) == _metrics(b)
    wa, wb = _weights(a), _weights(b)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_killed_and_resumed_run_equals_uninterrupted(tmp_path):
    cfg = dict(base="seam", steps=6, batch_size=8, dropout=0.3)
    whole = train(tiny(tmp_path, "whole", **cfg), progress=False)
    config = tiny(tmp_path, "resumed", **cfg)
    train(config, stop_after=2, progress=False)
    assert not (Path(config.out_dir) / "model.pt").exists()
    train(config, stop_after=4, progress=False)
    resumed = train(config, progress=False)
    assert _metrics(whole) == _metrics(resumed)
    wa, wb = _weights(whole), _weights(resumed)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_resume_refuses_another_config(tmp_path):
    config = tiny(tmp_path, steps=4)
    train(config, stop_after=2, progress=False)
    with pytest.raises(ValueError, match="belongs to a run with another config"):
        train(config.replace(lr=0.1), progress=False)


def test_run_writes_seeds_curve_and_summary(tmp_path):
    summary = run(tiny(tmp_path, use_ppc=True), progress=False)
    out = tmp_path / "run"
    assert 0 < summary["best_miou"] <= 1 and summary["num_eval_images"] == 8
    cams, keys = load_cam_npz(out / "seeds" / "cams" / "syn_000000.npz")
    assert cams.dtype == np.float16 and cams.shape[1:] == (64, 64) and len(keys) == len(cams)
    assert cams.max() <= 1 and cams.min() >= 0
    png = Image.open(out / "seeds" / "masks" / "syn_000000.png")
    assert png.mode == "P" and png.size == (64, 64)
    assert set(np.unique(np.array(png))) <= {0, *(int(k) + 1 for k in keys)}
    assert (out / "curve.csv").read_text().startswith("threshold,miou")
    assert len((out / "per_image.csv").read_text().splitlines()) == 9
    # the machine that made it: reruns reproduce bit for bit only on a CPU like it
    machine = summary["machine"]
    assert machine["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert machine["cpu"] == cpu_name() and machine["cpu"] and "gpu" not in machine
    again = run(tiny(tmp_path, use_ppc=True), progress=False)  # reused, not recomputed
    assert again == summary


def test_intra_weight_shares_of_a_finished_run(tmp_path):
    config = tiny(tmp_path, use_ppc=True)
    run(config, progress=False)
    out = tmp_path / "run"
    shares = intra_weight_shares(out, images=12, seed=3)
    assert list(shares.index) == ["mean over pixels", "class-balanced, every pixel",
                                  "official sampling"]
    assert list(shares.columns) == list(WEIGHT_REGIONS)
    assert np.allclose(shares.sum(axis=1), 1.0) and shares.attrs["images"] == 8
    # the mean's shares are the pixels' shares, from the model's pseudo labels computed
    # here with the public functions
    _, model = load_trained(out)
    data = SyntheticSegmentation(TINY, "train", config.data_seed,
                                 transform=eval_transform(config.augment))
    images = torch.stack([data[i]["image"] for i in range(8)])
    with torch.no_grad():
        cams = normalize_cams(model(images)["logits"])
    labels = pseudo_labels(cams, torch.from_numpy(data.data.labels[:8]), config.ppc.bg_threshold)
    pixels = weight_by_region([(torch.ones(labels.shape), labels, data.data.masks[:8],
                                data.data.regions[:8])])
    assert shares.loc["mean over pixels"].tolist() == pytest.approx(list(pixels.values()))
    assert intra_weight_shares(out, seed=3).equals(shares)  # seeded; 8 images in all
    with pytest.raises(ValueError, match="images must be at least 1, got 0"):
        intra_weight_shares(out, images=0)
    run(tiny(tmp_path, "full", base="full"), progress=False)
    with pytest.raises(ValueError, match="fully supervised run"):
        intra_weight_shares(tmp_path / "full")


def test_voc_layout_runs_through_the_same_pipeline(tmp_path):
    root = write_voc(tmp_path / "VOC2012", TINY, seed=0)
    config = tiny(tmp_path, dataset="voc", data_root=str(root), steps=2)
    summary = run(config, progress=False)
    assert summary["num_eval_images"] == 8
    (root / "ImageSets" / "Segmentation" / "train.txt").write_text("\n")
    fresh = config.replace(out_dir=str(tmp_path / "fresh"))
    with pytest.raises(DatasetLayoutError, match=r"train.txt lists no id"):
        run(fresh, progress=False)
    assert not Path(fresh.out_dir).exists()  # refused before training


def test_bad_inputs_give_one_line_errors(tmp_path, capsys):
    with pytest.raises(ValueError, match="unknown backbone 'vgg16'"):
        RunConfig(backbone="vgg16")
    with pytest.raises(ValueError, match="unknown base 'eps'"):
        RunConfig(base="eps")
    with pytest.raises(ValueError, match="dataset 'voc' needs data_root"):
        RunConfig(dataset="voc")
    with pytest.raises(DatasetLayoutError, match="has no JPEGImages"):
        train(tiny(tmp_path, dataset="voc", data_root=str(tmp_path)), progress=False)
    bad = tmp_path / "wrong.pth"
    torch.save({"conv.weight": torch.zeros(2, 2)}, bad)
    with pytest.raises(ValueError, match="matches none"):
        train(tiny(tmp_path, "w", weights=str(bad)), progress=False)
    code = cli_main(["train", "--backbone", "vgg16", "--out_dir", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: unknown backbone 'vgg16'")
    assert len(err.strip().splitlines()) == 1
    code = cli_main(["train", "--dataset", "voc", "--data_root", str(tmp_path / "none"),
                     "--out_dir", str(tmp_path / "y")])
    err = capsys.readouterr().err
    assert code == 2 and "does not exist" in err and len(err.strip().splitlines()) == 1


def test_command_line_run_and_help(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    help_text = subprocess.run([sys.executable, "-m", "ppc", "run", "--help"], env=env,
                               capture_output=True, text=True, check=True).stdout
    for option in ("--base", "--ppc.top_k", "--view.scale", "--synthetic.num_classes",
                   "--use_ppc", "--weights"):
        assert option in help_text
    out = tmp_path / "cli"
    cmd = [sys.executable, "-m", "ppc", "run", "--quiet", "--out_dir", str(out), "--steps", "2",
           "--batch_size", "8", "--width", "8", "--scales", "1.0", "--threads", "2",
           "--synthetic.num_train_aug", "32", "--synthetic.num_train", "4",
           "--synthetic.num_val", "4", "--ppc.top_k", "8"]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "config.json").read_text())["ppc"]["top_k"] == 8
    assert "best_miou" in result.stdout


def test_ppc_console_script_is_the_command_line(capsys, monkeypatch):
    import importlib
    import shutil
    import tomllib

    target = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["ppc"]
    module, name = target.split(":")
    console = getattr(importlib.import_module(module), name)
    monkeypatch.setattr(sys, "argv", ["ppc", "evaluate", "--help"])
    with pytest.raises(SystemExit) as stop:
        console()
    assert stop.value.code == 0 and capsys.readouterr().out.startswith("usage: ppc evaluate")
    script = shutil.which("ppc", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("ppc is not installed in this environment (pip install -e .)")
    result = subprocess.run([script, "run", "--steps", "x"], capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr == (
        "ppc run: error: argument --steps: invalid int value: 'x' (see ppc run --help)\n")


def test_torchrun_two_processes(tmp_path):
    # both processes train; rank 0 alone infers and evaluates, once model.pt is written
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", "-m", "ppc", "run", "--quiet", "--device", "cpu",  # gloo, also beside a GPU
           "--out_dir", str(out), "--steps", "2", "--scales", "1.0",
           "--batch_size", "8", "--width", "8", "--threads", "1", "--base", "seam",
           "--synthetic.num_train_aug", "32", "--synthetic.num_train", "4",
           "--synthetic.num_val", "4"]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "model.pt").exists() and len(_metrics(out)) == 1
    assert (out / "summary.json").exists() and result.stdout.count("best_miou") == 1
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and again.stdout.count("best_miou") == 1  # stored run


def test_runtime_rules_follow_the_device():
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    auto = RunConfig()
    assert not auto.bf16_autocast(cpu) and auto.bf16_autocast(cuda)
    assert not auto.channels_last_on(cpu) and auto.channels_last_on(cuda)
    forced = RunConfig(amp="bf16", channels_last="on")
    assert forced.bf16_autocast(cpu) and forced.channels_last_on(cpu)
    off = RunConfig(amp="off", channels_last="off")
    assert not off.bf16_autocast(cuda) and not off.channels_last_on(cuda)


def test_cudnn_autotuner_is_set_for_the_block_and_restored(tmp_path, monkeypatch):
    from ppc import train as train_module

    before = torch.backends.cudnn.benchmark
    try:
        for outside in (False, True):
            torch.backends.cudnn.benchmark = outside
            for on in (False, True):
                with train_module.cudnn_autotuner(on):
                    assert torch.backends.cudnn.benchmark is on
                assert torch.backends.cudnn.benchmark is outside
            with pytest.raises(KeyError), train_module.cudnn_autotuner(not outside):
                raise KeyError("a failing step")
            assert torch.backends.cudnn.benchmark is outside  # restored on errors too
        # training asks for it on CUDA only (and only with cudnn_benchmark), never on the CPU
        asked = []
        real = train_module.cudnn_autotuner
        monkeypatch.setattr(train_module, "cudnn_autotuner",
                            lambda on: asked.append(on) or real(on))
        train_module.train(tiny(tmp_path, steps=1), progress=False)
        assert asked == [False] and torch.backends.cudnn.benchmark is True
    finally:
        torch.backends.cudnn.benchmark = before
    # a runtime field: the same experiment with it on or off (a stored run stays reusable)
    assert RunConfig(cudnn_benchmark=False).identity() == RunConfig().identity()


def test_resume_drops_rows_logged_after_the_checkpoint(tmp_path):
    config = tiny(tmp_path, steps=4)
    train(config, stop_after=2, progress=False)
    with (Path(config.out_dir) / "metrics.jsonl").open("a") as f:
        f.write(json.dumps({"step": 3, "total": 123.0}) + "\n")  # logged, then killed
    train(config, progress=False)
    assert [r["step"] for r in _metrics(config.out_dir)] == [1, 2, 3, 4]
    assert all(r["total"] != 123.0 for r in _metrics(config.out_dir))


def test_seeds_are_min_max_normalised_present_classes():
    from ppc.infer import normalise_present

    cams = torch.rand(4, 5, 6) + torch.arange(4.0)[:, None, None]
    maps, keys = normalise_present(cams, torch.tensor([0.0, 1.0, 0.0, 1.0]))
    assert keys.tolist() == [1, 3] and maps.shape == (2, 5, 6)
    for m in maps:
        assert m.min() == 0 and 0.999 < m.max() <= 1
    with pytest.raises(ValueError, match=r"label must be \[C\] with C = 4"):
        normalise_present(cams, torch.tensor([0.0, 1.0]))


def test_inference_and_run_helpers_refuse_bad_arguments(tmp_path):
    from ppc.experiment import evaluate_run
    from ppc.infer import infer, multiscale_cams

    config = tiny(tmp_path)
    run(config, progress=False)
    _, model = load_trained(config.out_dir)
    images = torch.rand(2, 3, 32, 32)
    for scales in ([0], [-1.0], (), [float("inf")], "1", [True]):
        with pytest.raises(ValueError, match="scales must be one or more finite factors > 0"):
            multiscale_cams(model, images, scales)
    with pytest.raises(ValueError, match="images must be a floating-point tensor"):
        multiscale_cams(model, (images * 255).byte())
    with pytest.raises(ValueError, match=r"images must have shape \[N, 3, H, W\]"):
        multiscale_cams(model, images[0])
    with pytest.raises(ValueError, match=r"png_threshold must be a number in \[0, 1\]"):
        infer(model, [], tmp_path / "seeds", png_threshold=2.0)
    with pytest.raises(ValueError, match="device must be a torch.device or a name"):
        load_trained(config.out_dir, device="bogus")
    with pytest.raises(ValueError, match="holds a run of another config"):
        evaluate_run(config.replace(data_seed=5), Path(config.out_dir))
    from ppc.experiment import coverage, intra_weights, reference_batch

    for size in (0, -2, 10**5, 2.0):
        with pytest.raises(ValueError, match=r"batch_size must be an int in \[1, "):
            reference_batch(tmp_path / "reference", size)
    assert not (tmp_path / "reference").exists()  # refused before training

    for helper in (coverage, intra_weights):
        with pytest.raises(ValueError, match="is not a run folder"):
            helper(tmp_path / "typo")
    summary = Path(config.out_dir) / "summary.json"
    summary.write_text(summary.read_text()[:40])  # half-written
    with pytest.raises(ValueError, match=r"summary.json cannot be read as JSON .* damaged"):
        run(config, progress=False)


def test_weights_are_a_file_or_a_torchvision_name(tmp_path, capsys):
    from ppc.train import weights_source
    assert weights_source("resnet50", "IMAGENET1K_V1") == ("IMAGENET1K_V1", None)
    assert weights_source("small", None) == (None, None)
    with pytest.raises(ValueError, match="torchvision weight names are for resnet50 and "
                                         "resnet101 only; for backbone 'resnet38'"):
        weights_source("resnet38", "IMAGENET1K_V1")
    # a path without a suffix is a file: loaded when it exists, an error when it does not
    zeros = {k: torch.zeros_like(v) for k, v in
             build_model(tiny(tmp_path), 6).backbone.state_dict().items()}
    torch.save(zeros, tmp_path / "small_weights")
    model = build_model(tiny(tmp_path, weights=str(tmp_path / "small_weights")), 6)
    assert all(torch.equal(v, zeros[k]) for k, v in model.backbone.state_dict().items())
    with pytest.raises(FileNotFoundError):
        train(tiny(tmp_path, weights=str(tmp_path / "missing")), progress=False)
    code = cli_main(["train", "--weights", str(tmp_path / "missing"), "--out_dir",
                     str(tmp_path / "z")])
    err = capsys.readouterr().err
    assert code == 2 and "missing" in err and len(err.strip().splitlines()) == 1


def test_resume_refuses_another_number_of_processes(tmp_path):
    config = tiny(tmp_path, steps=4)
    train(config, stop_after=2, progress=False)
    path = Path(config.out_dir) / "checkpoint.pt"
    ckpt = torch.load(path, weights_only=False)
    ckpt["rng"] = ckpt["rng"] * 2  # as written by 2 processes
    torch.save(ckpt, path)
    with pytest.raises(ValueError, match=r"written by 2 process\(es\), this run has 1"):
        train(config, progress=False)


def test_command_line_infer_writes_the_seeds_of_run(tmp_path):
    # bf16 forced on the CPU: `ppc infer` once ran without it and its seeds differed
    config = tiny(tmp_path, amp="bf16")
    run(config, progress=False)
    assert cli_main(["infer", config.out_dir, "--quiet"]) == 0
    out = Path(config.out_dir)
    for path in sorted((out / "seeds" / "cams").glob("*.npz")):
        want, keys = load_cam_npz(path)
        got, got_keys = load_cam_npz(out / "seeds-train" / "cams" / path.name)
        assert np.array_equal(keys, got_keys) and np.array_equal(want, got)


def test_command_line_evaluate_of_a_split_not_inferred_says_how(tmp_path, capsys):
    config = tiny(tmp_path)
    run(config, progress=False)
    assert cli_main(["evaluate", config.out_dir, "--split", "val"]) == 2
    err = capsys.readouterr().err
    assert f"python -m ppc infer {config.out_dir} --split val" in err
    assert len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit):
        cli_main(["evaluate", config.out_dir, "--split", ""])
    assert "expected a split name" in capsys.readouterr().err


def test_infer_batches_images_of_different_sizes_apart(tmp_path):
    from ppc.infer import infer

    model = build_model(tiny(tmp_path), 6).eval()
    g = torch.Generator().manual_seed(0)
    sizes = [(32, 32), (40, 48), (32, 32), (24, 40)]
    samples = [{"image": torch.randn(3, h, w, generator=g), "id": f"im{i}",
                "label": torch.tensor([1.0, 0, 1, 0, 0, 1])} for i, (h, w) in enumerate(sizes)]
    infer(model, samples, tmp_path / "one", scales=(1.0,), batch_size=1, progress=False)
    infer(model, samples, tmp_path / "all", scales=(1.0,), batch_size=4, progress=False)
    for i, (h, w) in enumerate(sizes):
        one, _ = load_cam_npz(tmp_path / "one" / "cams" / f"im{i}.npz")
        together, _ = load_cam_npz(tmp_path / "all" / "cams" / f"im{i}.npz")
        assert one.shape == (3, h, w)
        np.testing.assert_allclose(together.astype(np.float32), one.astype(np.float32),
                                   atol=2e-3)


@pytest.mark.parametrize("changes,message", [
    ({"use_ppc": "false"}, "RunConfig.use_ppc must be bool, got 'false'"),
    ({"seed": "3"}, "RunConfig.seed must be int"),
    ({"lr_mult": (1.0, 2.0)}, r"RunConfig.lr_mult must be a list of 4"),
    ({"threads": 0}, "threads must be >= 1"),
    ({"scales": (0.0,)}, r"scales must be one or more factors in \(0, 8\]"),
    ({"scales": (1.0, float("inf"))}, r"scales must be one or more factors in \(0, 8\]"),
    ({"eval_split": "bogus"}, r"eval_split 'bogus' is not a split of the synthetic benchmark"),
    ({"train_split": ""}, r"train_split '' is not a split of the synthetic benchmark"),
    ({"png_threshold": 2.0}, r"png_threshold must be in \[0, 1\]"),
    ({"ppc_start_step": 300}, r"ppc_start_step must be in \[0, steps\)"),
    ({"width": 0}, "width must be >= 1"),
    ({"lr": float("inf")}, "lr must be a finite number"),
    ({"ppc": {"bg_threshold": 1.5}}, r"PPCConfig.bg_threshold must be in \[0, 1\]"),
    ({"view": {"scale": "0.5"}}, "ViewConfig.scale must be float"),
    ({"synthetic": {"objects_per_image": (1, 2, 3)}},
     r"SyntheticConfig.objects_per_image must be a list of 2"),
    ({"ppc": "default"}, r"RunConfig.ppc must be a PPCConfig or a dict of its fields"),
    ({"view": None}, r"RunConfig.view must be a ViewConfig"),
    ({"ppc": {"topk": 4}}, r"unknown ppc field\(s\) \['topk'\]"),
    ({"synthetic": {"classes": 3}}, r"unknown synthetic field\(s\) \['classes'\]"),
    ({"ppc": {"tau": float("inf")}}, "PPCConfig.tau must be a finite number > 0"),
    ({"ppc": {"alpha": float("inf")}}, "PPCConfig.alpha must be a finite number >= 0"),
    ({"ppc": {"sampling_random_fraction": 0.0, "sampling_hard_fraction": 0.0}},
     "pixel sampling would draw no pixel"),
    ({"momentum": 1.5}, r"momentum must be in \[0, 1\)"),
    ({"ppc": {"mining_skip_fraction": 0.9, "mining_keep_fraction": 0.9}},
     r"mining_skip_fraction \+ mining_keep_fraction must be <= 1 .*got 0.9 \+ 0.9"),
    ({"ppc": {"sampling_hard_fraction": 0.9, "sampling_hard_upper": 0.1}},
     r"sampling_hard_fraction \(0.9\) must not exceed PPCConfig.sampling_hard_upper \(0.1\)"),
    ({"weight_decay": float("inf")}, "weight_decay must be a finite number >= 0"),
    ({"seed": -1}, r"seed must be in \[0, 2\*\*32\)"),
    ({"data_seed": 2**32}, r"data_seed must be in \[0, 2\*\*32\)"),
    ({"out_dir": ""}, "out_dir must name a folder"),
    ({"lr_mult": (1.0, 1.0, -1.0, 1.0)}, r"lr_mult must be 4 finite factors >= 0"),
    ({"lr_mult": (0.0, 0.0, 0.0, 0.0)}, r"lr_mult must be 4 finite factors >= 0, not all 0"),
    ({"lr_mult": (float("inf"), 1.0, 1.0, 1.0)}, r"lr_mult must be 4 finite factors"),
    ({"synthetic": {"num_train": 0}}, r"eval_split 'train' .* has no image \(synthetic.num_train"),
    ({"synthetic": {"num_val": 0}, "eval_split": "val"}, r"eval_split 'val' .* has no image"),
])
def test_run_config_refuses_wrong_types_and_values(changes, message):
    with pytest.raises(ValueError, match=message):
        RunConfig(**changes)


def test_config_files_and_finished_runs_are_not_silently_replaced(tmp_path, capsys):
    bad = tmp_path / "config.json"
    bad.write_text('{"steps": 3, "bogus": 1}')
    with pytest.raises(ValueError, match=r"unknown RunConfig field\(s\) \['bogus'\]"):
        RunConfig.load(bad)
    bad.write_text("not json")
    with pytest.raises(ValueError, match="cannot read a run config"):
        RunConfig.load(bad)
    config = tiny(tmp_path)
    run(config, progress=False)
    with pytest.raises(ValueError, match=r"finished run of another configuration \(differs in "
                                         r"\['seed'\]\)"):
        run(config.replace(seed=1), progress=False)
    # `evaluate` right after `run` scores the run's own seeds
    assert cli_main(["evaluate", config.out_dir]) == 0
    assert "best: mIoU" in capsys.readouterr().out
    # --force replaces it (the finished run's checkpoint of another config is not resumed)
    replaced = run(config.replace(seed=1), progress=False, force=True)
    assert replaced["config"]["seed"] == 1
    assert RunConfig.load(Path(config.out_dir) / "config.json").seed == 1
    (tmp_path / "a_file").write_text("")
    code = cli_main(["train", "--out_dir", str(tmp_path / "a_file")])
    err = capsys.readouterr().err
    assert code == 2 and "is a file" in err and len(err.strip().splitlines()) == 1


def test_a_finished_run_is_not_reused_once_its_weights_file_has_changed(tmp_path):
    from ppc.models import SmallNet

    weights = tmp_path / "backbone.pth"
    torch.manual_seed(0)
    torch.save(SmallNet(8).state_dict(), weights)
    config = tiny(tmp_path, weights=str(weights))
    first = run(config, progress=False)
    assert len(first["weights_sha256"]) == 64
    assert run(config, progress=False) == first  # the same file: reused
    model = (Path(config.out_dir) / "model.pt").read_bytes()
    torch.manual_seed(1)
    torch.save(SmallNet(8).state_dict(), weights)  # e.g. pre-trained again
    with pytest.raises(ValueError, match=r"trained from another version of .*backbone.pth"):
        run(config, progress=False)
    again = run(config, progress=False, force=True)  # retrains from the start
    assert again["weights_sha256"] != first["weights_sha256"]
    assert (Path(config.out_dir) / "model.pt").read_bytes() != model
    assert "weights_sha256" not in run(tiny(tmp_path, "plain"), progress=False)
    # an interrupted run is not resumed from a checkpoint of other initial weights
    interrupted = tiny(tmp_path, "interrupted", weights=str(weights))
    train(interrupted, stop_after=2, progress=False)
    torch.save(SmallNet(8).state_dict(), weights)
    with pytest.raises(ValueError, match=r"checkpoint.pt was trained from another version"):
        train(interrupted, progress=False)


def test_command_line_errors_are_one_line(capsys):
    for argv, message in ((["run", "--use_ppc", "maybe"], "expected true or false"),
                          (["run", "--lr_mult", "1", "2"], "expected 4 arguments"),
                          (["run", "--config", "c.json", "--preset", "voc-resnet38"],
                           "argument --preset: not allowed with argument --config"),
                          (["train", "--config", ""], "expected the path of a run's config")):
        with pytest.raises(SystemExit):
            cli_main(argv)
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1


def test_damaged_run_files_give_one_line_errors(tmp_path):
    config = tiny(tmp_path, steps=4)
    train(config, stop_after=2, progress=False)
    out = Path(config.out_dir)
    checkpoint = out / "checkpoint.pt"
    whole = checkpoint.read_bytes()
    for damaged in (whole[: len(whole) // 2], b"", b"garbage\n"):
        checkpoint.write_bytes(damaged)
        with pytest.raises(ValueError, match=r"checkpoint.pt cannot be read, it is damaged .*"
                                             r"delete it to train from the start"):
            train(config, progress=False)
    torch.save({"step": 2}, checkpoint)
    with pytest.raises(ValueError, match=r"not a ppc training checkpoint \(it lacks "):
        train(config, progress=False)
    checkpoint.unlink()
    train(config, progress=False)
    model = out / "model.pt"
    good = model.read_bytes()
    model.write_bytes(good[:100])
    with pytest.raises(ValueError, match=r"model.pt cannot be read.*run the same config again"):
        load_trained(out)
    torch.save({"f_cam.weight": torch.zeros(1)}, model)
    with pytest.raises(ValueError, match=r"model.pt does not fit the network of .*config.json"):
        load_trained(out)


def test_out_dir_must_be_a_writable_folder_of_its_own(tmp_path):
    data = tmp_path / "data"
    (data / "JPEGImages").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"holds a dataset \(JPEGImages or ImageSets\)"):
        train(tiny(tmp_path, out_dir=str(data)), progress=False)
    (tmp_path / "a_file").write_text("")
    with pytest.raises(ValueError, match=r"cannot create out_dir .*a_file/run"):
        train(tiny(tmp_path, out_dir=str(tmp_path / "a_file" / "run")), progress=False)


@pytest.mark.parametrize("use_ppc", [False, True])
def test_a_diverging_run_stops_with_the_step_and_the_fix(tmp_path, use_ppc):
    config = tiny(tmp_path, steps=6, lr=1e30, optimizer="sgd", use_ppc=use_ppc)
    with pytest.raises(ValueError, match=r"training diverged at step \d+: .*lower lr \(1e\+30\)"):
        train(config, progress=False)


def test_distributed_model_leaves_batchnorm_buffers_alone_between_the_two_views(tmp_path):
    # A step runs two forwards (S, T) before one backward. With DDP's default buffer
    # broadcast, the second forward rewrites BatchNorm's running statistics in place, and
    # torch 2.11's backward then fails ("modified by an inplace operation"; seen with
    # torchrun on 2 CPU processes; torch 2.14 happens not to trip on it).
    import torch.distributed as dist
    from torch import nn

    from ppc.train import distributed_model

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0,
                            world_size=1)
    try:
        model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        net = distributed_model(model, torch.device("cpu"), find_unused_parameters=False)
        assert net.broadcast_buffers is False
        g = torch.Generator().manual_seed(0)
        out_s, out_t = (net(torch.randn(2, 3, 6, 6, generator=g)) for _ in range(2))
        (out_s.square().mean() + out_t.mean()).backward()
        assert model[0].weight.grad is not None and model[1].num_batches_tracked == 2
    finally:
        dist.destroy_process_group()


def test_out_of_memory_is_one_line_and_other_runtime_errors_are_not_hidden(monkeypatch, capsys):
    import ppc.cli

    def out_of_memory(args):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate "
                           "81 TiB\nmore lines")

    monkeypatch.setattr(ppc.cli, "_cmd_train", out_of_memory)
    assert cli_main(["train"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "out of memory" in err and "81 TiB" in err and "lower batch_size" in err

    def other(args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(ppc.cli, "_cmd_train", other)
    with pytest.raises(RuntimeError, match="a bug"):
        cli_main(["train"])


def test_configs_are_checked_again_when_changed_after_they_were_built(tmp_path):
    config = tiny(tmp_path)
    with pytest.raises(ValueError, match=r"unknown RunConfig field\(s\) \['stepz'\]"):
        config.replace(stepz=3)
    with pytest.raises(ValueError, match=r"unknown PPCConfig field\(s\) \['topk'\]"):
        config.ppc.replace(topk=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.ppc.tau = -1.0
    config.steps = 0  # RunConfig is mutable (notebooks build it step by step)
    with pytest.raises(ValueError, match="steps must be >= 1, got 0"):
        train(config, progress=False)
    assert not Path(config.out_dir).exists()
    with pytest.raises(ValueError, match="config must be a ppc.config.RunConfig, got dict"):
        train({"steps": 3}, progress=False)
    # far more threads than cores crash torch (100,000 segfaulted): refused before any work
    with pytest.raises(ValueError, match=r"threads must be an int in \[1, \d+\] \(CPU threads"):
        train(tiny(tmp_path, "many", threads=100_000), progress=False)


def test_a_run_folder_whose_config_was_edited_is_refused(tmp_path, capsys):
    config = tiny(tmp_path)
    run(config, progress=False)
    out = Path(config.out_dir)
    assert cli_main(["evaluate", str(out), "--split", "bogus"]) == 2
    err = capsys.readouterr().err
    assert "unknown synthetic split 'bogus'" in err and "infer" not in err
    stored = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**stored, "data_seed": 5}))
    with pytest.raises(ValueError, match=r"config.json differs from the config the run was "
                                         r"made with \(summary.json\) in \['data_seed'\]"):
        load_trained(out)
    for command in (["evaluate", str(out)], ["infer", str(out)]):
        assert cli_main(command) == 2
        err = capsys.readouterr().err
        assert "differs from the config the run was made with" in err
        assert len(err.strip().splitlines()) == 1
    (out / "config.json").write_text(json.dumps({**stored, "threads": 1}))  # runtime only
    assert load_trained(out)[0].threads == 1


def test_retraining_a_finished_run_in_place_drops_its_summary(tmp_path):
    config = tiny(tmp_path)
    run(config, progress=False)
    out = Path(config.out_dir)
    # a forced rerun that fails on its input leaves the finished run as it was
    with pytest.raises(ValueError, match="fewer than one batch of 1000000"):
        run(config.replace(batch_size=10**6), progress=False, force=True)
    assert (out / "summary.json").is_file()
    # train(resume=False), the fix train's own errors suggest, replaces the run: the old
    # summary no longer describes it and is removed, so the folder stays usable
    train(config.replace(seed=1, resume=False), progress=False)
    assert not (out / "summary.json").exists()
    assert load_trained(out)[0].seed == 1
    # a summary of another version's fields is named in the error
    (out / "summary.json").write_text(json.dumps({"config": {"stepz": 3}}))
    with pytest.raises(ValueError, match=r"summary.json: unknown RunConfig field\(s\) \['stepz'\]"):
        load_trained(out)
