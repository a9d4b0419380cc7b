import json

import numpy as np
import torch

from ppc.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from ppc.models import SmallNet
from ppc.models.weights import load_weights
from ppc.pretrain import (
    PretrainConfig,
    held_out_accuracy,
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
