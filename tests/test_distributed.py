"""Prototypes under torch.distributed equal those of the concatenated global batch.

Two CPU processes with the gloo backend each hold half of a batch; their prototypes (and
the selected pixels) must be those one process computes on the whole batch.
"""

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import ppc
from sync_check import FailOnSync

WORLD = 2


def _case(name):
    """(embeddings, normalised cams, image labels, top_k, kwargs) of the global batch."""
    g = torch.Generator().manual_seed(CASES.index(name))
    n, c, d, h, w = 4, 6, 8, 4, 4
    proj = torch.randn(n, d, h, w, generator=g)
    cams = torch.randn(n, c, h, w, generator=g)
    labels = (torch.rand(n, c, generator=g) < 0.4).float()
    kwargs = {}
    top_k = 5
    if name == "ties":
        cams = torch.randint(0, 3, (n, c, h, w), generator=g).float()
        top_k = 9
    elif name == "present_only":
        labels.zero_()
        labels[3, 2] = 1  # class 2 only in an image of rank 1
        labels[0, 4] = 1
        kwargs = dict(rank_absent=False, normalize_embeddings=True)
    elif name == "k_above_local_pixels":
        top_k = 40  # 32 pixels per rank, 64 in all
    elif name == "pixel_mask":
        kwargs = dict(pixel_mask=torch.rand(n, h, w, generator=g) < 0.3, rank_absent=False)
    return proj, ppc.normalize_cams(cams), labels, top_k, kwargs


CASES = ["random", "ties", "present_only", "k_above_local_pixels", "pixel_mask"]


def _worker(rank, init_file, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=WORLD)
    try:
        results = {}
        for name in CASES:
            proj, cams, labels, top_k, kwargs = _case(name)
            part = slice(rank * 2, rank * 2 + 2)
            if "pixel_mask" in kwargs:
                kwargs["pixel_mask"] = kwargs["pixel_mask"][part]
            results[name] = ppc.estimate_prototypes(proj[part], cams[part], labels[part], top_k,
                                                    **kwargs)._asdict()
        # the cross-view terms averaged over ranks equal the single-process value
        g = torch.Generator().manual_seed(0)
        views = [torch.randn(4, 8, 4, 4, generator=g) for _ in range(4)]
        labels = (torch.rand(4, 6, generator=g) < 0.5).float()
        part = slice(rank * 2, rank * 2 + 2)
        cfg = ppc.PPCConfig(top_k=5, intra=False)
        terms = ppc.PixelToPrototypeContrast(cfg)(
            views[0][part], views[1][part, :6], views[2][part], views[3][part, :6], labels[part])
        results["terms"] = {k: v.detach() for k, v in terms.items()}
        # the distributed loss, every term, makes no host-device synchronisation either
        loss = ppc.PixelToPrototypeContrast(ppc.PPCConfig(top_k=5, validate=False))
        with FailOnSync() as mode:
            loss(views[0][part], views[1][part, :6], views[2][part], views[3][part, :6],
                 labels[part], generator=torch.Generator().manual_seed(rank))
        results["syncs"] = mode.syncs
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dist")
    mp.spawn(_worker, args=(str(tmp / "init"), str(tmp)), nprocs=WORLD, join=True)
    return [torch.load(tmp / f"rank{r}.pt") for r in range(WORLD)]


@pytest.mark.parametrize("name", CASES)
def test_global_prototypes_equal_single_process(ranks, name):
    proj, cams, labels, top_k, kwargs = _case(name)
    single = ppc.estimate_prototypes(proj, cams, labels, top_k, **kwargs)
    for result in (ppc.Prototypes(**r[name]) for r in ranks):
        assert torch.equal(result.valid, single.valid)
        assert torch.equal(result.top_indices[single.valid], single.top_indices[single.valid])
        assert torch.equal(result.top_values, single.top_values)
        torch.testing.assert_close(result.vectors, single.vectors, atol=1e-6, rtol=1e-5)
    if name == "present_only":
        assert single.valid.tolist() == [True, False, False, True, False, True, False]


def test_cross_terms_average_over_ranks(ranks):
    g = torch.Generator().manual_seed(0)
    views = [torch.randn(4, 8, 4, 4, generator=g) for _ in range(4)]
    labels = (torch.rand(4, 6, generator=g) < 0.5).float()
    cfg = ppc.PPCConfig(top_k=5, intra=False)
    single = ppc.PixelToPrototypeContrast(cfg)(views[0], views[1][:, :6], views[2],
                                               views[3][:, :6], labels)
    for term in ("cross_prototype", "cross_cam", "total"):
        mean = sum(r["terms"][term] for r in ranks) / WORLD
        torch.testing.assert_close(mean, single[term], atol=1e-6, rtol=1e-5)


def test_distributed_loss_makes_no_host_device_sync(ranks):
    # the collectives themselves are not syncs; reading a value or copying host data is
    assert [r["syncs"] for r in ranks] == [[]] * WORLD
