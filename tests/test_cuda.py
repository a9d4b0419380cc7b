"""Checks of the CUDA paths: the same math on the GPU as on the CPU, bf16 autocast and
channels-last training, inference and a whole run on the device.

Skipped without a CUDA device (so on CI); ``benchmarks/gpu_checks.sh`` runs them on a lent
GPU. TF32 is switched off where a result is compared with the CPU's float32.
"""

import contextlib

import pytest
import torch

import ppc
from ppc.contrast import hard_pixel_sampling
from ppc.experiment import run
from ppc.infer import multiscale_cams
from ppc.models.net import WSSSNet, build_backbone
from ppc.train import train, training_losses
from test_train import _metrics, step_parts, tiny

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@contextlib.contextmanager
def no_tf32():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _views(seed, n=6, c=20, d=32, h=16, w=16):
    g = torch.Generator().manual_seed(seed)
    proj_s = torch.randn(n, d, h, w, generator=g)
    cams_s = 3 * torch.randn(n, c, h, w, generator=g)
    proj_t = proj_s + 0.5 * torch.randn(proj_s.shape, generator=g)
    cams_t = cams_s + torch.randn(cams_s.shape, generator=g)
    labels = (torch.rand(n, c, generator=g) < 0.15).float()
    labels[0] = 0  # an image without a foreground class
    return proj_s, cams_s, proj_t, cams_t, labels


def _loss_and_grads(module, inputs, device, **kwargs):
    ps, cs, pt, ct, labels = (t.to(device) for t in inputs)
    ps.requires_grad_(True)
    pt.requires_grad_(True)
    out = module(ps, cs, pt, ct, labels, **kwargs)
    out["total"].backward()
    return {k: v.detach().cpu() for k, v in out.items()}, ps.grad.cpu(), pt.grad.cpu()


