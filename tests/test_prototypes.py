import pytest
import torch

import ppc
from inputs import random_batch
from reference import prototypes as ref_prototypes


def _compare(proj, cams, labels, top_k, **kw):
    norm = ppc.normalize_cams(cams)
    got = ppc.estimate_prototypes(proj, norm, labels, top_k, **kw)
    want, want_valid = ref_prototypes(
        proj, norm, labels, top_k,
        normalize_embeddings=kw.get("normalize_embeddings", False),
        rank_absent=kw.get("rank_absent", True), pixel_mask=kw.get("pixel_mask"),
    )
    assert got.vectors.shape == (cams.shape[1] + 1, proj.shape[1])
    assert torch.equal(got.valid, want_valid)
    torch.testing.assert_close(got.vectors.double(), want, atol=2e-5, rtol=1e-5)
    return got


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("normalize_embeddings", [False, True])
@pytest.mark.parametrize("rank_absent", [True, False])
def test_prototypes_match_loop(seed, normalize_embeddings, rank_absent):
    proj, cams, labels = random_batch(seed, p_label=0.3)
    labels[0] = 0  # an image with no foreground class
    got = _compare(proj, cams, labels, top_k=7, normalize_embeddings=normalize_embeddings,
                   rank_absent=rank_absent)
    norms = got.vectors.norm(dim=1)
    torch.testing.assert_close(norms[got.valid], torch.ones_like(norms[got.valid]))


def test_absent_classes_are_invalid_only_when_ranked_in_present_images():
    proj, cams, labels = random_batch(1, c=6)
    labels.zero_()
    labels[0, 2] = 1
    labels[2, 4] = 1
    present = _compare(proj, cams, labels, 5, rank_absent=False)
    assert present.valid.tolist() == [True, False, False, True, False, True, False]
    assert torch.all(present.vectors[~present.valid] == 0)
    everyone = _compare(proj, cams, labels, 5, rank_absent=True)
    assert everyone.valid.all()


def test_top_k_larger_than_pixels_uses_all_pixels():
    proj, cams, labels = random_batch(2, n=2, h=3, w=3)
    got = _compare(proj, cams, labels, top_k=1000)
    assert got.top_values.shape == (cams.shape[1] + 1, 18)
    # K = all pixels: the class-c prototype is the CAM-weighted mean of every embedding
    norm = ppc.normalize_cams(cams)
    w = norm[:, 1].reshape(-1)
    feats = proj.permute(0, 2, 3, 1).reshape(-1, proj.shape[1])
    mean = (w[:, None] * feats).sum(0) / w.sum()
    torch.testing.assert_close(got.vectors[2], mean / mean.norm(), atol=1e-5, rtol=1e-5)


def test_ties_keep_the_lower_index():
    proj, _, labels = random_batch(3, n=2, c=3, h=4, w=4)
    cams = torch.randint(0, 3, (2, 3, 4, 4)).float()  # many equal values
    cams[:, 0] = 2.0
    cams[:, 0, 0, 0] = 0.0  # class 0: every other pixel of both images ties at the max
    got = _compare(proj, cams, labels, top_k=5)
    assert got.top_indices[1].tolist() == [1, 2, 3, 4, 5]


def test_class_with_zero_cam_everywhere_uses_plain_mean():
    proj, cams, labels = random_batch(4, n=2, c=3)
    cams[:, 1] = -1.0  # normalised to 0 everywhere: weights sum to 0
    got = _compare(proj, cams, labels, top_k=4)
    assert got.valid.all() and torch.isfinite(got.vectors).all()


def test_one_candidate_pixel_and_pixel_mask():
    proj, cams, labels = random_batch(5, n=2, c=3, h=3, w=3)
    labels.zero_()
    labels[1, 0] = 1
    mask = torch.zeros(2, 3, 3, dtype=torch.bool)
    mask[1, 2, 1] = True  # the only usable pixel
    got = _compare(proj, cams, labels, 4, rank_absent=False, pixel_mask=mask)
    assert got.valid.tolist() == [True, True, False, False]
    v = proj[1, :, 2, 1]
    torch.testing.assert_close(got.vectors[1], v / v.norm())
    torch.testing.assert_close(got.vectors[0], v / v.norm())


