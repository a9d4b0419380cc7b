import json

import numpy as np
import pytest
import torch

from ppc.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from ppc.models import SmallNet
from ppc.models.weights import load_weights
from ppc import pretrain as pretrain_module
from ppc.pretrain import (
    PretrainConfig,
    held_out_accuracy,
    main,
    make_batch,
    pretrain,
    reference_colours,
)


def test_dense_colour_labels_name_the_colour_of_each_pixel():
    config = PretrainConfig(batch_size=3, pixel_noise=0.01)
    colours = reference_colours(config)
    assert colours.shape == (16, 3)
    gaps = np.linalg.norm(colours[:, None] - colours[None], axis=-1) + np.eye(16)
    assert gaps.min() > 0.1  # well separated
    images, labels = make_batch(config, np.random.default_rng(0), colours)
    assert images.shape == (3, 3, 64, 64) and labels.shape == (3, 64, 64)
    rgb = images * torch.tensor(IMAGENET_STD)[:, None, None] + torch.tensor(
        IMAGENET_MEAN)[:, None, None]
    dist = ((rgb.permute(0, 2, 3, 1)[..., None, :] - torch.from_numpy(colours).float()) ** 2
            ).sum(-1)
    assert torch.equal(dist.argmin(-1), labels)
    assert len(labels.unique()) > 3  # several colours per batch
    again, _ = make_batch(config, np.random.default_rng(0), colours)
    assert torch.equal(images, again)


def test_pretrain_writes_weights_the_backbone_loads(tmp_path):
    torch.set_num_threads(2)
    config = PretrainConfig(steps=3, batch_size=4, width=8, dilations=(1, 1))
    path = pretrain(config, tmp_path / "w.pth", progress=False)
    report = load_weights(SmallNet(8, (1, 1)), path)
    assert report.loaded == len(SmallNet(8).state_dict()) and not report.missing
    meta = json.loads((tmp_path / "w.pth.json").read_text())
    assert meta["config"]["steps"] == 3 and 0 <= meta["pixel_accuracy"] <= 1
    assert 0 <= meta["held_out_pixel_accuracy"] <= 1
    second = pretrain(config, tmp_path / "v.pth", progress=False)
    a, b = torch.load(path), torch.load(second)
    assert all(torch.equal(a[k], b[k]) for k in a)  # seeded: the same weights twice


