import numpy as np
import pytest
import torch

from ppc.models import SmallNet, TorchvisionResNet, WSSSNet, build_backbone, pixel_correlation
from ppc.models.weights import load_weights


@pytest.mark.parametrize("base", ["cam", "seam", "full"])
def test_wsss_net_outputs_and_gradients(base):
    torch.manual_seed(0)
    net = WSSSNet(SmallNet(width=8), num_classes=5, base=base, proj_dim=16)
    x = torch.randn(2, 3, 64, 48)
    out = net(x)
    k = 6 if base == "full" else 5
    assert out["logits"].shape == (2, k, 16, 12) and out["scores"].shape == (2, k)
    assert out["proj"].shape == (2, 16, 16, 12) and out["proj"].min() >= 0
    assert ("cam_rv" in out) == (base == "seam")
    loss = out["logits"].square().mean() + out["proj"].mean()
    if base == "seam":
        assert out["cam_rv"].shape == (2, 6, 16, 12)
        loss = loss + out["cam_rv"].mean()
    loss.backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    groups = net.parameter_groups()
    flat = [id(p) for g in groups for p in g]
    assert len(flat) == len(set(flat)) == sum(1 for p in net.parameters() if p.requires_grad)
    assert groups[0] == groups[1] == []  # the small net is trained from scratch


@pytest.mark.parametrize("base", ["cam", "seam"])
def test_project_false_leaves_out_f_proj_only(base):
    net = WSSSNet(SmallNet(width=8), num_classes=5, base=base, proj_dim=16).eval()
    calls = []
    net.proj_head.register_forward_hook(lambda *args: calls.append(1))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        full, lean = net(x), net(x, project=False)
    assert len(calls) == 1 and "proj" not in lean and set(full) - set(lean) == {"proj"}
    for key in lean:
        assert torch.equal(full[key], lean[key]), key


def test_torchvision_resnet_output_stride_frozen_bn_and_groups():
    torch.manual_seed(0)
    net = WSSSNet(TorchvisionResNet(50), num_classes=3, base="seam")
    net.train()
    assert all(not m.training for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    out = net(torch.randn(1, 3, 64, 64))
    assert out["logits"].shape == (1, 3, 8, 8) and out["cam_rv"].shape == (1, 4, 8, 8)
    groups = net.parameter_groups()
    assert groups[0] and groups[2] and not groups[3]
    flat = {id(p) for g in groups for p in g}
    assert flat == {id(p) for p in net.parameters() if p.requires_grad}
    assert not any(id(p) in flat for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)
                   for p in m.parameters())


def test_pixel_correlation_with_constant_features_averages_the_cam():
    cam = torch.rand(1, 3, 4, 4)
    conv = torch.nn.Conv2d(2, 2, 1, bias=False)
    torch.nn.init.ones_(conv.weight)
    out = pixel_correlation(cam, torch.ones(1, 2, 4, 4), conv)
    expected = cam.mean(dim=(2, 3), keepdim=True).expand_as(cam)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-4)


def test_bad_names_and_inputs():
    with pytest.raises(ValueError, match="unknown backbone 'vgg'"):
        build_backbone("vgg")
    with pytest.raises(ValueError, match="unknown base 'eps'"):
        WSSSNet(SmallNet(8), 3, base="eps")
    with pytest.raises(ValueError, match="unknown torchvision weights 'IMAGENET'"):
        TorchvisionResNet(50, "IMAGENET")
    with pytest.raises(ValueError, match=r"images must have shape \[N, 3, H, W\]"):
        SmallNet(8)(torch.randn(2, 64, 64))