def test_no_gradient_flows_into_prototypes():
    proj, cams, labels = random_batch(6)
    proj.requires_grad_(True)
    got = ppc.estimate_prototypes(proj, ppc.normalize_cams(cams), labels, 4)
    assert not got.vectors.requires_grad


def test_bad_inputs():
    proj, cams, labels = random_batch(7)
    norm = ppc.normalize_cams(cams)
    with pytest.raises(ValueError, match=r"embeddings must have shape \[N, D, H, W\]"):
        ppc.estimate_prototypes(proj[0], norm, labels)
    msg = r"height H of cams \(5\) does not match height H of embeddings \(6\)"
    with pytest.raises(ValueError, match=msg):
        ppc.estimate_prototypes(proj, norm[:, :, :5], labels)
    with pytest.raises(ValueError, match=r"batch size N of cams \(2\)"):
        ppc.estimate_prototypes(proj, norm[:2], labels[:2])
    with pytest.raises(ValueError, match=r"top_k must be an int >= 1"):
        ppc.estimate_prototypes(proj, norm, labels, 0)
    with pytest.raises(ValueError, match="ppc.normalize_cams"):
        ppc.estimate_prototypes(proj, cams, labels)
    bad = proj.clone()
    bad[0, 0, 0, 0] = float("inf")
    with pytest.raises(ValueError, match="embeddings contains 1 NaN or Inf"):
        ppc.estimate_prototypes(bad, norm, labels)
    with pytest.raises(ValueError, match=r"pixel_mask must be a bool tensor of shape \[N, H, W\]"):
        ppc.estimate_prototypes(proj, norm, labels, pixel_mask=torch.ones(3, 6, 5))


def test_explicit_background_confidence_ranks_the_background():
    proj, cams, labels = random_batch(8, n=2, c=3, h=4, w=4)
    norm = ppc.normalize_cams(cams)
    background = torch.rand(2, 4, 4, generator=torch.Generator().manual_seed(1))
    got = ppc.estimate_prototypes(proj, norm, labels, 5, background=background)
    want, _ = ref_prototypes(proj, norm, labels, 5, background=background.double())
    torch.testing.assert_close(got.vectors.double(), want, atol=2e-5, rtol=1e-5)
    assert got.top_indices[0].tolist() == background.flatten().argsort(descending=True)[
        :5].tolist()
    with pytest.raises(ValueError, match=r"background must have shape \[N, H, W\]"):
        ppc.estimate_prototypes(proj, norm, labels, 5, background=background[0])
    with pytest.raises(ValueError, match=r"background must lie in \[0.0, 1.0\]"):
        ppc.estimate_prototypes(proj, norm, labels, 5, background=background + 1)


def test_module_ranks_saturated_background_pixels_by_their_raw_scores():
    """Where every present class scores <= 0 the ReLU'd confidence ties at 1; the module
    ranks those pixels by how negative the scores are instead of by position."""
    cams = -torch.arange(32.0).view(2, 1, 4, 4)  # one class, all scores <= 0
    cams[:, :, 0, 0] = 5.0
    labels = torch.ones(2, 1)
    proj = torch.randn(2, 3, 4, 4)
    state = ppc.PixelToPrototypeContrast(ppc.PPCConfig(top_k=3)).view_state(proj, cams, labels)
    assert ppc.background_confidence(ppc.normalize_cams(cams), labels)[0, 3, 3] == 1
    # per image: each image's most negative pixel first, then by normalised score
    assert state.prototypes.top_indices[0].tolist() == [15, 31, 30]


def test_selection_maps_put_each_weight_on_its_pixel():
    from ppc.prototypes import selection_maps

    proj, cams, labels = random_batch(3)
    n, _, h, w = cams.shape
    protos = ppc.estimate_prototypes(proj, ppc.normalize_cams(cams), labels, top_k=5)
    maps = selection_maps(protos, (n, h, w))
    assert maps.shape == (protos.vectors.shape[0], n, h, w)
    want = torch.zeros_like(maps).view(maps.shape[0], -1)
    for p in range(maps.shape[0]):  # loop reference
        pairs = zip(protos.top_values[p].tolist(), protos.top_indices[p].tolist(), strict=True)
        for value, index in pairs:
            if value != float("-inf") and index >= 0:
                want[p, index] += value
    torch.testing.assert_close(maps.view(maps.shape[0], -1), want)
    with pytest.raises(ValueError, match=r"outside shape .*global batch"):
        selection_maps(protos, (n // 2, h, w))
