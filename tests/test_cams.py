import pytest
import torch

import ppc
from inputs import random_batch
from reference import background_confidence, normalize_cams, pseudo_labels


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("relu", [True, False])
def test_normalize_cams_matches_loop(seed, relu):
    _, cams, _ = random_batch(seed)
    got = ppc.normalize_cams(cams, relu=relu)
    assert got.shape == cams.shape
    torch.testing.assert_close(got.double(), normalize_cams(cams, relu=relu), atol=1e-6, rtol=0)
    assert got.min() >= 0 and got.max() <= 1


def test_normalize_cams_constant_and_negative_maps():
    cams = torch.zeros(2, 3, 4, 4)
    cams[0, 0] = 5.0  # constant positive map
    cams[0, 1] = -torch.rand(4, 4)  # all negative -> relu gives 0
    cams[1, 2, 0, 0] = 2.0  # single hot pixel
    got = ppc.normalize_cams(cams)
    assert torch.all(got[0, 0] == 0) and torch.all(got[0, 1] == 0)
    assert got[1, 2, 0, 0] > 0.999 and got[1, 2].sum() == got[1, 2, 0, 0]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("threshold", [0.0, 0.2, 0.5])
def test_pseudo_labels_matches_loop(seed, threshold):
    _, cams, labels = random_batch(seed, p_label=0.5)
    labels[0] = 0  # an image with no foreground class
    norm = ppc.normalize_cams(cams)
    got = ppc.pseudo_labels(norm, labels, threshold)
    assert got.dtype == torch.long and got.shape == (cams.shape[0],) + cams.shape[2:]
    assert torch.equal(got, pseudo_labels(norm, labels, threshold))
    assert torch.all(got[0] == 0)


def test_pseudo_labels_ties_go_to_lower_index():
    cams = torch.full((1, 3, 2, 2), 0.5)
    cams[0, 2, 0, 0] = 0.7
    labels = torch.tensor([[1.0, 1.0, 0.0]])
    got = ppc.pseudo_labels(cams, labels, bg_threshold=0.5)
    # bg, class 0 and class 1 tie at 0.5: background wins; class 2 is absent from the image
    assert torch.equal(got, torch.zeros(1, 2, 2, dtype=torch.long))
    got = ppc.pseudo_labels(cams, labels, bg_threshold=0.3)
    assert torch.equal(got, torch.ones(1, 2, 2, dtype=torch.long))  # class 0 before class 1
    assert torch.equal(got, pseudo_labels(cams, labels, 0.3))


@pytest.mark.parametrize("seed", range(3))
def test_background_confidence_matches_loop(seed):
    _, cams, labels = random_batch(seed)
    labels[1] = 0
    norm = ppc.normalize_cams(cams)
    got = ppc.background_confidence(norm, labels)
    torch.testing.assert_close(got.double(), background_confidence(norm, labels), atol=1e-6, rtol=0)
    assert torch.all(got[1] == 1)


def test_bad_inputs_name_the_argument():
    cams = torch.rand(2, 4, 5, 5)
    labels = torch.ones(2, 4)
    with pytest.raises(ValueError, match=r"cams must have shape \[N, C, H, W\]"):
        ppc.pseudo_labels(cams[0], labels)
    with pytest.raises(ValueError, match=r"image_labels must have shape \[N, C\]"):
        ppc.pseudo_labels(cams, labels[0])
    with pytest.raises(ValueError, match=r"number of classes C of image_labels \(3\)"):
        ppc.pseudo_labels(cams, labels[:, :3])
    with pytest.raises(ValueError, match=r"batch size N of image_labels \(1\)"):
        ppc.pseudo_labels(cams, labels[:1])
    bad = cams.clone()
    bad[1, 2, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="cams contains 1 NaN"):
        ppc.pseudo_labels(bad, labels)
    with pytest.raises(ValueError, match="cams contains 1 NaN"):
        ppc.normalize_cams(bad)
    with pytest.raises(ValueError, match=r"cams must lie in \[0.0, 1.0\].*ppc.normalize_cams"):
        ppc.pseudo_labels(cams * 3, labels)
    with pytest.raises(ValueError, match="image_labels must be multi-hot"):
        ppc.pseudo_labels(cams, labels * 2)
    for threshold in (1.5, -0.1, float("nan"), torch.tensor([0.2, 0.3]), True):
        with pytest.raises(ValueError, match=r"bg_threshold must be a number in \[0, 1\]"):
            ppc.pseudo_labels(cams, labels, threshold)
    with pytest.raises(ValueError, match="cams must be a floating-point tensor"):
        ppc.normalize_cams(torch.ones(2, 4, 5, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="cams must be a torch.Tensor"):
        ppc.normalize_cams([[1.0]])


def test_normalize_cams_refuses_a_bad_eps_and_empty_maps():
    for eps in (0, float("inf")):
        with pytest.raises(ValueError, match="eps must be a finite number > 0"):
            ppc.normalize_cams(torch.ones(1, 2, 3, 3), eps=eps)
    with pytest.raises(ValueError, match="at least one pixel per map"):
        ppc.normalize_cams(torch.ones(1, 1, 0, 4))


@pytest.mark.parametrize("relu", [True, False])
def test_normalize_cams_with_a_pixel_mask_matches_loop(relu):
    """Min and max over the marked pixels only; an image with no marked pixel uses all."""
    _, cams, _ = random_batch(5)
    n, _, h, w = cams.shape
    mask = torch.rand(n, h, w, generator=torch.Generator().manual_seed(1)) < 0.5
    mask[1] = False
    got = ppc.normalize_cams(cams, relu=relu, pixel_mask=mask)
    want = normalize_cams(cams, relu=relu, pixel_mask=mask)
    torch.testing.assert_close(got.double(), want, atol=1e-6, rtol=0)
    # the mask changes the result where its pixels miss a map's extremes
    assert not torch.allclose(got, ppc.normalize_cams(cams, relu=relu))
    torch.testing.assert_close(got[1], ppc.normalize_cams(cams, relu=relu)[1], atol=0, rtol=0)
    # a mask that marks every pixel changes nothing, bit for bit
    full = torch.ones_like(mask)
    assert torch.equal(ppc.normalize_cams(cams, relu=relu, pixel_mask=full),
                       ppc.normalize_cams(cams, relu=relu))


def test_normalize_cams_refuses_a_bad_pixel_mask():
    cams = torch.rand(2, 3, 4, 4)
    with pytest.raises(ValueError, match=r"pixel_mask must be a bool tensor of shape \[N, H, W\]"):
        ppc.normalize_cams(cams, pixel_mask=torch.ones(2, 4, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"pixel_mask must be a bool tensor"):
        ppc.normalize_cams(cams, pixel_mask=torch.ones(2, 4, 4))
