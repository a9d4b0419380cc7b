"""ResNet-38 backbone (official resnet38d layout) and the checkpoint loader.

The network has ~105 M parameters, so the whole module shares ONE instance (``net``).
Tests that change its weights restore them before returning.
"""

from __future__ import annotations

import contextlib

import pytest
import torch
from torch import nn

from ppc.models.resnet38 import ResNet38
from ppc.models.weights import WeightsReport, load_weights

EXPECTED_TOP_LEVEL = [
    "conv1a",
    "b2", "b2_1", "b2_2",
    "b3", "b3_1", "b3_2",
    "b4", "b4_1", "b4_2", "b4_3", "b4_4", "b4_5",
    "b5", "b5_1", "b5_2",
    "b6",
    "b7",
    "bn7",
]  # fmt: skip


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    model = ResNet38()
    model.eval()
    return model


@pytest.fixture(scope="module")
def saved(net, tmp_path_factory):
    """The shared network's own state_dict, saved once."""
    path = tmp_path_factory.mktemp("weights") / "resnet38.pth"
    torch.save(net.state_dict(), path)
    return path


@contextlib.contextmanager
def restored(net, *keys):
    """Snapshot some state tensors of ``net`` and put them back afterwards."""
    state = net.state_dict()
    keep = {k: state[k].clone() for k in keys}
    try:
        yield
    finally:
        net.load_state_dict(keep, strict=False)


def image(h=64, w=64, seed=1):
    return torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------- architecture


@pytest.mark.parametrize("size", [(64, 64), (72, 56), (65, 63)])
def test_output_shapes_and_stride(net, size):
    h, w = size
    with torch.no_grad():
        out = net(image(h, w))
    assert set(out) == {"feat", "side1", "side2"}
    fh, fw = -(-h // 8), -(-w // 8)  # ceil: stride-2 3x3 convs with padding 1
    assert out["feat"].shape == (1, ResNet38.out_channels, fh, fw) == (1, 4096, fh, fw)
    assert out["side1"].shape == (1, 512, fh, fw)
    assert out["side2"].shape == (1, 1024, fh, fw)
    assert ResNet38.side_channels == (512, 1024) and ResNet38.output_stride == 8
    assert (out["feat"] >= 0).all() and (out["side1"] >= 0).all()  # all after a ReLU


def test_official_parameter_names(net):
    state = net.state_dict()
    top = list(dict.fromkeys(k.split(".")[0] for k in state))
    assert top == EXPECTED_TOP_LEVEL
    assert len(state) == 228
    assert sum(p.numel() for p in net.parameters()) == 105_070_912
    for key in [
        "conv1a.weight",
        "b2.bn_branch2a.running_var",
        "b2.conv_branch1.weight",
        "b4_5.conv_branch2b1.weight",
        "b5.conv_branch1.weight",
        "b6.bn_branch2b2.weight",
        "b6.conv_branch2b2.weight",
        "b7.conv_branch1.weight",
        "bn7.bias",
    ]:
        assert key in state, key
    assert "b2_1.conv_branch1.weight" not in state  # identity shortcut: no projection
    assert "conv1a.bias" not in state
    assert state["b5.conv_branch2a.weight"].shape == (512, 512, 3, 3)
    assert state["b7.conv_branch2b1.weight"].shape == (2048, 1024, 3, 3)
    assert net.b5.conv_branch2a.dilation == (1, 1) and net.b5_1.conv_branch2a.dilation == (2, 2)
    assert net.b7.conv_branch2b1.dilation == (4, 4)
    assert net.b6.dropout_2b1.p == 0.3 and net.b7.dropout_2b2.p == 0.5


def test_batchnorm_stays_in_eval_after_train(net):
    try:
        assert net.train() is net
        bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
        assert len(bns) == 37  # 15 basic blocks x 2, 2 bottlenecks x 3, bn7
        assert not any(bn.training for bn in bns)
        assert all(not p.requires_grad for bn in bns for p in bn.parameters())
        assert net.training and net.b7.dropout_2b1.training  # dropout follows the mode
    finally:
        net.eval()


def test_frozen_modules_have_no_grad(net):
    frozen = net.frozen_modules()
    assert frozen == [net.conv1a, net.b2, net.b2_1, net.b2_2]
    try:
        net.requires_grad_(True)
        net.train()  # re-freezes, as the official train() does
        assert all(not p.requires_grad for m in frozen for p in m.parameters())
        assert net.b3.conv_branch2a.weight.requires_grad
    finally:
        net.eval()


def test_backward_reaches_b7_not_conv1a(net):
    try:
        net.train()
        out = net(image(32, 32))
        (out["feat"].mean() + out["side1"].mean()).backward()
        assert net.b7.conv_branch2b2.weight.grad is not None
        assert net.b7.conv_branch2b2.weight.grad.abs().sum() > 0
        assert net.b3.conv_branch2a.weight.grad is not None
        assert net.conv1a.weight.grad is None
        assert all(p.grad is None for p in net.b2_2.parameters())
        assert net.bn7.weight.grad is None
    finally:
        net.zero_grad(set_to_none=True)
        net.eval()


def test_pretrained_parameters(net):
    weights, biases = net.pretrained_parameters()
    trainable = [p for p in net.parameters() if p.requires_grad]
    assert {id(p) for p in weights + biases} == {id(p) for p in trainable}
    assert len(weights) == 35 and biases == []  # conv weights of b3 .. b7
    assert all(p.dim() == 4 for p in weights)


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (torch.zeros(3, 32, 32), "4 dimensions"),
        (torch.zeros(1, 1, 32, 32), "3 \\(RGB\\) channels"),
        (torch.zeros(1, 32, 32, 3), "channels-last"),
        (torch.zeros(1, 3, 32, 32, dtype=torch.uint8), "floating-point"),
        ([[0.0]], "torch.Tensor"),
    ],
)
def test_bad_input(net, x, match):
    with pytest.raises(ValueError, match=match):
        net(x)


