import pytest
import torch
import torch.nn.functional as F

import ppc
from ppc.contrast import SAMPLING_BALANCES
from reference import intra as ref_intra
from reference import nce as ref_nce


def _setup(seed, n=3, d=8, h=6, w=5, num_protos=8, ignore_some=True):
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(n, d, h, w, generator=g, dtype=torch.float64, requires_grad=True)
    protos = F.normalize(torch.randn(num_protos, d, generator=g, dtype=torch.float64), dim=1)
    labels = torch.randint(0, num_protos, (n, h, w), generator=g)
    if ignore_some:
        labels[0, 0, :3] = 255
    return emb, labels, protos


def _grad(loss, emb):
    (g,) = torch.autograd.grad(loss, emb)
    return g


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("with_valid", [False, True])
def test_nce_matches_loop_values_and_gradients(seed, with_valid):
    emb, labels, protos = _setup(seed)
    valid = torch.tensor([True, True, False, True, True, True, False, True]) if with_valid else None
    got = ppc.pixel_prototype_nce(emb, labels, protos, 0.1, valid=valid)
    want = ref_nce(emb, labels, protos, 0.1, valid)
    torch.testing.assert_close(got.double(), want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(_grad(got, emb), _grad(want, emb), atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_nce_is_stable_at_small_tau(dtype):
    emb, labels, protos = _setup(0, ignore_some=False)
    emb, protos = emb.to(dtype), protos.to(dtype)
    got = ppc.pixel_prototype_nce(emb, labels, protos, tau=1e-3)
    assert torch.isfinite(got) and got.dtype == dtype
    logits = F.normalize(emb, dim=1).permute(0, 2, 3, 1).reshape(-1, 8) @ protos.t() / 1e-3
    torch.testing.assert_close(got, F.cross_entropy(logits, labels.reshape(-1)))


def test_nce_all_pixels_ignored_is_zero_with_zero_gradient():
    emb, labels, protos = _setup(1)
    labels[:] = 255
    got = ppc.pixel_prototype_nce(emb, labels, protos)
    assert got.item() == 0
    assert torch.all(_grad(got, emb) == 0)


def test_cross_terms_match_loop_with_swapped_roles():
    emb, labels, protos = _setup(2)
    g = torch.Generator().manual_seed(9)
    other_labels = torch.randint(0, 8, labels.shape, generator=g)
    other_protos = F.normalize(torch.randn(protos.shape, generator=g, dtype=protos.dtype), dim=1)
    # cross-prototype: this view's pixels and labels, the other view's prototypes
    cp = ppc.cross_prototype_loss(emb, labels, other_protos)
    torch.testing.assert_close(cp.double(), ref_nce(emb, labels, other_protos, 0.1))
    # cross-CAM: this view's pixels and prototypes, the other view's labels
    cc = ppc.cross_cam_loss(emb, other_labels, protos)
    torch.testing.assert_close(cc.double(), ref_nce(emb, other_labels, protos, 0.1))
    assert not torch.isclose(cp, ppc.cross_prototype_loss(emb, labels, protos))
    assert not torch.isclose(cc, ppc.cross_cam_loss(emb, labels, protos))


def test_mining_band_official_ranks():
    assert ppc.mining_band(21, 3 / 21, 10 / 21) == (3, 10)
    assert ppc.mining_band(8, 3 / 21, 10 / 21) == (1, 4)
    assert ppc.mining_band(2, 3 / 21, 10 / 21) == (0, 1)
    with pytest.raises(ValueError, match="mining fractions"):
        ppc.mining_band(21, 1.0, 0.5)
    with pytest.raises(ValueError, match="num_prototypes must be an int >= 1"):
        ppc.mining_band(0, 3 / 21, 10 / 21)


@pytest.mark.parametrize("fractions", [(3 / 21, 10 / 21), (0.0, 1.0), (0.5, 0.5), (0.9, 0.9)])
def test_mining_band_fits_every_prototype_count(fractions):
    for num in range(1, 41):
        skip, keep = ppc.mining_band(num, *fractions)
        assert 0 <= skip < num and 1 <= keep <= num - skip  # a band inside the ranking
        want_skip, want_keep = round(num * fractions[0]), round(num * fractions[1])
        if want_skip < num and 1 <= want_keep <= num - want_skip:  # nothing to clamp
            assert (skip, keep) == (want_skip, want_keep)
    with pytest.raises(ValueError, match="must fit in the P=5"):
        ppc.semi_hard_prototypes(torch.zeros(2, 5), torch.zeros(2, dtype=torch.long), 3, 3)


def test_semi_hard_prototypes_rank_ties_and_exclusions():
    logits = torch.tensor([[5.0, 4.0, 4.0, 3.0, -1e9, 2.0]])
    targets = torch.tensor([0])
    assert ppc.semi_hard_prototypes(logits, targets, 1, 3).tolist() == [[1, 2, 3]]
    with pytest.raises(ValueError, match="skip and keep must be ints"):
        ppc.semi_hard_prototypes(logits, targets, 2.5, 3)
    with pytest.raises(ValueError, match="targets integer class indices"):
        ppc.semi_hard_prototypes(logits, targets.float(), 1, 3)
    assert ppc.semi_hard_prototypes(logits, targets, 0, 6).tolist() == [[0, 1, 2, 3, 5, 4]]
    assert ppc.semi_hard_prototypes(logits, targets, 0, 6, True).tolist() == [[1, 2, 3, 5, 4, 0]]


@pytest.mark.parametrize("exclude_positive", [False, True])
def test_semi_hard_prototypes_refuse_bad_values(exclude_positive):
    logits = torch.randn(4, 21)
    for bad in (21, -1, 255):  # exclude_positive=True used to fail deep in scatter
        targets = torch.tensor([0, 3, bad, 20])
        with pytest.raises(ValueError, match=rf"targets must hold class indices in \[0, 20\]; "
                                             rf"found 1 value\(s\) outside, e.g. {bad}"):
            ppc.semi_hard_prototypes(logits, targets, 3, 10, exclude_positive)
    targets = torch.tensor([0, 3, 5, 20])
    with pytest.raises(ValueError, match=r"logits contains 2 NaN value\(s\), which have no rank"):
        ppc.semi_hard_prototypes(logits.index_put((torch.tensor([1, 2]), torch.tensor([4, 4])),
                                                  torch.tensor(float("nan"))),
                                 targets, 3, 10, exclude_positive)
    # validate=False skips the value checks (no host-device synchronisation)
    band = ppc.semi_hard_prototypes(logits, targets, 3, 10, exclude_positive, validate=False)
    assert torch.equal(band, ppc.semi_hard_prototypes(logits, targets, 3, 10, exclude_positive))
    with pytest.raises(ValueError, match="validate must be True or False, got 'no'"):
        ppc.semi_hard_prototypes(logits, targets, 3, 10, validate="no")


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("mining", [False, True])
@pytest.mark.parametrize("sampling", [False, True])
@pytest.mark.parametrize("exclude_positive", [False, True])
def test_intra_matches_loop(seed, mining, sampling, exclude_positive):
    emb, labels, protos = _setup(seed, num_protos=21)
    valid = torch.ones(21, dtype=torch.bool)
    valid[[4, 9]] = False
    labels[(labels == 4) | (labels == 9)] = 0
    labels[1, 0, :2] = 4  # pixels whose prototype is invalid: left out
    got = ppc.intra_view_loss(
        emb, labels, protos, 0.1, valid=valid, mining=mining, sampling=sampling,
        mining_exclude_positive=exclude_positive, generator=torch.Generator().manual_seed(seed),
    )
    keys = torch.rand(labels.numel(), generator=torch.Generator().manual_seed(seed))
    want = ref_intra(emb, labels, protos, 0.1, valid=valid, mining=mining, sampling=sampling,
                     skip=3, keep=10, exclude_positive=exclude_positive, random_keys=keys)
    torch.testing.assert_close(got.double(), want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(_grad(got, emb), _grad(want, emb), atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("fractions", [(0.5, 0.5, 0.6), (0.25, 0.5, 0.6), (0.0, 0.3, 1.0)])
def test_intra_sampling_fractions_match_loop(fractions):
    emb, labels, protos = _setup(7)
    r, hd, up = fractions
    got = ppc.intra_view_loss(emb, labels, protos, mining=False, sampling_random_fraction=r,
                              sampling_hard_fraction=hd, sampling_hard_upper=up,
                              generator=torch.Generator().manual_seed(1))
    keys = torch.rand(labels.numel(), generator=torch.Generator().manual_seed(1))
    want = ref_intra(emb, labels, protos, 0.1, mining=False, random_fraction=r,
                     hard_fraction=hd, hard_upper=up, random_keys=keys)
    torch.testing.assert_close(got.double(), want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("balance", SAMPLING_BALANCES)
@pytest.mark.parametrize("case", ["random", "no background", "only background",
                                  "one-pixel classes"])
def test_sampling_balance_matches_loop(balance, case):
    emb, labels, protos = _setup(11, num_protos=5)
    if case == "no background":
        labels = labels.clamp_min(1).masked_fill(labels == 255, 255)
    elif case == "only background":
        labels = labels.masked_fill(labels != 255, 0)
    elif case == "one-pixel classes":  # classes 3 and 4 with one pixel each, 2 with two
        labels = torch.randint(0, 2, labels.shape, generator=torch.Generator().manual_seed(2))
        labels[0, 1, 0], labels[1, 2, 2], labels[2, 3, 3], labels[2, 4, 4] = 3, 4, 2, 2
    for r, hd in ((1.0, 0.0), (0.5, 0.5)):
        got = ppc.intra_view_loss(emb, labels, protos, mining=False,
                                  sampling_random_fraction=r, sampling_hard_fraction=hd,
                                  sampling_balance=balance,
                                  generator=torch.Generator().manual_seed(4))
        keys = torch.rand(labels.numel(), generator=torch.Generator().manual_seed(4))
        want = ref_intra(emb, labels, protos, 0.1, mining=False, random_fraction=r,
                         hard_fraction=hd, random_keys=keys, balance=balance)
        torch.testing.assert_close(got.double(), want, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(_grad(got, emb), _grad(want, emb), atol=1e-6, rtol=1e-6)


def test_sampling_balance_hand_example():
    # 10 pixels: 6 background (class 0), 3 of class 1, 1 of class 2 (counted, adds 0);
    # every pixel drawn once (random_fraction 1, no hard band)
    labels = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1, 1, 2])
    keep = torch.ones(10, dtype=torch.bool)

    def weights(balance):
        return ppc.hard_pixel_sampling(torch.zeros(10), labels, keep, 3, random_fraction=1.0,
                                       hard_fraction=0.0, balance=balance).double()

    classes = weights("classes")  # each class 1/3: 1/18 per background pixel, 1/9 for 1
    torch.testing.assert_close(classes[:6], torch.full((6,), 1 / 18, dtype=torch.float64))
    torch.testing.assert_close(classes[6:9], torch.full((3,), 1 / 9, dtype=torch.float64))
    foreground = weights("foreground classes")  # background 6/10; 1 and 2 share 4/10
    torch.testing.assert_close(foreground[:6].sum(), torch.tensor(0.6, dtype=torch.float64))
    torch.testing.assert_close(foreground[6:9].sum(), torch.tensor(0.2, dtype=torch.float64))
    split = weights("background vs foreground")  # background 1/3; foreground 2/3 by pixels
    torch.testing.assert_close(split[:6].sum(), torch.tensor(1 / 3, dtype=torch.float64))
    torch.testing.assert_close(split[6:9].sum(), torch.tensor(2 / 3 * 3 / 4, dtype=torch.float64))
    background = weights("background alone")  # background 1/3; foreground 1/10 a pixel
    torch.testing.assert_close(background[:6].sum(), torch.tensor(1 / 3, dtype=torch.float64))
    torch.testing.assert_close(background[6:9], torch.full((3,), 0.1, dtype=torch.float64))
    raised = weights("foreground alone")  # background 6/10; foreground as in split
    torch.testing.assert_close(raised[:6].sum(), torch.tensor(0.6, dtype=torch.float64))
    torch.testing.assert_close(raised[6:9], split[6:9])
    for w in (classes, foreground, split, background, raised):
        assert w[9] == 0  # the one-pixel class adds 0
    with pytest.raises(ValueError, match="balance must be one of"):
        weights("pixels")
    with pytest.raises(ValueError, match=r"background must be a class index in \[0, 3\)"):
        ppc.hard_pixel_sampling(torch.zeros(10), labels, keep, 3, background=3)
    with pytest.raises(ValueError, match="sampling_balance must be one of"):
        ppc.PPCConfig(sampling_balance="pixels")


def test_sampling_classes_with_zero_one_and_two_pixels():
    """Class 1 has 1 pixel (counted in the class average, contributes 0), class 2 has
    2 pixels, class 3 has none; pixel ties in similarity go to the lower index."""
    emb, _, protos = _setup(3, n=1, h=2, w=4, num_protos=4)
    labels = torch.tensor([[[0, 0, 0, 1], [2, 2, 0, 0]]])
    with torch.no_grad():
        emb[0, :, 0, 1] = emb[0, :, 0, 0]  # two class-0 pixels with equal similarity
    keys = torch.rand(8, generator=torch.Generator().manual_seed(5))
    got = ppc.intra_view_loss(emb, labels, protos, mining=False,
                              generator=torch.Generator().manual_seed(5))
    want = ref_intra(emb, labels, protos, 0.1, mining=False, random_keys=keys)
    torch.testing.assert_close(got.double(), want, atol=1e-6, rtol=1e-6)
    weights = ppc.hard_pixel_sampling(
        torch.zeros(8), labels.reshape(-1), torch.ones(8, dtype=torch.bool), 4, random_keys=keys)
    assert weights[3] == 0  # the single class-1 pixel is never drawn
    torch.testing.assert_close(weights.sum(), torch.tensor(2 / 3))  # classes 0 and 2 of 3


def test_sampling_random_half_follows_the_keys():
    labels = torch.zeros(10, dtype=torch.long)
    keys = torch.tensor([0.9, 0.1, 0.8, 0.2, 0.7, 0.3, 0.6, 0.4, 0.5, 0.0])
    sims = torch.arange(10.0)  # hard band (ascending): ranks 1..5 -> pixels 1..5
    w = ppc.hard_pixel_sampling(sims, labels, torch.ones(10, dtype=torch.bool), 1,
                                random_keys=keys)
    draws = (w * 10).round().long().tolist()  # 10 draws in all: weight 1/10 per draw
    assert draws == [0, 2, 1, 2, 1, 2, 0, 1, 0, 1]


def test_gradcheck_small_double():
    emb, labels, protos = _setup(4, n=1, d=3, h=2, w=3, num_protos=4)
    valid = torch.tensor([True, True, False, True])
    labels[labels == 2] = 1
    assert torch.autograd.gradcheck(
        lambda e: ppc.pixel_prototype_nce(e, labels, protos, 0.5, valid=valid), (emb,))

    def intra(e):
        return ppc.intra_view_loss(e, labels, protos, 0.5, valid=valid,
                                   mining_skip_fraction=0.25, mining_keep_fraction=0.5,
                                   generator=torch.Generator().manual_seed(0))
    assert torch.autograd.gradcheck(intra, (emb,))


def test_logit_maps_gradients_to_embeddings_and_prototypes():
    # the hand-written backward against autograd's chain through F.normalize
    emb, _, protos = _setup(6, n=2, d=4, h=2, w=3, num_protos=5)
    protos = protos.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda e, p: ppc.contrast.logit_maps(e, p, 0.3),
                                    (emb, protos))
    weights = torch.randn(2, 5, 6, dtype=torch.float64)
    got = torch.autograd.grad((ppc.contrast.logit_maps(emb, protos, 0.3) * weights).sum(),
                              (emb, protos))
    plain = torch.einsum("pd,ndhw->nphw", protos, F.normalize(emb, dim=1)) / 0.3
    want = torch.autograd.grad((plain.reshape(2, 5, 6) * weights).sum(), (emb, protos))
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b)


def test_logit_maps_gradient_at_tiny_and_zero_embeddings():
    # below |f| = 1e-12 the scale is clamped (a constant), as in F.normalize
    emb, _, protos = _setup(8, n=1, d=4, h=1, w=3, num_protos=5)
    emb = emb.detach().clone()
    emb[0, :, 0, 0] = torch.tensor([0.5e-12, -0.2e-12, 0.1e-12, 0.3e-12], dtype=emb.dtype)
    emb[0, :, 0, 1] = 0.0
    emb.requires_grad_(True)
    weights = torch.randn(1, 5, 3, dtype=torch.float64)
    (got,) = torch.autograd.grad((ppc.contrast.logit_maps(emb, protos, 0.1) * weights).sum(), emb)
    plain = torch.einsum("pd,ndhw->nphw", protos, F.normalize(emb, dim=1)) / 0.1
    (want,) = torch.autograd.grad((plain.reshape(1, 5, 3) * weights).sum(), emb)
    torch.testing.assert_close(got, want)


def test_logit_maps_refuse_a_second_derivative():
    emb, _, protos = _setup(9, n=1, d=3, h=2, w=2, num_protos=4)
    (grad,) = torch.autograd.grad(ppc.contrast.logit_maps(emb, protos, 0.1).sum(), emb,
                                  create_graph=True)
    # no (wrong) second-order graph: asking for one is an error
    with pytest.raises(RuntimeError, match="does not require grad|once_differentiable"):
        torch.autograd.grad(grad.sum(), emb)


def test_logit_maps_on_the_meta_device():
    emb = torch.empty(2, 8, 3, 3, device="meta")
    assert ppc.contrast.logit_maps(emb, torch.empty(5, 8, device="meta"), 0.1).shape == (2, 5, 9)


def test_similarity_and_nce_maps_match_a_plain_computation():
    emb, labels, protos = _setup(10, ignore_some=False)
    valid = torch.tensor([True, True, False, True, True, True, True, True])
    plain = torch.einsum("pd,ndhw->nphw", protos, F.normalize(emb, dim=1))
    torch.testing.assert_close(ppc.contrast.similarity_maps(emb, protos), plain)
    logits = (plain / 0.1).masked_fill(~valid[None, :, None, None], -1e9)
    want = torch.logsumexp(logits, 1) - logits.gather(1, labels[:, None])[:, 0]
    torch.testing.assert_close(ppc.contrast.nce_map(emb, labels, protos, 0.1, valid), want)


def test_logits_stay_float32_under_autocast():
    emb, _, protos = _setup(7)
    emb, protos = emb.detach().float(), protos.float()
    want = ppc.contrast.logit_maps(emb, protos, 0.1)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # would run the matmul in bfloat16
        got = ppc.contrast.logit_maps(emb, protos, 0.1)
    assert got.dtype == torch.float32 and torch.equal(got, want)


def test_rank_within_class_packed_keys_match_two_sorts():
    # float32 values take one sort of packed (class, value) keys, float64 two stable sorts
    g = torch.Generator().manual_seed(3)
    classes = torch.randint(0, 4, (50,), generator=g)
    values = torch.randint(-3, 4, (2, 50), generator=g).float()  # many ties
    values[0, :5] = torch.tensor([0.0, -0.0, 0.0, -0.0, 0.0])
    got = ppc.contrast.rank_within_class(values, classes, 4)
    want = ppc.contrast.rank_within_class(values.double(), classes, 4)
    assert torch.equal(got, want)
    big = torch.tensor([16777217, 16777216, 3], dtype=torch.int32)  # not exact as float32
    assert ppc.contrast.rank_within_class(big, torch.zeros(3, dtype=torch.long), 1).tolist() \
        == [2, 1, 0]
    for r in range(2):  # loop: rank = earlier-or-smaller values of the same class
        for i in range(50):
            same = [j for j in range(50) if classes[j] == classes[i]]
            rank = sum(1 for j in same if values[r, j] < values[r, i]
                       or (values[r, j] == values[r, i] and j < i))
            assert got[r, i] == rank


def test_bad_inputs():
    emb, labels, protos = _setup(5)
    with pytest.raises(ValueError, match=r"labels must have shape \[N, H, W\] = \(3, 6, 5\)"):
        ppc.pixel_prototype_nce(emb, labels[:, :5], protos)
    with pytest.raises(ValueError, match=r"embeddings must have shape \[N, D, H, W\]"):
        ppc.pixel_prototype_nce(emb[0], labels, protos)
    with pytest.raises(ValueError, match=r"prototypes must have shape \[P, D\]"):
        ppc.pixel_prototype_nce(emb, labels, protos[0])
    with pytest.raises(ValueError, match=r"embedding dimension D of prototypes \(4\)"):
        ppc.pixel_prototype_nce(emb, labels, protos[:, :4])
    with pytest.raises(ValueError, match=r"labels must hold class indices in \[0, 7\].*e.g. 8"):
        ppc.pixel_prototype_nce(emb, labels.masked_fill(labels == 1, 8), protos)
    with pytest.raises(ValueError, match=r"labels must hold class indices"):
        ppc.intra_view_loss(emb, labels - 1, protos)
    with pytest.raises(ValueError, match="labels must be an integer tensor"):
        ppc.pixel_prototype_nce(emb, labels.float(), protos)
    for tau in (0, float("inf"), True, "0.1"):
        with pytest.raises(ValueError, match="tau must be a finite number > 0"):
            ppc.pixel_prototype_nce(emb, labels, protos, tau=tau)
    with pytest.raises(ValueError, match="ignore_index must be an int label"):
        ppc.pixel_prototype_nce(emb, labels, protos, ignore_index=True)
    with pytest.raises(ValueError, match=r"valid must be a bool tensor of shape \[P\] = \[8\]"):
        ppc.pixel_prototype_nce(emb, labels, protos, valid=torch.ones(7, dtype=torch.bool))
    nan = emb.detach().clone()
    nan[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="embeddings contains 1 NaN"):
        ppc.pixel_prototype_nce(nan, labels, protos)
    with pytest.raises(ValueError, match="random_fraction must be in"):
        ppc.intra_view_loss(emb, labels, protos, sampling_random_fraction=1.5)



def test_single_pixel_class_is_never_drawn_even_when_all_are_random():
    labels = torch.tensor([0, 0, 0, 1, 2, 2])
    keys = torch.rand(6, generator=torch.Generator().manual_seed(0))
    weights = ppc.hard_pixel_sampling(torch.zeros(6), labels, torch.ones(6, dtype=torch.bool),
                                      3, random_fraction=1.0, hard_fraction=0.0,
                                      random_keys=keys)
    assert weights[3] == 0  # class 1 has one pixel: counted among the classes, adds 0
    torch.testing.assert_close(weights.sum(), torch.tensor(2 / 3))


def test_hard_pixel_sampling_bad_inputs():
    ok = torch.ones(4, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"must all be \[M\].*similarity \(3,\)"):
        ppc.hard_pixel_sampling(torch.zeros(3), torch.zeros(4, dtype=torch.long), ok, 2)
    with pytest.raises(ValueError, match="targets must be integer class indices, keep bool"):
        ppc.hard_pixel_sampling(torch.zeros(4), torch.zeros(4), ok, 2)
    long = torch.zeros(4, dtype=torch.long)
    for similarity, targets in ((long, long), (torch.zeros(4), long.bool())):
        with pytest.raises(ValueError, match="similarity .* floating point"):
            ppc.hard_pixel_sampling(similarity, targets, ok, 2)
    with pytest.raises(ValueError, match=r"targets of kept pixels must lie in \[0, num_classes\) "
                                         r"= \[0, 3\), got values in \[0, 3\]"):
        ppc.hard_pixel_sampling(torch.zeros(4), torch.tensor([0, 1, 2, 3]), ok, 3)
