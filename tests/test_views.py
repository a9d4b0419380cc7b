import pytest
import torch

from ppc import views
from ppc.views import ViewConfig


def test_scale_is_a_bilinear_resize_and_make_target_uses_it():
    x = torch.rand(2, 3, 32, 24)
    cfg = ViewConfig(scale=0.5)
    assert views.target_size(cfg, 32, 24) == (16, 12)
    expected = torch.nn.functional.interpolate(x, size=(16, 12), mode="bilinear",
                                               align_corners=False)
    assert torch.equal(views.make_target(cfg, x), expected)
    assert views.apply(cfg, x, (32, 24)) is x
    assert views.target_size(ViewConfig(size=128), 448, 448) == (128, 128)
    assert views.valid_mask(cfg, 2, (16, 12)) is None


@pytest.mark.parametrize("side, scale", [(448, 0.3), (46, 0.3), (45, 0.3), (64, 0.3),
                                         (100, 0.29), (33, 0.5), (64, 1.5)])
def test_target_size_floors_as_interpolate_with_a_scale_factor(side, scale):
    """The official code makes T with F.interpolate(scale_factor=...), which floors."""
    x = torch.zeros(1, 1, side, side + 3)
    official = torch.nn.functional.interpolate(x, scale_factor=scale, mode="bilinear",
                                               align_corners=False).shape[2:]
    assert views.target_size(ViewConfig(scale=scale), side, side + 3) == tuple(official)


def test_flip_and_rotation_warp_maps_exactly():
    x = torch.rand(2, 4, 10, 10)
    flipped = views.apply(ViewConfig(scale=1.0, flip=True), x, (10, 10))
    torch.testing.assert_close(flipped, x.flip(-1), atol=1e-5, rtol=0)
    rotated = views.apply(ViewConfig(scale=1.0, rotate=90), x, (10, 10))
    torch.testing.assert_close(rotated, torch.rot90(x, k=1, dims=(2, 3)), atol=1e-5, rtol=0)


def test_features_and_images_share_one_transform():
    """Warping an image and then a pointwise map of it, or the map of the warped image,
    gives the same result (resolution independent)."""
    cfg = ViewConfig(scale=0.5, flip=True)
    x = torch.rand(1, 3, 40, 40)
    small = torch.nn.functional.avg_pool2d(x, 4)  # "features" at stride 4: 10x10
    target = views.make_target(cfg, x)  # 20x20
    target_feat = torch.nn.functional.avg_pool2d(target, 2)  # 10x10 features of T
    aligned = views.apply(cfg, small, (10, 10))
    assert aligned.shape == target_feat.shape
    assert (aligned - target_feat).abs().mean() < 0.05


def test_rotation_mask_and_bad_config():
    mask = views.valid_mask(ViewConfig(scale=1.0, rotate=45), 2, (16, 16))
    assert mask.shape == (2, 16, 16) and mask[:, 8, 8].all() and not mask[:, 0, 0].any()
    with pytest.raises(ValueError, match="ViewConfig.scale"):
        ViewConfig(scale=0)
    with pytest.raises(ValueError, match=r"maps must be a tensor of shape \[N, C, H, W\]"):
        views.apply(ViewConfig(), torch.rand(3, 8, 8), (4, 4))


@pytest.mark.parametrize("option", [views.ViewConfig(scale=1.0, flip=True),
                                    views.ViewConfig(scale=1.0, rotate=90.0),
                                    views.ViewConfig(scale=0.5, flip=True, rotate=90.0)])
def test_warped_maps_keep_their_border_when_upsampled(option):
    # SEAM compares the source's maps warped onto the image grid (16 -> 64 px here): with
    # zero padding a flip or rotation dimmed 12% of the pixels, down to 0.39 of their value
    ones = torch.ones(2, 3, 16, 16)
    size = views.target_size(option, 64, 64)
    torch.testing.assert_close(views.apply(option, ones, size), torch.ones(2, 3, *size))
    # and the plain resize agrees with the warp path on the same maps
    maps = torch.rand(1, 2, 16, 16, generator=torch.Generator().manual_seed(0))
    mirrored = views.apply(views.ViewConfig(scale=1.0, flip=True), maps, (64, 64))
    resized = views.apply(views.ViewConfig(scale=1.0), maps, (64, 64))
    torch.testing.assert_close(mirrored, resized.flip(-1), atol=1e-5, rtol=1e-5)


def test_view_bad_inputs_and_nearest_resizing():
    with pytest.raises(ValueError, match="rotate must be a finite angle"):
        views.ViewConfig(rotate=float("nan"))
    with pytest.raises(ValueError, match=r"images must have shape \[N, 3, H, W\]"):
        views.make_target(views.ViewConfig(scale=0.5), torch.zeros(3, 16, 16))
    with pytest.raises(ValueError, match=r"images must have shape \[N, 3, H, W\] \(channels"):
        views.make_target(views.ViewConfig(scale=0.5), torch.zeros(2, 32, 32, 3))  # NHWC
    maps = torch.zeros(1, 2, 8, 8)
    for size in ((0, 0), 4, (4.5, 4), (4,)):
        with pytest.raises(ValueError, match=r"size must be the target grid \(h, w\)"):
            views.apply(views.ViewConfig(scale=0.5), maps, size)
    with pytest.raises(ValueError, match="maps must be floating point"):
        views.apply(views.ViewConfig(rotate=90), maps.long(), (8, 8))
    with pytest.raises(ValueError, match="a rotation by 90 degrees needs square maps"):
        views.apply(views.ViewConfig(rotate=90), torch.zeros(1, 2, 4, 8), (4, 8))
    assert views.apply(views.ViewConfig(rotate=180), torch.zeros(1, 2, 4, 8), (4, 8)).shape \
        == (1, 2, 4, 8)
    labels = torch.arange(16.0).reshape(1, 1, 4, 4)
    out = views.apply(views.ViewConfig(scale=0.5), labels, (2, 2), mode="nearest")
    assert set(out.flatten().tolist()) <= set(labels.flatten().tolist())
