"""Benchmark: the vectorised PPC loss against a loop-style reference implementation.

What it measures
----------------
The wall-clock time of one forward + backward pass (``loss.backward()`` into the
projections of both views) of

* ``loop``: :func:`reference_ppc_loss` below, a re-implementation of the PPC loss in the
  style of the official code (usr922/wseg, SEAM+PPC variant): a Python loop over the
  21 classes for the prototypes and for hard pixel sampling, a per-pixel
  ``random.sample`` in semi-hard prototype mining, ``np.unique`` on the pseudo labels
  (a host-device copy on a GPU), boolean-mask indexing, and ``exp`` / ratio losses;
* ``vectorised``: ``ppc.PixelToPrototypeContrast(ppc.PPCConfig(validate=False))``;
* ``kernels``: only the two kernels that dominate ``vectorised`` and that any
  implementation of the same math needs, each view's logits against both views'
  prototypes (matmul, forward and backward) and the per-pixel sort of its 21 logits
  (mining); ``loop / kernels`` ("bound") is the largest speed-up an implementation built
  on these kernels could reach;
* ``compiled`` (with ``--compile``): the same module through ``torch.compile`` (one
  graph: the module makes its random draws before the loss), timed after its first passes
  (which compile it);
* ``floor``: ``vectorised`` on 2x2 maps (K = 1), the same operator calls with almost no
  arithmetic: what the calls cost in themselves (Python, dispatch, kernel launches), paid
  at every map size; printed with the number of aten operator calls of a pass (forward
  and backward, counted under a ``TorchDispatchMode``) and the time per call.

Both run on identical random inputs: N=8 images, C=20 foreground classes (21 with the
background), D=128 embedding channels, at 16x16 maps ("paper scale", K=32 pixels per
prototype) and at 56x56 maps (K=392); K is ``h*w//8`` in both implementations. The two
are measured interleaved within one run (a loop pass, then vectorised passes, in every
round) after warm-up passes; the median of each implementation's timed passes is
reported, with the speed-up ``loop / vectorised`` (and ``loop / compiled``). On CUDA
every timed region is bracketed by ``torch.cuda.synchronize()``.

The script also prints both losses on the same inputs as a sanity check. They are of
similar magnitude but not equal: the random pixel draws differ, and the official code
ranks a constant background channel for the background prototype (an arbitrary
tie-break) where ``ppc`` ranks ``1 - max`` of the present classes' CAMs.

On CUDA it finally runs the vectorised loss (forward + backward) once under
``torch.cuda.set_sync_debug_mode("error")`` and reports whether any host-device
synchronisation raised (none should), then restores mode 0.

How to run
----------
From the repository root::

    .venv/bin/python benchmarks/bench_loss.py
    .venv/bin/python benchmarks/bench_loss.py --device cpu --threads 2 --sizes 16
    .venv/bin/python benchmarks/bench_loss.py --device cuda --repeats 20
    .venv/bin/python benchmarks/bench_loss.py --compile --sizes 16

``--repeats`` is the number of vectorised passes timed per configuration; the loop
reference is timed in as many rounds, except at maps larger than 32x32 where it is timed
in ``max(2, repeats // 3)`` rounds (the vectorised passes are spread over those rounds).
With the defaults the whole run takes well under a minute on an idle 2-core CPU.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import ppc  # noqa: E402
from ppc.cli import OneLineParser, thread_count  # noqa: E402
from ppc.contrast import logit_maps  # noqa: E402
from ppc.machine import cpu_name  # noqa: E402

# Paper-scale problem (VOC: 20 foreground classes, 21 with the background).
BATCH = 8
NUM_CLASSES = 20
EMBED_DIM = 128

# Official hyper-parameters.
TAU = 0.1
BG_SCORE = 0.2
WEIGHT = 0.1  # weight of each of the three terms (alpha = beta = 0.1)
MINING_SKIP, MINING_KEEP = 3, 10  # semi-hard band: ranks 3..12 of the 21 prototypes
SAMPLE_RANDOM, SAMPLE_HARD_UPPER = 0.5, 0.6

LARGE_MAP = 32  # maps larger than this get fewer rounds of the (slow) loop reference


# --------------------------------------------------------------------------------------
# Loop-style reference, in the style of the official code (usr922/wseg, SEAM+PPC).
# Deliberately unoptimised: it reproduces the official code's structure and its costs.
# --------------------------------------------------------------------------------------


def max_norm(cams: Tensor, eps: float = 1e-5) -> Tensor:
    """ReLU, then per-image, per-class min-max normalisation of ``[N, C, H, W]`` CAMs."""
    n, c = cams.shape[:2]
    cams = F.relu(cams)
    max_v = torch.max(cams.view(n, c, -1), dim=-1)[0].view(n, c, 1, 1)
    min_v = torch.min(cams.view(n, c, -1), dim=-1)[0].view(n, c, 1, 1)
    return F.relu(cams - min_v - eps) / (max_v - min_v + eps)


def reference_view(proj: Tensor, cams: Tensor, image_labels: Tensor):
    """Normalised CAMs with the background channel, pseudo labels ``[N*H*W]`` and the
    ``[21, D]`` prototypes of one view, computed without gradient."""
    n, d, h, w = proj.shape
    with torch.no_grad():
        norm = max_norm(cams.detach())
        background = torch.full((n, 1, h, w), BG_SCORE, device=cams.device, dtype=norm.dtype)
        norm = torch.cat([background, norm], dim=1)  # [N, 21, H, W], background first
        label_bg = torch.cat(
            [torch.ones(n, 1, device=cams.device, dtype=norm.dtype), image_labels.to(norm.dtype)],
            dim=1,
        )
        pseudo = torch.argmax(norm * label_bg[:, :, None, None], dim=1).reshape(-1)

        # Prototypes: per class, the top-K pixels of the whole batch by that class's CAM,
        # CAM-weighted mean of their raw projections, then L2 normalisation.
        num_protos = norm.shape[1]
        k = h * w // 8
        scores = norm.transpose(0, 1).reshape(num_protos, -1)  # [21, N*H*W]
        features = proj.detach().permute(0, 2, 3, 1).reshape(-1, d)  # [N*H*W, D]
        prototypes = torch.zeros(num_protos, d, device=proj.device, dtype=features.dtype)
        for i in range(num_protos):
            top_values, top_indices = torch.topk(scores[i], k)
            top_features = features[top_indices]
            prototypes[i] = torch.sum(top_values[:, None] * top_features, dim=0) / torch.sum(
                top_values
            )
        prototypes = F.normalize(prototypes, dim=-1)
    return pseudo, prototypes


def reference_nce(emb: Tensor, labels: Tensor, prototypes: Tensor) -> Tensor:
    """Mean over pixels of ``-log(exp(pos / tau) / sum_c exp(sim_c / tau))``."""
    logits = torch.mm(emb, prototypes.t()) / TAU  # [M, 21]
    positive = logits[torch.arange(emb.shape[0], device=emb.device), labels]
    return -torch.log(torch.exp(positive) / torch.sum(torch.exp(logits), dim=1)).mean()


def reference_intra(emb: Tensor, labels: Tensor, prototypes: Tensor) -> Tensor:
    """Intra-view term with semi-hard prototype mining and hard pixel sampling."""
    num_pixels = emb.shape[0]
    num_protos = prototypes.shape[0]
    device = emb.device
    rows = torch.arange(num_pixels, device=device)

    # The official code draws 10 random prototype indices for every pixel, gathers those
    # prototypes ([M, 10, D]) and never uses the result. Kept on purpose (result
    # discarded): the per-pixel Python random.sample, the tensor built from it and the
    # gather are part of the official code's cost.
    random_band = torch.tensor(
        [random.sample(range(num_protos), MINING_KEEP) for _ in range(num_pixels)],
        device=device,
    )

    # Semi-hard prototype mining: rank the prototypes per pixel, keep ranks 3..12.
    similarity = torch.mm(emb, prototypes.t())  # [M, 21]
    ranked = torch.topk(similarity.detach(), MINING_SKIP + MINING_KEEP, dim=1).indices
    band = ranked[:, MINING_SKIP:]  # [M, 10]
    repeated = prototypes[None].repeat(num_pixels, 1, 1)  # [M, 21, D]
    repeated[rows[:, None], random_band]  # unused in the official code too
    negatives = repeated[rows[:, None], band]  # [M, 10, D]
    positive = torch.sum(emb * prototypes[labels], dim=1) / TAU  # [M]
    negative = torch.sum(emb[:, None] * negatives, dim=2) / TAU  # [M, 10]
    pixel_loss = -torch.log(
        torch.exp(positive) / (torch.exp(positive) + torch.sum(torch.exp(negative), dim=1))
    )

    # Hard pixel sampling, class by class.
    present = np.unique(labels.cpu().numpy())
    pixel_similarity = positive.detach() * TAU
    total = emb.new_zeros(())
    for c in range(num_protos):
        if c not in present:
            continue
        mask = labels == c
        class_loss = pixel_loss[mask]
        class_similarity = pixel_similarity[mask]
        size = class_loss.shape[0]
        if size < 2:
            continue
        random_pick = random.sample(range(size), int(size * SAMPLE_RANDOM))
        num_hard = int(size * SAMPLE_HARD_UPPER)
        hard_pick = torch.topk(class_similarity, num_hard, largest=False).indices
        hard_pick = hard_pick[num_hard - int(size * SAMPLE_RANDOM):]
        sampled = torch.cat([class_loss[random_pick], class_loss[hard_pick]])
        total = total + sampled.mean()
    return total / len(present)


def reference_ppc_loss(
    proj_s: Tensor, cams_s: Tensor, proj_t: Tensor, cams_t: Tensor, image_labels: Tensor
) -> dict[str, Tensor]:
    """PPC loss of two views, loop style. Shapes as ``ppc.PixelToPrototypeContrast``."""
    d = proj_s.shape[1]
    labels_s, protos_s = reference_view(proj_s, cams_s, image_labels)
    labels_t, protos_t = reference_view(proj_t, cams_t, image_labels)
    emb_s = F.normalize(proj_s.permute(0, 2, 3, 1).reshape(-1, d), dim=-1)
    emb_t = F.normalize(proj_t.permute(0, 2, 3, 1).reshape(-1, d), dim=-1)

    cross_prototype = (
        reference_nce(emb_s, labels_s, protos_t) + reference_nce(emb_t, labels_t, protos_s)
    ) / 2
    cross_cam = (
        reference_nce(emb_s, labels_t, protos_s) + reference_nce(emb_t, labels_s, protos_t)
    ) / 2
    intra = (
        reference_intra(emb_s, labels_s, protos_s) + reference_intra(emb_t, labels_t, protos_t)
    ) / 2
    total = WEIGHT * cross_prototype + WEIGHT * cross_cam + WEIGHT * intra
    return {"cross_prototype": cross_prototype, "cross_cam": cross_cam, "intra": intra,
            "total": total}


# --------------------------------------------------------------------------------------
# Benchmark harness.
# --------------------------------------------------------------------------------------


def make_inputs(size: int, device: torch.device, seed: int = 0) -> tuple[Tensor, ...]:
    """Random two-view inputs at ``size x size`` maps; the projections require grad."""
    g = torch.Generator().manual_seed(seed)
    image_labels = torch.zeros(BATCH, NUM_CLASSES)
    for n in range(BATCH):  # 1 to 3 classes per image
        count = int(torch.randint(1, 4, (1,), generator=g))
        image_labels[n, torch.randperm(NUM_CLASSES, generator=g)[:count]] = 1.0
    proj_s = torch.randn(BATCH, EMBED_DIM, size, size, generator=g)
    proj_t = proj_s + 0.5 * torch.randn(proj_s.shape, generator=g)
    cams_s = 3 * torch.randn(BATCH, NUM_CLASSES, size, size, generator=g)
    cams_t = cams_s + torch.randn(cams_s.shape, generator=g)
    proj_s = proj_s.to(device).requires_grad_(True)
    proj_t = proj_t.to(device).requires_grad_(True)
    return proj_s, cams_s.to(device), proj_t, cams_t.to(device), image_labels.to(device)


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_pass(fn, inputs: tuple[Tensor, ...], device: torch.device) -> float:
    """Seconds for one forward + backward pass of ``fn(*inputs)['total']``."""
    proj_s, proj_t = inputs[0], inputs[2]
    proj_s.grad = None
    proj_t.grad = None
    synchronize(device)
    start = time.perf_counter()
    fn(*inputs)["total"].backward()
    synchronize(device)
    return time.perf_counter() - start


def vectorised_setup(size: int, device: torch.device):
    """(inputs, module, generator, fn) for the vectorised loss on ``size``x``size`` maps
    with the benchmark's K = h*w//8; ``fn(*inputs)`` draws from ``generator`` (seeded 0)."""
    inputs = make_inputs(size, device)
    module = ppc.PixelToPrototypeContrast(
        ppc.PPCConfig(top_k=max(1, size * size // 8), validate=False))
    generator = torch.Generator(device=device).manual_seed(0)

    def vectorised(*args):
        return module(*args, generator=generator)

    return inputs, module, generator, vectorised


def benchmark(size: int, device: torch.device, repeats: int, warmup: int,
              compile_loss: bool = False) -> dict:
    """Interleaved timings (medians, ms) of the implementations and their loss values."""
    inputs, module, generator, vectorised = vectorised_setup(size, device)
    candidates = {"vec": vectorised, "kernels": kernels_only(module, inputs)}
    if compile_loss:
        compiled_module = torch.compile(module)

        def compiled(*args):
            return compiled_module(*args, generator=generator)

        candidates["compiled"] = compiled

    loop_rounds = repeats if size <= LARGE_MAP else max(2, repeats // 3)
    loop_warmup = warmup if size <= LARGE_MAP else 1
    for _ in range(loop_warmup):
        timed_pass(reference_ppc_loss, inputs, device)
    for fn in candidates.values():  # the first compiled passes compile
        for _ in range(max(warmup, 2 if fn is not vectorised else 0)):
            timed_pass(fn, inputs, device)

    loop_times, times = [], {name: [] for name in candidates}
    for r in range(loop_rounds):
        loop_times.append(timed_pass(reference_ppc_loss, inputs, device))
        # Spread the other passes evenly over the rounds.
        for _ in range((r + 1) * repeats // loop_rounds - r * repeats // loop_rounds):
            for name, fn in candidates.items():
                times[name].append(timed_pass(fn, inputs, device))

    random.seed(0)
    result = {"loop_ms": 1e3 * statistics.median(loop_times), "loop_n": len(loop_times)}
    with torch.no_grad():
        result["loop_values"] = {k: float(v) for k, v in reference_ppc_loss(*inputs).items()}
        for name, fn in candidates.items():  # same draws for each: reseeded
            if name == "kernels":
                continue
            generator.manual_seed(0)
            result[f"{name}_values"] = {k: float(v) for k, v in fn(*inputs).items()}
    for name, values in times.items():
        result[f"{name}_ms"] = 1e3 * statistics.median(values)
        result[f"{name}_n"] = len(values)
    return result


def kernels_only(module: ppc.PixelToPrototypeContrast, inputs: tuple[Tensor, ...]):
    """A pass of only the two kernels that dominate the vectorised loss and that any
    implementation of its math needs: each view's pixel-to-prototype logits against both
    views' prototypes (matmul, forward and backward) and the per-pixel sort of the 21 own
    logits (semi-hard mining). The prototypes are computed once, outside the timed pass.
    Its time bounds the speed-up that any implementation built on these kernels can reach
    (``loop / kernels``)."""
    proj_s, cams_s, proj_t, cams_t, image_labels = inputs
    with torch.no_grad():
        own_s = module.view_state(proj_s, cams_s, image_labels).prototypes.vectors
        own_t = module.view_state(proj_t, cams_t, image_labels).prototypes.vectors
    pairs = ((torch.cat([own_s, own_t]), 0), (torch.cat([own_t, own_s]), 2))
    num = own_s.shape[0]

    def kernels(*args):
        total = args[0].new_zeros(())
        for both, index in pairs:
            logits = logit_maps(args[index], both, TAU)  # [N, 42, HW]
            ranked = torch.sort(logits[:, :num], dim=1, descending=True).values
            total = total + ranked.sum()
        return {"total": total}

    return kernels


class _CountCalls(TorchDispatchMode):
    """Counts the aten operator calls made while it is active (autograd's included)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.calls += 1
        return func(*args, **(kwargs or {}))


def overhead_floor(device: torch.device, repeats: int, warmup: int) -> tuple[float, int]:
    """Median ms of a forward + backward pass of the vectorised loss on 2x2 maps (K = 1):
    the same operator calls as at any map size with almost no arithmetic, i.e. what its
    calls cost in themselves (Python, dispatch and, on CUDA, kernel launches); and the
    number of aten operator calls of a pass (counted in the last warm-up pass, after the
    first pass's lazy initialisation)."""
    inputs, _, _, vectorised = vectorised_setup(2, device)
    for _ in range(max(warmup, 3) - 1):
        timed_pass(vectorised, inputs, device)
    with _CountCalls() as counter:
        timed_pass(vectorised, inputs, device)
    ms = 1e3 * statistics.median(timed_pass(vectorised, inputs, device)
                                 for _ in range(max(repeats, 5)))
    return ms, counter.calls


def speed_up(slow_ms: float, fast_ms: float) -> str:
    return f"{slow_ms / fast_ms:>7.1f}x" if fast_ms > 0 else f"{'inf':>7}x"


def sync_debug_check(size: int, device: torch.device) -> str:
    """Run the vectorised loss once with host-device syncs turned into errors."""
    inputs, _, _, vectorised = vectorised_setup(size, device)
    synchronize(device)
    stage = "forward"
    torch.cuda.set_sync_debug_mode("error")
    try:
        loss = vectorised(*inputs)["total"]
        stage = "backward"
        loss.backward()
    except RuntimeError as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        return f"RAISED in {stage}: {first_line}"
    finally:
        torch.cuda.set_sync_debug_mode(0)
    synchronize(device)
    return "no sync, did not raise"


def parse_args(argv=None) -> argparse.Namespace:
    cuda = torch.cuda.is_available()
    parser = OneLineParser(
        description="Time forward + backward of the loop-style and the vectorised PPC loss."
    )
    parser.add_argument("--threads", type=thread_count, default=torch.get_num_threads(),
                        help="torch intra-op CPU threads (default: %(default)s)")
    parser.add_argument("--sizes", default="16,56",
                        help="comma-separated map sizes h (= w) (default: %(default)s)")
    parser.add_argument("--device", choices=("cpu", "cuda", "all"), default="all",
                        help="cpu, cuda, or all available (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=15,
                        help="timed vectorised passes per configuration; the loop reference "
                             "gets as many rounds, or max(2, repeats // 3) at maps above "
                             f"{LARGE_MAP}x{LARGE_MAP} (default: %(default)s)")
    parser.add_argument("--compile", action="store_true",
                        help="also time torch.compile(PixelToPrototypeContrast) (compiling "
                             "takes a minute or more on a CPU)")
    parser.add_argument("--warmup", type=int, default=2,
                        help="untimed passes per implementation first (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--sizes must be comma-separated integers, got {args.sizes!r}")
    if not args.sizes or min(args.sizes) < 3:
        parser.error("--sizes needs map sizes >= 3 (K = h*w//8 must be >= 1)")
    if args.repeats < 1 or args.warmup < 0:
        parser.error("--repeats must be >= 1, --warmup >= 0")
    if args.device == "cuda" and not cuda:
        parser.error("--device cuda: CUDA is not available")
    args.devices = (["cpu", "cuda"] if cuda else ["cpu"]) if args.device == "all" else [args.device]
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    random.seed(0)
    run_start = time.perf_counter()
    devices = [torch.device(d) for d in args.devices]

    print(f"torch {torch.__version__}, numpy {np.__version__}, python {platform.python_version()}")
    for device in devices:
        print(f"device {device.type}: {device_name(device)}")
    print(f"CPU threads: {torch.get_num_threads()}")
    print(f"N={BATCH}, C={NUM_CLASSES} (+1 background), D={EMBED_DIM}, K=h*w//8, tau={TAU}; "
          f"forward + backward, median of the timed passes, warm-up passes: {args.warmup}"
          + (f" ({max(args.warmup, 2)} compiled, compiling included)" if args.compile else ""))
    print()

    rows = []
    for device in devices:
        for size in args.sizes:
            result = benchmark(size, device, args.repeats, args.warmup, args.compile)
            rows.append((size, device, result))
            print(f"  done {size}x{size} on {device.type} "
                  f"({time.perf_counter() - run_start:.1f} s elapsed)", flush=True)
    print()

    compiled = args.compile
    header = (f"{'map':>7}  {'device':<6}  {'loop ms':>10}  {'vectorised ms':>13}  "
              f"{'speed-up':>8}")
    if compiled:
        header += f"  {'compiled ms':>11}  {'speed-up':>8}"
    header += f"  {'kernels ms':>10}  {'bound':>8}  {'passes (loop/vec)':>17}"
    print(header)
    print("-" * len(header))
    for size, device, r in rows:
        line = (f"{f'{size}x{size}':>7}  {device.type:<6}  {r['loop_ms']:>10.2f}  "
                f"{r['vec_ms']:>13.2f}  {speed_up(r['loop_ms'], r['vec_ms'])}")
        if compiled:
            line += f"  {r['compiled_ms']:>11.2f}  {speed_up(r['loop_ms'], r['compiled_ms'])}"
        line += f"  {r['kernels_ms']:>10.2f}  {speed_up(r['loop_ms'], r['kernels_ms'])}"
        passes = f"{r['loop_n']}/{r['vec_n']}"
        print(f"{line}  {passes:>17}")
    print()
    print("kernels: only the logit matmuls (forward + backward) and the mining sort of both")
    print("views; bound = loop / kernels, the largest speed-up an implementation built on")
    print("these kernels can reach")
    for device in devices:
        floor, calls = overhead_floor(device, args.repeats, args.warmup)
        print(f"floor ({device.type}): the vectorised loss on 2x2 maps, {floor:.2f} ms: the cost "
              "of its operator calls")
        print(f"    alone ({calls} per pass, {1e3 * floor / calls:.1f} us each), paid at every map "
              "size on top of the arithmetic")
    print()

    print("Sanity check, same inputs (not bit-identical: random draws and the background")
    print("prototype's ranking differ):")
    print(f"{'map':>7}  {'device':<6}  {'impl':<10}  {'total':>8}  {'cross_proto':>11}  "
          f"{'cross_cam':>9}  {'intra':>8}")
    for size, device, r in rows:
        impls = [("loop", r["loop_values"]), ("vectorised", r["vec_values"])]
        if compiled:
            impls.append(("compiled", r["compiled_values"]))
        for name, values in impls:
            print(f"{f'{size}x{size}':>7}  {device.type:<6}  {name:<10}  {values['total']:>8.4f}  "
                  f"{values['cross_prototype']:>11.4f}  {values['cross_cam']:>9.4f}  "
                  f"{values['intra']:>8.4f}")

    if any(device.type == "cuda" for device in devices):
        print()
        for device in devices:
            if device.type == "cuda":
                for size in args.sizes:
                    outcome = sync_debug_check(size, device)
                    print(f"set_sync_debug_mode('error'), vectorised {size}x{size} "
                          f"forward + backward: {outcome}")

    print()
    print(f"total runtime: {time.perf_counter() - run_start:.1f} s")


if __name__ == "__main__":
    main()
