import dataclasses

import pytest
import torch

import ppc
from ppc.contrast import SAMPLING_BALANCES
from inputs import random_batch
from reference import ppc_loss
from sync_check import FailOnSync


def _two_views(seed, **kw):
    proj_s, cams_s, labels = random_batch(seed, **kw)
    proj_t, cams_t, _ = random_batch(seed + 1000, **kw)
    return proj_s.requires_grad_(True), cams_s, proj_t.requires_grad_(True), cams_t, labels


def _keys(seed, m):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(m, generator=g), torch.rand(m, generator=g)


def _check_against_loop(cfg, seed, pixel_mask=None, **kw):
    ps, cs, pt, ct, labels = _two_views(seed, **kw)
    labels[0] = 0  # an image with no foreground class
    module = ppc.PixelToPrototypeContrast(cfg)
    got = module(ps, cs, pt, ct, labels, pixel_mask=pixel_mask,
                 generator=torch.Generator().manual_seed(seed))
    keys_s, keys_t = _keys(seed, cs.shape[0] * cs.shape[2] * cs.shape[3])
    want = ppc_loss(ps, cs, pt, ct, labels, cfg, keys_s, keys_t, pixel_mask)
    assert set(got) == set(ppc.loss.TERMS)
    for term in ppc.loss.TERMS:
        torch.testing.assert_close(got[term].double(), want[term].double(), atol=2e-5, rtol=2e-5,
                                   msg=lambda m, term=term: f"{term}: {m}")
    g_got = torch.autograd.grad(got["total"], (ps, pt))
    g_want = torch.autograd.grad(want["total"], (ps, pt))
    for a, b in zip(g_got, g_want, strict=True):
        torch.testing.assert_close(a.double(), b.double(), atol=1e-6, rtol=1e-3)
    return got


@pytest.mark.parametrize("seed", range(3))
def test_default_config_matches_loop(seed):
    got = _check_against_loop(ppc.PPCConfig(top_k=6), seed)
    assert all(got[t] > 0 for t in ("cross_prototype", "cross_cam", "intra"))


