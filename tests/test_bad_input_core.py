"""Bad input to the core functions (contrast, cams, prototypes, views): a one-line
``ValueError`` naming the argument, never a stack trace from inside torch or a silently
wrong number; and valid input (NumPy ints included) computes what it did."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sync_check import FailOnSync

import ppc
from ppc import views
from ppc.views import ViewConfig


def _contrast_inputs(n=2, d=4, h=3, w=3, p=3):
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(n, d, h, w, generator=g)
    labels = torch.randint(0, p, (n, h, w), generator=g)
    protos = F.normalize(torch.randn(p, d, generator=g), dim=1)
    return emb, labels, protos


def _cam_inputs(n=2, c=2, d=4, h=3, w=3):
    g = torch.Generator().manual_seed(1)
    emb = torch.randn(n, d, h, w, generator=g)
    norm = ppc.normalize_cams(torch.randn(n, c, h, w, generator=g))
    image_labels = torch.tensor([[1.0, 0.0], [1.0, 1.0]])[:n, :c]
    return emb, norm, image_labels


def _sampling_inputs(m=12, classes=3):
    g = torch.Generator().manual_seed(2)
    targets = torch.randint(0, classes, (m,), generator=g)
    return torch.randn(m, generator=g), targets, torch.ones(m, dtype=torch.bool)


def _intra(**kw):
    emb, labels, protos = _contrast_inputs()
    kw.setdefault("generator", torch.Generator().manual_seed(3))
    return ppc.intra_view_loss(emb, labels, protos, **kw)


# 1. sampling and mining fractions: PPCConfig's rules, naming each function's arguments

def test_intra_view_loss_refuses_what_ppc_config_refuses():
    with pytest.raises(ValueError, match=r"sampling_hard_fraction \(0.9\) must not exceed "
                                         r"sampling_hard_upper \(0.3\)"):
        _intra(sampling_hard_fraction=0.9, sampling_hard_upper=0.3)
    with pytest.raises(ValueError, match="sampling_random_fraction and sampling_hard_fraction "
                                         "are both 0.*sampling=False"):
        _intra(sampling_random_fraction=0, sampling_hard_fraction=0)
    with pytest.raises(ValueError, match=r"mining fractions must satisfy 0 <= "
                                         r"mining_skip_fraction < 1"):
        _intra(mining_skip_fraction=1.0)
    with pytest.raises(ValueError, match="mining_keep_fraction=0"):
        _intra(mining_keep_fraction=0.0)
    with pytest.raises(ValueError, match="sampling_balance must be one of"):
        _intra(sampling_balance="pixels")
    # valid: the band may end where it starts; no draw is fine when sampling is off
    assert torch.isfinite(_intra(sampling_hard_fraction=0.6, sampling_hard_upper=0.6))
    emb, labels, protos = _contrast_inputs()
    plain = ppc.intra_view_loss(emb, labels, protos, sampling=False)
    assert torch.equal(ppc.intra_view_loss(emb, labels, protos, sampling=False,
                                           sampling_random_fraction=0.0,
                                           sampling_hard_fraction=0.0), plain)


def test_hard_pixel_sampling_refuses_what_ppc_config_refuses():
    sim, targets, keep = _sampling_inputs()
    with pytest.raises(ValueError, match=r"hard_fraction \(0.9\) must not exceed hard_upper"):
        ppc.hard_pixel_sampling(sim, targets, keep, 3, hard_fraction=0.9, hard_upper=0.3)
    with pytest.raises(ValueError, match="random_fraction and hard_fraction are both 0"):
        ppc.hard_pixel_sampling(sim, targets, keep, 3, random_fraction=0.0, hard_fraction=0.0)
    weights = ppc.hard_pixel_sampling(sim, targets, keep, 3, random_fraction=0.0,
                                      hard_fraction=0.6, hard_upper=0.6)
    assert weights.sum() > 0


def test_mining_band_refuses_non_numbers():
    for bad in ("0.1", None, torch.tensor(0.1)):
        with pytest.raises(ValueError, match="skip_fraction must be a number"):
            ppc.mining_band(21, bad, 0.5)
        with pytest.raises(ValueError, match="keep_fraction must be a number"):
            ppc.mining_band(21, 0.1, bad)
    with pytest.raises(ValueError, match="mining fractions"):  # PPCConfig relies on it
        ppc.PPCConfig(mining_skip_fraction=1.0)
    assert ppc.mining_band(21, np.float64(3 / 21), 10 / 21) == (3, 10)


# 2. class_confidence checks its pixel_mask and background as estimate_prototypes does

def test_class_confidence_checks_pixel_mask_and_background():
    _, norm, image_labels = _cam_inputs()
    for bad in (torch.ones(2, 3, 3), torch.ones(2, 3, 4, dtype=torch.bool)):
        with pytest.raises(ValueError, match=r"pixel_mask must be a bool tensor of shape "
                                             r"\[N, H, W\] = \(2, 3, 3\)"):
            ppc.class_confidence(norm, image_labels, pixel_mask=bad)
    with pytest.raises(ValueError, match=r"pixel_mask must be a torch.Tensor"):
        ppc.class_confidence(norm, image_labels, pixel_mask=[[True] * 3] * 3)
    with pytest.raises(ValueError, match=r"background must have shape \[N, H, W\] = \(2, 3, 3\)"):
        ppc.class_confidence(norm, image_labels, background=torch.full((2, 3, 4), 0.5))
    with pytest.raises(ValueError, match=r"background must lie in \[0.0, 1.0\]"):
        ppc.class_confidence(norm, image_labels, background=torch.full((2, 3, 3), 2.0))
    with pytest.raises(ValueError, match="background contains 18 NaN"):
        ppc.class_confidence(norm, image_labels, background=torch.full((2, 3, 3), float("nan")))
    # value checks only under validate (no sync otherwise)
    ppc.class_confidence(norm, image_labels, background=torch.full((2, 3, 3), 2.0),
                         validate=False)
    # valid input: what it computed before
    mask = torch.rand(2, 3, 3, generator=torch.Generator().manual_seed(0)) < 0.6
    background = torch.rand(2, 3, 3, generator=torch.Generator().manual_seed(1))
    got = ppc.class_confidence(norm, image_labels, pixel_mask=mask, background=background)
    want = torch.cat([background[:, None], norm], dim=1).masked_fill(~mask[:, None],
                                                                     float("-inf"))
    assert torch.equal(got, want)


# 3. empty sizes

def test_contrast_terms_with_empty_sizes():
    emb, labels, protos = _contrast_inputs()
    for fn in (ppc.pixel_prototype_nce, ppc.intra_view_loss):
        with pytest.raises(ValueError, match=r"embeddings must have at least one channel "
                                             r"\(D >= 1\), got shape \(2, 0, 3, 3\)"):
            fn(emb[:, :0], labels, protos[:, :0])
        with pytest.raises(ValueError, match=r"prototypes must hold at least one prototype "
                                             r"\(P >= 1\), got shape \(0, 4\)"):
            fn(emb, labels, protos[:0], validate=False)
        # no pixel at all (N = 0, as H = 0 already did): nothing counted, 0 with a gradient
        for e, y in ((emb[:0], labels[:0]), (emb[:, :, :0], labels[:, :0])):
            e = e.clone().requires_grad_(True)
            loss = fn(e, y, protos)
            assert loss.item() == 0.0
            assert torch.autograd.grad(loss, e)[0].shape == e.shape


def test_cams_and_prototypes_with_empty_sizes():
    emb, norm, image_labels = _cam_inputs()
    msg = r"cams must hold at least one foreground class \(C >= 1\).*\(2, 0, 3, 3\)"
    with pytest.raises(ValueError, match=msg):
        ppc.background_confidence(norm[:, :0], image_labels[:, :0])
    with pytest.raises(ValueError, match=msg):
        ppc.estimate_prototypes(emb, norm[:, :0], image_labels[:, :0], 2)
    with pytest.raises(ValueError, match=r"embeddings must have at least one channel"):
        ppc.estimate_prototypes(emb[:, :0], norm, image_labels, 2)
    # no pixel: no candidate, every prototype invalid (as before)
    empty = ppc.estimate_prototypes(emb[:0], norm[:0], image_labels[:0], 2)
    assert not empty.valid.any() and empty.vectors.shape == (3, 4)


def test_views_with_empty_sizes():
    for cfg in (ViewConfig(), ViewConfig(flip=True)):
        with pytest.raises(ValueError, match=r"maps must have at least one channel and one "
                                             r"pixel, got shape \(1, 3, 0, 5\)"):
            views.apply(cfg, torch.zeros(1, 3, 0, 5), (8, 8))
        with pytest.raises(ValueError, match=r"maps must have at least one channel"):
            views.apply(cfg, torch.zeros(1, 0, 4, 5), (8, 8))
        with pytest.raises(ValueError, match=r"images must have at least one pixel, got shape "
                                             r"\(1, 3, 4, 0\)"):
            views.make_target(cfg, torch.zeros(1, 3, 4, 0))
        # an empty batch stays an empty batch, for a warp as for a resize
        assert views.apply(cfg, torch.zeros(0, 3, 4, 5), (8, 8)).shape == (0, 3, 8, 8)
    rotated = ViewConfig(rotate=30)
    mask = views.valid_mask(rotated, 0, (8, 8))
    assert mask.shape == (0, 8, 8) and mask.dtype == torch.bool
    assert views.valid_mask(rotated, 2, (8, 8)).shape == (2, 8, 8)
    with pytest.raises(ValueError, match="n must be the batch size, an int >= 0"):
        views.valid_mask(rotated, -1, (8, 8))
    with pytest.raises(ValueError, match=r"size must be the target grid \(h, w\)"):
        views.valid_mask(rotated, 2, (0, 8))
    with pytest.raises(ValueError, match=r"height must be an int >= 1 \(the source.s side in px\)"):
        views.target_size(ViewConfig(), 0, 5)


# 4. wrong argument types

def test_generator_must_be_a_torch_generator():
    sim, targets, keep = _sampling_inputs()
    with pytest.raises(ValueError, match="generator must be a torch.Generator"):
        _intra(generator=0)
    with pytest.raises(ValueError, match="generator must be a torch.Generator"):
        ppc.hard_pixel_sampling(sim, targets, keep, 3, generator=0)


def test_hard_pixel_sampling_argument_types():
    sim, targets, keep = _sampling_inputs()
    for bad in (3.0, "3", True, 0):
        with pytest.raises(ValueError, match="num_classes must be an int >= 1"):
            ppc.hard_pixel_sampling(sim, targets, keep, bad)
    with pytest.raises(ValueError, match=r"background must be a class index in \[0, 3\)"):
        ppc.hard_pixel_sampling(sim, targets, keep, 3, background=0.0)
    with pytest.raises(ValueError, match="similarity must be a torch.Tensor of shape"):
        ppc.hard_pixel_sampling(sim.tolist(), targets, keep, 3)
    with pytest.raises(ValueError, match="random_fraction must be in"):
        ppc.hard_pixel_sampling(sim, targets, keep, 3, random_fraction="0.5")


def test_fractions_must_be_numbers():
    with pytest.raises(ValueError, match=r"sampling_random_fraction must be in \[0, 1\], got "
                                         r"'0.5' \(str\)"):
        _intra(sampling_random_fraction="0.5")
    with pytest.raises(ValueError, match="mining_skip_fraction must be a number"):
        _intra(mining_skip_fraction="0.1")
    with pytest.raises(ValueError, match="skip_fraction must be a number"):
        ppc.mining_band(21, "0.1", 0.5)


def test_normalize_cams_argument_types():
    cams = torch.randn(1, 2, 3, 3)
    for bad in ("1e-5", torch.tensor(1e-5), None):
        with pytest.raises(ValueError, match="eps must be a finite number > 0"):
            ppc.normalize_cams(cams, eps=bad)
    with pytest.raises(ValueError, match=r"pixel_mask must be a bool tensor of shape "
                                         r"\[N, H, W\] = \(1, 3, 3\), got list"):
        ppc.normalize_cams(cams, pixel_mask=[[True] * 3] * 3)
    assert torch.equal(ppc.normalize_cams(cams, eps=np.float64(1e-5)),
                       ppc.normalize_cams(cams, eps=1e-5))


def test_semi_hard_prototypes_argument_types():
    logits, targets = torch.randn(4, 5), torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match="logits must be a torch.Tensor"):
        ppc.semi_hard_prototypes(logits.tolist(), targets, 1, 2)
    with pytest.raises(ValueError, match="exclude_positive must be True or False"):
        ppc.semi_hard_prototypes(logits, targets, 1, 2, exclude_positive="yes")


def test_views_argument_types():
    x = torch.zeros(1, 3, 4, 4)
    with pytest.raises(ValueError, match=r"mode must be one of \('bilinear', 'bicubic', "
                                         r"'nearest', 'nearest-exact', 'area'\) for a plain "
                                         r"resize, got 'cubic'"):
        views.apply(ViewConfig(), x, (8, 8), mode="cubic")
    with pytest.raises(ValueError, match=r"mode must be one of \('bilinear', 'bicubic', "
                                         r"'nearest'\) for a flip or rotation, got 'area'"):
        views.apply(ViewConfig(flip=True), x, (8, 8), mode="area")
    for bad in (None, {}, ppc.PPCConfig()):
        with pytest.raises(ValueError, match="config must be a ppc.views.ViewConfig"):
            views.target_size(bad, 4, 4)
        with pytest.raises(ValueError, match="config must be a ppc.views.ViewConfig"):
            views.apply(bad, x, (8, 8))
        with pytest.raises(ValueError, match="config must be a ppc.views.ViewConfig"):
            views.valid_mask(bad, 1, (8, 8))
        with pytest.raises(ValueError, match="config must be a ppc.views.ViewConfig"):
            views.make_target(bad, x)
    # every listed mode works
    for mode in views.RESIZE_MODES:
        assert views.apply(ViewConfig(), x, (8, 8), mode=mode).shape == (1, 3, 8, 8)
    for mode in views.WARP_MODES:
        assert views.apply(ViewConfig(flip=True), x, (8, 8), mode=mode).shape == (1, 3, 8, 8)


# 5. NumPy ints are ints

def test_numpy_ints_are_accepted():
    emb, norm, image_labels = _cam_inputs()
    for a, b in zip(ppc.estimate_prototypes(emb, norm, image_labels, np.int64(3)),
                    ppc.estimate_prototypes(emb, norm, image_labels, 3), strict=True):
        assert torch.equal(a, b)
    assert ppc.mining_band(np.int64(21), 3 / 21, 10 / 21) == ppc.mining_band(21, 3 / 21, 10 / 21)
    assert all(type(v) is int for v in ppc.mining_band(np.int32(21), 3 / 21, 10 / 21))
    logits, targets = torch.randn(4, 5), torch.tensor([0, 1, 2, 3])
    assert torch.equal(ppc.semi_hard_prototypes(logits, targets, np.int64(1), np.int64(2)),
                       ppc.semi_hard_prototypes(logits, targets, 1, 2))
    sim, labels, keep = _sampling_inputs()
    keys = torch.rand(labels.numel(), generator=torch.Generator().manual_seed(0))
    assert torch.equal(ppc.hard_pixel_sampling(sim, labels, keep, np.int64(3), random_keys=keys),
                       ppc.hard_pixel_sampling(sim, labels, keep, 3, random_keys=keys))
    x = torch.randn(1, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    for cfg in (ViewConfig(), ViewConfig(flip=True)):
        assert torch.equal(views.apply(cfg, x, (np.int64(8), 8)), views.apply(cfg, x, (8, 8)))
    assert torch.equal(views.valid_mask(ViewConfig(rotate=30), np.int64(2), (np.int64(8), 8)),
                       views.valid_mask(ViewConfig(rotate=30), 2, (8, 8)))
    with pytest.raises(ValueError, match=r"top_k must be an int >= 1 \(pixels per prototype\)"):
        ppc.estimate_prototypes(emb, norm, image_labels, np.float64(3))


# 6. boolean flags are bools

def test_boolean_flags_must_be_bools():
    emb, norm, image_labels = _cam_inputs()
    cams = torch.randn(1, 2, 3, 3)
    with pytest.raises(ValueError, match="relu must be True or False, got 'no'"):
        ppc.normalize_cams(cams, relu="no")
    with pytest.raises(ValueError, match="validate must be True or False"):
        ppc.normalize_cams(cams, validate=0)
    with pytest.raises(ValueError, match="rank_absent must be True or False, got 'no'"):
        ppc.estimate_prototypes(emb, norm, image_labels, 3, rank_absent="no")
    with pytest.raises(ValueError, match="normalize_embeddings must be True or False"):
        ppc.estimate_prototypes(emb, norm, image_labels, 3, normalize_embeddings=1)
    with pytest.raises(ValueError, match="rank_absent must be True or False"):
        ppc.class_confidence(norm, image_labels, rank_absent="no")
    with pytest.raises(ValueError, match="validate must be True or False"):
        ppc.background_confidence(norm, image_labels, validate="no")
    with pytest.raises(ValueError, match="validate must be True or False"):
        ppc.pseudo_labels(norm, image_labels, validate="no")
    for flag in ("mining", "sampling", "mining_exclude_positive", "validate"):
        with pytest.raises(ValueError, match=f"{flag} must be True or False"):
            _intra(**{flag: "no"})
    c_emb, labels, protos = _contrast_inputs()
    with pytest.raises(ValueError, match="validate must be True or False"):
        ppc.pixel_prototype_nce(c_emb, labels, protos, validate="no")
    sim, targets, keep = _sampling_inputs()
    for flag in ("return_draws", "validate"):
        with pytest.raises(ValueError, match=f"{flag} must be True or False"):
            ppc.hard_pixel_sampling(sim, targets, keep, 3, **{flag: "no"})


# the new checks read metadata and Python values only: still no sync without validate

def test_checks_make_no_sync_without_validate():
    emb, labels, protos = _contrast_inputs()
    c_emb, norm, image_labels = _cam_inputs()
    mask = torch.ones(2, 3, 3, dtype=torch.bool)
    background = torch.full((2, 3, 3), 0.5)
    keys = torch.rand(labels.numel(), generator=torch.Generator().manual_seed(0))
    with FailOnSync() as mode:
        ppc.intra_view_loss(emb, labels, protos, validate=False, generator=torch.Generator())
        ppc.pixel_prototype_nce(emb, labels, protos, validate=False)
        sim, targets, keep = _sampling_inputs()
        ppc.hard_pixel_sampling(sim, targets, keep, 3, random_keys=keys[:12], validate=False)
        ppc.normalize_cams(norm, pixel_mask=mask, validate=False)
        ppc.class_confidence(norm, image_labels, pixel_mask=mask, background=background,
                             validate=False)
        ppc.estimate_prototypes(c_emb, norm, image_labels, 3, pixel_mask=mask,
                                background=background, validate=False)
    assert mode.syncs == []


def test_figure_helpers_check_their_inputs():
    from ppc.contrast import nce_map, similarity_maps

    emb, protos = torch.randn(2, 4, 3, 3), torch.randn(5, 4)
    labels = torch.randint(0, 5, (2, 3, 3))
    assert similarity_maps(emb, protos).shape == (2, 5, 3, 3)
    assert nce_map(emb, labels, protos).shape == (2, 3, 3)
    with pytest.raises(ValueError, match=r"embedding dimension D of prototypes \(3\)"):
        similarity_maps(emb, torch.randn(5, 3))
    with pytest.raises(ValueError, match=r"labels must have shape \[N, H, W\]"):
        nce_map(emb, labels[:, :2], protos)
    with pytest.raises(ValueError, match=r"labels must hold class indices in \[0, 4\]"):
        nce_map(emb, labels + 5, protos)