def test_weights_for_another_network_are_refused(tmp_path):
    path = tmp_path / "small16.pth"
    torch.save(SmallNet(width=16).state_dict(), path)
    with pytest.raises(ValueError, match="shape"):
        load_weights(SmallNet(width=8), path)
    torch.save({"fc.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="matches none"):
        load_weights(SmallNet(width=8), tmp_path / "other.pth")
    report = load_weights(SmallNet(width=16), path)
    assert report.loaded > 0 and not report.missing
    whole = {f"backbone.{k}": v for k, v in SmallNet(width=16).state_dict().items()}
    torch.save({**whole, "f_cam.weight": torch.zeros(3, 16, 1, 1)}, tmp_path / "model.pt")
    with pytest.raises(ValueError, match=r"holds a whole network \(keys 'backbone.\*'"):
        load_weights(SmallNet(width=16), tmp_path / "model.pt")
    report = load_weights(SmallNet(width=16), tmp_path / "model.pt",
                          prefix_map={"backbone.": ""})
    assert report.loaded == len(whole) and report.unexpected == ["f_cam.weight"]
    torch.save({"model": whole, "rng": [np.random.get_state()]}, tmp_path / "checkpoint.pt")
    with pytest.raises(ValueError, match=r"holds Python objects besides tensors \(e.g. a ppc "
                                         r"run's checkpoint.pt"):
        load_weights(SmallNet(width=16), tmp_path / "checkpoint.pt")
    (tmp_path / "config.json").write_text('{"steps": 3}')
    with pytest.raises(ValueError, match=r"config.json is not a file written by torch.save; "):
        load_weights(SmallNet(width=16), tmp_path / "config.json")


def _receptive_field(net: SmallNet, size: int = 96) -> int:
    """Input pixels (along one row) that reach the centre output cell, measured by gradient."""
    net = net.eval()
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0),
                    requires_grad=True)
    feat = net(x)["feat"]
    h, w = feat.shape[2:]
    feat[0, :, h // 2, w // 2].sum().backward()
    row = x.grad[0].abs().sum(0).sum(0)
    return int((row > 0).sum())


def test_small_net_dilations_set_the_receptive_field():
    torch.manual_seed(0)
    default, local = SmallNet(width=8), SmallNet(width=8, dilations=(1, 1))
    assert _receptive_field(default) == 65 and _receptive_field(local) == 33
    assert _receptive_field(SmallNet(width=8, dilations=(1, 2))) == 41
    x = torch.randn(2, 3, 64, 48)
    assert local(x)["feat"].shape == default(x)["feat"].shape == (2, 32, 16, 12)
    for bad in [(0, 1), (1,), (1.5, 2)]:
        with pytest.raises(ValueError, match="dilations must be two integers"):
            SmallNet(width=8, dilations=bad)


def test_run_config_dilations_reach_the_backbone():
    from ppc.config import RunConfig
    from ppc.train import build_model

    config = RunConfig.from_flat(dilations=[1, 1], width=8)
    assert config.dilations == (1, 1)
    assert RunConfig(**config.to_dict()).identity() == config.identity()
    convs = [m for m in build_model(config, 3).backbone.modules()
             if isinstance(m, torch.nn.Conv2d)]
    assert [c.dilation[0] for c in convs] == [1, 1, 1, 1, 1, 1]


def test_torchvision_checkpoint_loads_into_the_stem(tmp_path):
    from torchvision.models import resnet50

    from ppc.config import RunConfig
    from ppc.train import build_model

    torch.manual_seed(0)
    file_state = resnet50().state_dict()  # torchvision's names: conv1, bn1, layer1..4, fc
    path = tmp_path / "resnet50_imagenet.pth"
    torch.save(file_state, path)
    model = build_model(RunConfig(backbone="resnet50", weights=str(path)), num_classes=3)
    stem = model.backbone.stem
    assert torch.equal(stem[0].weight, file_state["conv1.weight"])
    assert torch.equal(stem[1].running_var, file_state["bn1.running_var"])
    assert torch.equal(model.backbone.layer4[2].conv3.weight,
                       file_state["layer4.2.conv3.weight"])


def test_torchvision_download_failure_is_one_clear_error(monkeypatch):
    from urllib.error import URLError

    from torchvision.models import resnet

    def offline(**kwargs):
        raise URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(resnet, "resnet50", offline)
    with pytest.raises(ValueError, match=r"could not fetch torchvision weights IMAGENET1K_V1 "
                                         r".*pass its path"):
        TorchvisionResNet(50, "IMAGENET1K_V1")


def test_a_view_scale_given_replaces_the_presets_fixed_size():
    from ppc.config import RunConfig

    voc = RunConfig.preset("voc-resnet38", data_root="/data/VOC2012")
    assert voc.view.size == 128
    scaled = RunConfig.from_flat(voc, view__scale=0.5)
    assert scaled.view.size is None and scaled.view.scale == 0.5  # not silently 128 px
    both = RunConfig.from_flat(voc, view__scale=0.5, view__size=96)
    assert both.view.size == 96
    assert RunConfig.from_flat(voc, view__flip=True).view.size == 128
    with pytest.raises(ValueError, match=r"write nested fields as group__name, e.g. view__flip"):
        RunConfig.from_flat(voc, **{"view.flip": True})


def test_weights_nested_tensors_and_bad_prefix_map_are_refused(tmp_path):
    state = SmallNet(width=8).state_dict()
    torch.save({**state, "ema": {"conv.weight": torch.zeros(1)}}, tmp_path / "nested.pth")
    with pytest.raises(ValueError, match="tensors nested under ema besides the state_dict"):
        load_weights(SmallNet(width=8), tmp_path / "nested.pth")
    torch.save(state, tmp_path / "flat.pth")
    with pytest.raises(ValueError, match="prefix_map must be a dict"):
        load_weights(SmallNet(width=8), tmp_path / "flat.pth", prefix_map=[("a", "b")])


def test_network_input_and_arguments_are_checked():
    net = WSSSNet(SmallNet(8), 3)
    for images, message in (
            (torch.zeros(1, 3, 16, 16, dtype=torch.float64),
             r"images are torch.float64 but the network's weights are torch.float32"),
            (torch.zeros(1, 3, 16, 16, dtype=torch.uint8), "images must be a floating-point"),
            (torch.zeros(1, 3, 0, 16), r"at least 1x1 pixels, got shape \(1, 3, 0, 16\)")):
        with pytest.raises(ValueError, match=message):
            net(images)
    assert net.double()(torch.zeros(1, 3, 16, 16, dtype=torch.float64))["logits"].dtype \
        == torch.float64
    with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast casts the images itself
        assert net.bfloat16()(torch.zeros(1, 3, 16, 16))["logits"].dtype == torch.bfloat16
    for kwargs, message in ((dict(num_classes=0), "num_classes must be an int >= 1, got 0"),
                            (dict(num_classes=2.0), "num_classes must be an int >= 1"),
                            (dict(num_classes=3, proj_dim=0), "proj_dim must be an int >= 1"),
                            (dict(num_classes=3, dropout=-0.5),
                             r"dropout must be a number in \[0, 1\), got -0.5")):
        with pytest.raises(ValueError, match=message):
            WSSSNet(SmallNet(8), **kwargs)
    with pytest.raises(ValueError, match="width must be an int >= 1"):
        SmallNet(0)
    assert WSSSNet(SmallNet(8), np.int64(3)).num_classes == 3