VARIANTS = {
    "paper_prototypes": dict(prototype_embeddings="normalized", prototype_classes="present"),
    "no_cross_prototype": dict(cross_prototype=False),
    "no_cross_cam": dict(cross_cam=False),
    "no_intra": dict(intra=False),
    "intra_plain": dict(prototype_mining=False, pixel_sampling=False),
    "intra_mining_only": dict(pixel_sampling=False),
    "exclude_positive": dict(mining_exclude_positive=True, alpha=0.3, beta=2.0),
    "big_k_tau": dict(top_k=10_000, tau=0.5, bg_threshold=0.35),
    "balance_foreground_classes": dict(sampling_balance="foreground classes"),
    "balance_background_vs_foreground": dict(sampling_balance="background vs foreground",
                                             sampling_random_fraction=1.0,
                                             sampling_hard_fraction=0.0),
    "balance_background_alone": dict(sampling_balance="background alone",
                                     sampling_random_fraction=1.0, sampling_hard_fraction=0.0),
    "balance_foreground_alone": dict(sampling_balance="foreground alone"),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_variants_match_loop(variant):
    cfg = ppc.PPCConfig(**{"top_k": 6, **VARIANTS[variant]})
    got = _check_against_loop(cfg, seed=11, c=20, h=4, w=4)
    for term, on in (("cross_prototype", cfg.cross_prototype), ("cross_cam", cfg.cross_cam),
                     ("intra", cfg.intra)):
        assert (got[term] != 0) == on


def test_pixel_mask_matches_loop():
    mask = torch.rand(3, 6, 5, generator=torch.Generator().manual_seed(3)) < 0.7
    _check_against_loop(ppc.PPCConfig(top_k=6, prototype_classes="present"), 4, pixel_mask=mask)


def test_total_is_weighted_sum_and_switches_do_not_change_other_terms():
    ps, cs, pt, ct, labels = _two_views(5)
    full = ppc.PixelToPrototypeContrast(ppc.PPCConfig(alpha=0.7, beta=0.2))(
        ps, cs, pt, ct, labels, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(
        full["total"], 0.7 * (full["cross_prototype"] + full["cross_cam"]) + 0.2 * full["intra"])
    no_cp = ppc.PixelToPrototypeContrast(ppc.PPCConfig(cross_prototype=False))(
        ps, cs, pt, ct, labels, generator=torch.Generator().manual_seed(0))
    assert no_cp["cross_prototype"] == 0
    torch.testing.assert_close(no_cp["cross_cam"], full["cross_cam"])
    torch.testing.assert_close(no_cp["intra"], full["intra"])


def test_same_generator_seed_same_loss_and_cams_get_no_gradient():
    ps, cs, pt, ct, labels = _two_views(6)
    cs.requires_grad_(True)
    module = ppc.PixelToPrototypeContrast()
    a = module(ps, cs, pt, ct, labels, generator=torch.Generator().manual_seed(3))
    b = module(ps, cs, pt, ct, labels, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a["total"], b["total"])
    a["total"].backward()
    assert cs.grad is None and ps.grad is not None and pt.grad is not None


def test_bfloat16_projections_give_float32_loss():
    ps, cs, pt, ct, labels = _two_views(7)
    module = ppc.PixelToPrototypeContrast()
    ref = module(ps, cs, pt, ct, labels, generator=torch.Generator().manual_seed(0))
    low = module(ps.bfloat16(), cs.bfloat16(), pt.bfloat16(), ct.bfloat16(), labels,
                 generator=torch.Generator().manual_seed(0))
    assert low["total"].dtype == torch.float32
    for term in ("cross_prototype", "cross_cam", "intra", "total"):
        torch.testing.assert_close(low[term], ref[term], atol=0.02, rtol=0.01)


def test_autocast_does_not_change_the_loss():
    # the module computes its logits in float32 also inside a training step's autocast
    ps, cs, pt, ct, labels = _two_views(8)
    module = ppc.PixelToPrototypeContrast()
    ref = module(ps, cs, pt, ct, labels, generator=torch.Generator().manual_seed(0))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = module(ps, cs, pt, ct, labels, generator=torch.Generator().manual_seed(0))
    for name in ppc.loss.TERMS:
        torch.testing.assert_close(got[name], ref[name], atol=1e-6, rtol=1e-6)


def test_config_rejects_bad_values():
    for bad in (dict(top_k=0), dict(tau=0.0), dict(alpha=-1.0), dict(sampling_hard_upper=1.5),
                dict(mining_keep_fraction=0.0), dict(prototype_embeddings="mean"),
                dict(prototype_classes="some")):
        with pytest.raises(ValueError, match=f"PPCConfig.{next(iter(bad))}|mining fractions"):
            ppc.PPCConfig(**bad)
    cfg = ppc.PPCConfig().replace(top_k=16)
    assert cfg.top_k == 16 and dataclasses.asdict(cfg)["tau"] == 0.1


def test_module_bad_inputs():
    ps, cs, pt, ct, labels = _two_views(8)
    m = ppc.PixelToPrototypeContrast()
    with pytest.raises(ValueError, match=r"height H of proj_t \(4\) does not match.*ppc.views"):
        m(ps, cs, pt[:, :, :4], ct[:, :, :4], labels)
    with pytest.raises(ValueError, match=r"proj_s must have shape \[N, D, H, W\]"):
        m(ps[0], cs, pt, ct, labels)
    with pytest.raises(ValueError, match=r"batch size N of image_labels \(2\)"):
        m(ps, cs, pt, ct, labels[:2])
    with pytest.raises(ValueError, match=r"embedding dimension D of proj_t \(4\)"):
        m(ps, cs, pt[:, :4], ct, labels)
    nan = ct.clone()
    nan[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="cams_t contains 1 NaN"):
        m(ps, cs, pt, nan, labels)
    with pytest.raises(ValueError, match="image_labels must be multi-hot"):
        m(ps, cs, pt, ct, labels + 0.5)
    with pytest.raises(ValueError, match=r"pixel_mask must be a bool tensor"):
        m(ps, cs, pt, ct, labels, pixel_mask=torch.ones(3, 6, 5))
    with pytest.raises(ValueError, match="generator must be a torch.Generator"):
        m(ps, cs, pt, ct, labels, generator=0)
    with pytest.raises(ValueError, match="config must be a PPCConfig"):
        ppc.PixelToPrototypeContrast({"top_k": 4})
    for name, index in (("proj_s", (slice(0, 0),)), ("proj_s", (slice(None), slice(0, 0))),
                        ("cams_s", None)):
        args = [ps, cs, pt, ct, labels]
        if index is None:  # no class at all
            args = [ps, cs[:, :0], pt, ct[:, :0], labels[:, :0]]
        else:
            args = [t[index] for t in args]
        with pytest.raises(ValueError, match=f"{name} has an empty dimension"):
            m(*args)


@pytest.mark.parametrize("variant", ["default", "paper", *SAMPLING_BALANCES[1:]])
def test_loss_makes_no_host_device_sync(variant):
    ps, cs, pt, ct, labels = _two_views(9, c=20, d=16, h=8, w=8)
    extra = {"default": {},
             "paper": dict(prototype_embeddings="normalized", prototype_classes="present"),
             }.get(variant, {"sampling_balance": variant})
    module = ppc.PixelToPrototypeContrast(ppc.PPCConfig(validate=False, **extra))
    mask = torch.rand(3, 8, 8) < 0.9
    with FailOnSync() as mode:
        out = module(ps, cs, pt, ct, labels, pixel_mask=mask,
                     generator=torch.Generator().manual_seed(0))
        out["total"].backward()
    assert mode.syncs == []
    # the checker does see a sync: value validation costs one
    with FailOnSync() as mode:
        ppc.PixelToPrototypeContrast()(ps, cs, pt, ct, labels)
    assert "aten._local_scalar_dense.default" in mode.syncs


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_loss_makes_no_sync_on_cuda():
    ps, cs, pt, ct, labels = (t.detach().cuda() for t in _two_views(10, c=20, h=16, w=16))
    ps.requires_grad_(True)
    pt.requires_grad_(True)
    module = ppc.PixelToPrototypeContrast(ppc.PPCConfig(validate=False))
    gen = torch.Generator(device="cuda").manual_seed(0)
    module(ps, cs, pt, ct, labels, generator=gen)["total"].backward()  # warm-up
    torch.cuda.set_sync_debug_mode("error")
    try:
        module(ps, cs, pt, ct, labels, generator=gen)["total"].backward()
    finally:
        torch.cuda.set_sync_debug_mode(0)


def test_torch_compile_traces_one_graph_and_keeps_the_draws():
    # the sampling keys are drawn before the loss: torch.compile cannot trace a Generator,
    # and a draw inside the loss would cut it into one graph per draw
    ps, cs, pt, ct, labels = _two_views(11, c=20, d=16, h=8, w=8)
    module = ppc.PixelToPrototypeContrast(ppc.PPCConfig(validate=False))
    mask = torch.rand(3, 8, 8) < 0.9
    gen = torch.Generator()
    torch._dynamo.reset()
    explained = torch._dynamo.explain(
        lambda *a: module(*a, pixel_mask=mask, generator=gen)["total"])(ps, cs, pt, ct, labels)
    assert explained.graph_count == 1, explained.break_reasons
    compiled = torch.compile(module, backend="eager")  # dynamo's graph, run eagerly
    results = []
    for fn in (module, compiled):
        gen.manual_seed(5)
        out = fn(ps, cs, pt, ct, labels, pixel_mask=mask, generator=gen)
        results.append((out, torch.autograd.grad(out["total"], (ps, pt)), gen.get_state()))
    (eager, g_eager, state_eager), (traced, g_traced, state_traced) = results
    for term in ppc.loss.TERMS:
        assert torch.equal(traced[term], eager[term]), term
    for a, b in zip(g_traced, g_eager, strict=True):
        assert torch.equal(a, b)
    assert torch.equal(state_traced, state_eager)  # the same draws, nothing more
    torch._dynamo.reset()