@pytest.mark.parametrize("classes", ["all", "present"])
@pytest.mark.parametrize("seed", [0, 1])
def test_loss_on_cuda_equals_cpu(seed, classes):
    # hard pixel sampling off: its random draws come from a device generator (next test)
    module = ppc.PixelToPrototypeContrast(
        ppc.PPCConfig(pixel_sampling=False, prototype_classes=classes, validate=False))
    inputs = _views(seed)
    with no_tf32():
        gpu, gpu_gs, gpu_gt = _loss_and_grads(module, inputs, "cuda")
    cpu, cpu_gs, cpu_gt = _loss_and_grads(module, inputs, "cpu")
    for term in ppc.loss.TERMS:
        torch.testing.assert_close(gpu[term], cpu[term], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gpu_gs, cpu_gs, rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(gpu_gt, cpu_gt, rtol=1e-4, atol=1e-7)


def test_hard_pixel_sampling_on_cuda_equals_cpu():
    g = torch.Generator().manual_seed(0)
    m, classes = 4096, 21
    similarity = torch.rand(m, generator=g)
    targets = torch.randint(0, classes, (m,), generator=g)
    keep = torch.rand(m, generator=g) < 0.9
    keys = torch.rand(m, generator=g)
    cpu = hard_pixel_sampling(similarity, targets, keep, classes, random_keys=keys,
                              return_draws=True)
    gpu = hard_pixel_sampling(similarity.cuda(), targets.cuda(), keep.cuda(), classes,
                              random_keys=keys.cuda(), return_draws=True)
    assert torch.equal(gpu[1].cpu(), cpu[1])  # the same pixels drawn
    torch.testing.assert_close(gpu[0].cpu(), cpu[0])


def test_view_state_on_cuda_equals_cpu():
    module = ppc.PixelToPrototypeContrast(ppc.PPCConfig(validate=False))
    proj, cams, _, _, labels = _views(2)
    cpu = module.view_state(proj, cams, labels)
    gpu = module.view_state(proj.cuda(), cams.cuda(), labels.cuda())
    assert torch.equal(gpu.labels.cpu(), cpu.labels)
    assert torch.equal(gpu.prototypes.top_indices.cpu(), cpu.prototypes.top_indices)
    torch.testing.assert_close(gpu.prototypes.vectors.cpu(), cpu.prototypes.vectors)


def test_loss_under_bf16_autocast_is_float32_math_on_the_bf16_projections():
    # under autocast f_proj hands bf16 projections to the loss; the loss computes in float32
    module = ppc.PixelToPrototypeContrast(ppc.PPCConfig(pixel_sampling=False, validate=False))
    ps, cs, pt, ct, labels = (t.cuda() for t in _views(3))
    ps16 = ps.bfloat16().requires_grad_(True)
    pt16 = pt.bfloat16().requires_grad_(True)
    with no_tf32():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out16 = module(ps16, cs, pt16, ct, labels)
        out16["total"].backward()
        reference = module(ps16.detach().float(), cs, pt16.detach().float(), ct, labels)
    assert out16["total"].dtype == torch.float32
    assert ps16.grad.dtype == torch.bfloat16 and torch.isfinite(ps16.grad.float()).all()
    for term in ppc.loss.TERMS:
        torch.testing.assert_close(out16[term], reference[term], rtol=1e-5, atol=1e-5)


def test_loss_makes_no_sync_on_cuda_with_masks():
    # the default configuration is checked in test_loss.py; here the masked path
    module = ppc.PixelToPrototypeContrast(ppc.PPCConfig(prototype_classes="present",
                                                        validate=False))
    ps, cs, pt, ct, labels = (t.cuda() for t in _views(4))
    ps.requires_grad_(True)
    mask = torch.rand(ps.shape[0], *ps.shape[2:], device="cuda") < 0.8
    gen = torch.Generator(device="cuda").manual_seed(0)
    module(ps, cs, pt, ct, labels, pixel_mask=mask, generator=gen)["total"].backward()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        module(ps, cs, pt, ct, labels, pixel_mask=mask, generator=gen)["total"].backward()
    finally:
        torch.cuda.set_sync_debug_mode(0)


@pytest.mark.parametrize("base", ["cam", "seam"])
def test_training_losses_and_backward_make_no_sync_on_cuda(base):
    # the whole step but the optimizer, in bf16 autocast and channels-last as on CUDA
    model, batch, ctx = step_parts(base, device="cuda", amp=True)
    training_losses(model, batch, ctx, step=0)["total"].backward()  # warm-up
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        training_losses(model, batch, ctx, step=0)["total"].backward()
    finally:
        torch.cuda.set_sync_debug_mode(0)


@pytest.mark.parametrize("base", ["cam", "seam"])
def test_network_on_cuda_equals_cpu(base):
    torch.manual_seed(0)
    model = WSSSNet(build_backbone("small", width=8), num_classes=6, base=base,
                    proj_dim=16).eval()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        cpu = model(images)
        with no_tf32():
            gpu = model.cuda()(images.cuda())
    for key, value in cpu.items():
        torch.testing.assert_close(gpu[key].cpu(), value, rtol=1e-4, atol=1e-4)


def test_resnet38_in_bf16_channels_last():
    model = WSSSNet(build_backbone("resnet38"), num_classes=20, base="seam").cuda()
    model = model.to(memory_format=torch.channels_last)
    images = torch.randn(2, 3, 448, 448, device="cuda").contiguous(
        memory_format=torch.channels_last)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = model(images)
    assert out["logits"].shape == (2, 20, 56, 56)  # output stride 8
    assert out["proj"].shape == (2, 128, 56, 56)
    assert out["cam_rv"].shape == (2, 21, 56, 56) and out["cam_rv"].dtype == torch.float32
    assert all(torch.isfinite(v.float()).all() for v in out.values())
    out["scores"].float().sum().backward()
    assert torch.isfinite(model.cam_head.weight.grad).all()


def test_multiscale_cams_on_cuda_equal_cpu():
    torch.manual_seed(0)
    model = WSSSNet(build_backbone("small", width=8), num_classes=6, base="seam",
                    proj_dim=16).eval()
    images = torch.randn(2, 3, 48, 48)
    cpu = multiscale_cams(model, images)
    with no_tf32():
        gpu = multiscale_cams(model.cuda(), images.cuda())
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-4, atol=1e-4)
    amp = multiscale_cams(model, images.cuda(), amp=True)  # bf16: close, not equal
    assert amp.dtype == torch.float32 and torch.isfinite(amp).all()


@pytest.mark.parametrize("base,use_ppc", [("cam", True), ("seam", True), ("full", False)])
def test_training_steps_on_cuda_with_amp_and_channels_last(tmp_path, base, use_ppc):
    config = tiny(tmp_path, base=base, use_ppc=use_ppc, device="cuda")
    assert config.amp == "auto" and config.channels_last == "auto"  # bf16 and NHWC on CUDA
    rows = _metrics(train(config, progress=False))
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert all(torch.isfinite(torch.tensor(v)) for row in rows for v in row.values())


def test_whole_run_on_cuda(tmp_path):
    summary = run(tiny(tmp_path, base="seam", use_ppc=True, device="cuda"), progress=False)
    assert 0.0 <= summary["best_miou"] <= 1.0
    assert summary["device"] == summary["machine"]["gpu"] == torch.cuda.get_device_name(0)