def test_held_out_accuracy_is_measured_in_eval_mode_on_unseen_batches():
    torch.manual_seed(0)
    config = PretrainConfig(batch_size=2, width=8, dilations=(1, 1))
    colours = reference_colours(config)
    backbone = SmallNet(8, (1, 1))
    head = torch.nn.Conv2d(backbone.out_channels, config.num_colours, 1)
    got = held_out_accuracy(config, backbone, head, colours, batches=2)
    assert not backbone.training and not head.training

    def accuracy(train_mode: bool) -> float:
        backbone.train(train_mode)
        rng = np.random.default_rng([config.seed, 1])  # not the training stream
        hits = []
        with torch.no_grad():
            for _ in range(2):
                images, labels = make_batch(config, rng, colours)
                logits = torch.nn.functional.interpolate(
                    head(backbone(images)["feat"]), size=labels.shape[1:], mode="bilinear")
                hits.append((logits.argmax(1) == labels).float().flatten())
        return float(torch.cat(hits).mean())

    assert abs(got - accuracy(train_mode=False)) < 1e-9
    assert abs(got - accuracy(train_mode=True)) > 1e-6  # batch statistics differ
    training_batch, _ = make_batch(config, np.random.default_rng(config.seed), colours)
    held_out_batch, _ = make_batch(config, np.random.default_rng([config.seed, 1]), colours)
    assert not torch.equal(training_batch, held_out_batch)


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("argv,message", [
    (["--steps", "0"], "--steps must be >= 1 (training steps), got 0"),
    (["--steps", "-1"], "--steps must be >= 1 (training steps), got -1"),
    (["--seed", "-1"], "--seed must be an int in [0, 2**32), got -1"),
    (["--seed", "99999999999999999999"], "--seed must be an int in [0, 2**32)"),
    (["--dilations", "0", "0"], "--dilations must be two ints >= 1 (blocks 5 and 6), got 0 0"),
    (["--dilations", "-1", "2"], "--dilations must be two ints >= 1"),
    (["--threads", "-1"], "argument --threads: the thread count must be an int in [1, "),
    (["--threads", "100000"], "argument --threads: the thread count must be an int in [1, "),
    (["--threads", "two"], "argument --threads: expected an int, got 'two'"),
])
def test_command_line_refuses_bad_options_in_one_line(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        main(["--out", str(tmp_path / "w.pth"), *argv])
    assert exit_.value.code == 2
    assert message in _one_error_line(capsys)
    assert not (tmp_path / "w.pth").exists()


def test_command_line_checks_the_output_before_training(tmp_path, capsys, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("trained before checking --out")

    monkeypatch.setattr(pretrain_module, "make_batch", no_training)
    (tmp_path / "a_file").write_text("")
    for out, message in ((tmp_path / "a_file" / "w.pth", f"{tmp_path / 'a_file'} is a file, "
                                                         "not a folder"),
                         (tmp_path / "a_file" / "sub" / "w.pth", "is a file, not a folder"),
                         (tmp_path, f"out {tmp_path} is a folder"),
                         (f"{tmp_path}/new/", f"out {tmp_path}/new/ ends with a slash, so it "
                                              "names a folder")):
        with pytest.raises(SystemExit) as exit_:
            main(["--out", str(out)])
        assert exit_.value.code == 2
        assert message in _one_error_line(capsys)
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("changes,message", [
    ({"steps": 0}, "PretrainConfig.steps must be an int >= 1 (training steps), got 0; pass "
                   "e.g. steps=300"),
    ({"batch_size": -2}, "PretrainConfig.batch_size must be an int >= 1"),
    ({"seed": -1}, "PretrainConfig: seed must be an int in [0, 2**32), got -1"),
    ({"seed": 2**32}, "PretrainConfig: seed must be an int in [0, 2**32)"),
    ({"dilations": (0, 0)}, "PretrainConfig.dilations must be two ints >= 1"),
    ({"dilations": (-1, 2)}, "PretrainConfig.dilations must be two ints >= 1"),
    ({"lr": float("nan")}, "PretrainConfig.lr must be a finite number > 0, got nan"),
    ({"pixel_noise": -0.1}, "PretrainConfig.pixel_noise must be a finite number >= 0"),
    ({"shapes": (5, 2)}, "PretrainConfig.shapes must be (min, max) ellipses per image"),
    ({"num_colours": 1}, "PretrainConfig.num_colours must be an int >= 2"),
    ({"image_size": 8}, "PretrainConfig.image_size must be an int >= 16"),
    ({"steps": "3"}, "PretrainConfig.steps must be int, got '3' (str)"),
    ({"palette_seed": -1}, "PretrainConfig.palette_seed must be an int >= 0"),
])
def test_config_refuses_bad_values(changes, message):
    with pytest.raises(ValueError) as err:
        PretrainConfig(**changes)
    assert message in str(err.value)


def test_pretrain_checks_its_output_before_training(tmp_path, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("trained before checking out")

    monkeypatch.setattr(pretrain_module, "make_batch", no_training)
    (tmp_path / "a_file").write_text("")
    config = PretrainConfig(steps=1, batch_size=2, width=8)
    with pytest.raises(ValueError, match="a_file is a file, not a folder"):
        pretrain(config, tmp_path / "a_file" / "w.pth", progress=False)
    with pytest.raises(ValueError, match="is a folder; pass a file path such as"):
        pretrain(config, tmp_path, progress=False)
    with pytest.raises(ValueError, match="config must be a PretrainConfig, got dict"):
        pretrain({"steps": 1}, tmp_path / "w.pth", progress=False)