# ----------------------------------------------------------------------- load_weights


def test_round_trip(net, saved):
    """Scramble the shared network, load its saved state back, get the same outputs."""
    x = image(40, 48, seed=2)
    with torch.no_grad():
        before = net(x)["feat"]
        for t in net.state_dict().values():
            if t.is_floating_point():
                t.mul_(0.5)  # keeps running_var positive
        assert not torch.allclose(net(x)["feat"], before)
    report = load_weights(net, saved)
    assert isinstance(report, WeightsReport)
    assert report.loaded == 228 and report.complete
    assert report.missing == [] and report.unexpected == [] and report.mismatched == []
    assert "all keys matched" in str(report)
    with torch.no_grad():
        torch.testing.assert_close(net(x)["feat"], before, rtol=0, atol=0)


def test_missing_and_unexpected(net, tmp_path):
    state = net.state_dict()
    del state["b7.conv_branch1.weight"]
    # like converted official weights: no BatchNorm counters, which are never reported
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    state["extra.weight"] = torch.zeros(2)
    path = tmp_path / "partial.pth"
    torch.save({"state_dict": state, "epoch": 3}, path)
    report = load_weights(net, path)
    assert report.missing == ["b7.conv_branch1.weight"]
    assert report.unexpected == ["extra.weight"]
    assert report.loaded == 228 - 37 - 1
    text = str(report)
    assert "1 missing" in text and "b7.conv_branch1.weight" in text and "extra.weight" in text


def test_shape_mismatch(net, tmp_path):
    path = tmp_path / "other.pth"
    torch.save(
        {"conv1a.weight": torch.zeros(64, 4, 3, 3), "bn7.running_mean": torch.ones(4096)}, path
    )
    with restored(net, "bn7.running_mean"):
        with pytest.raises(ValueError, match="different network") as info:
            load_weights(net, path)
        msg = str(info.value)
        assert "conv1a.weight" in msg and "[64, 4, 3, 3]" in msg and "[64, 3, 3, 3]" in msg
        assert not torch.equal(net.bn7.running_mean, torch.ones(4096))  # nothing loaded

        report = load_weights(net, path, strict_shapes=False)
        assert report.loaded == 1 and len(report.mismatched) == 1
        assert report.mismatched[0].startswith("conv1a.weight")
        assert torch.equal(net.bn7.running_mean, torch.ones(4096))


def test_not_a_checkpoint(net, tmp_path):
    path = tmp_path / "notes.pth"
    path.write_text("this is not a checkpoint\n")
    with pytest.raises(ValueError, match="not a PyTorch checkpoint") as info:
        load_weights(net, path)
    assert str(path) in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__

    mx = tmp_path / "ilsvrc-cls_rna-a1_cls1000_ep-0001.params"
    mx.write_bytes(b"\x12\x01\x00\x00garbage")
    with pytest.raises(ValueError, match="MXNet"):
        load_weights(net, mx)

    tensor_only = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), tensor_only)
    with pytest.raises(ValueError, match="not a state_dict"):
        load_weights(net, tensor_only)


def test_missing_file(net, tmp_path):
    path = tmp_path / "nowhere.pth"
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        load_weights(net, path)


def test_module_prefix_and_prefix_map(net, tmp_path):
    value = torch.full((4096,), 0.25)
    with restored(net, "bn7.running_mean"):
        path = tmp_path / "dp.pth"
        torch.save({"model": {"module.bn7.running_mean": value}}, path)
        report = load_weights(net, path)
        assert report.loaded == 1 and report.unexpected == []
        assert torch.equal(net.bn7.running_mean, value)

        mapped = tmp_path / "mapped.pth"
        torch.save({"module.backbone.bn7.running_mean": 2 * value}, mapped)
        report = load_weights(net, mapped, prefix_map={"backbone.": ""})
        assert report.loaded == 1
        assert torch.equal(net.bn7.running_mean, 2 * value)

        # a DataParallel-wrapped model is loaded through .module
        report = load_weights(nn.DataParallel(net), path)
        assert report.loaded == 1 and torch.equal(net.bn7.running_mean, value)


def test_none_matching(net, tmp_path):
    path = tmp_path / "vgg.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3), "fc.bias": torch.zeros(10)}, path)
    with pytest.raises(ValueError, match="matches none of the model's parameters") as info:
        load_weights(net, path)
    assert str(path) in str(info.value) and "another network" in str(info.value)
