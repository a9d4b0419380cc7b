"""Benchmark: the cost of the PPC loss in a whole training step.

What it measures
----------------
The wall-clock time of one training step as ``ppc.train.train`` runs it (both views
forward, every loss term via :func:`ppc.train.training_losses`, ``zero_grad``, backward,
optimizer and scheduler step), and the peak memory, of three variants:

* ``base``: without PPC (``use_ppc=False``, which also skips the projection head
  ``f_proj``);
* ``head``: the projection head and the alignment of S's maps to T's grid, forward and
  backward, but a zero loss in place of the PPC loss (what the method costs besides its
  loss);
* ``ppc``: the whole method (``use_ppc=True``).

The table gives each one's overhead over ``base``, and for ``ppc`` also the loss's own
share, ``(ppc - head) / base``: what "the PPC loss adds to the step" means in the
issue's target. Images/s counts the source images of a step (the batch size); the target
view T = A(S) is made inside the step.

* CPU case (always): the synthetic recipe ``RunConfig()`` (small backbone, 64 px images,
  batch 32, 6 classes), for base "cam" and base "seam" (``--bases``).
* CUDA case (when ``torch.cuda.is_available()``): the official recipe
  ``RunConfig.preset("voc-resnet38")`` (ResNet-38, base "seam", batch 8 of 448x448 images,
  20 classes, bf16 autocast, channels_last and cuDNN's autotuner as the config says, as in
  ``ppc.train.train``); ``--backbone resnet50``
  swaps in the torchvision ResNet-50 for a quicker check. Backbones start from random
  weights (the timing does not depend on them).

Inputs are random batches of the right shape, prepared on the device before timing
(images ``randn``, multi-hot labels with 1.4 positives per image on average), so no data
loading is timed. All variants get the same model initialisation (seed 0), the same
batches in the same order and their own optimizer; the PPC loss is built with
``validate=False`` (as training on CUDA does). After ``--warmup`` untimed steps of each,
the variants are timed in one process, interleaved: rounds of ``--block`` steps each
(order reversed every round), ``--steps`` timed steps each. The table gives the median
step time of each variant, images/s = batch size / median, the overhead
``median(variant) / median(base) - 1``, and the loss's share
``(median(ppc) - median(head)) / median(base)`` (target: below 5%). On CUDA every timed step is
bracketed by ``torch.cuda.synchronize()``.

Peak memory: on the CPU, each variant runs ``max(2, warmup)`` steps in a subprocess of
its own (this script re-invoked with a hidden flag) that reports
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` at the end: the peak resident set of the
whole process, interpreter, torch and model included (its value before the first step is
printed below the table). The subprocesses run before anything else, as on Linux a
child's ``ru_maxrss`` starts at its parent's peak. On CUDA,
``torch.cuda.max_memory_allocated`` over the variant's construction and
``max(2, warmup)`` warm-up steps (peak stats reset before each variant), less what was
allocated before it (the batches and the other variant).
Finally, on CUDA, the PPC loss (forward and backward, on the model's outputs for one
batch) runs once under ``torch.cuda.set_sync_debug_mode("error")``; the script reports
whether a host-device synchronisation raised (none should).

How to run
----------
From the repository root::

    .venv/bin/python benchmarks/bench_train_step.py
    .venv/bin/python benchmarks/bench_train_step.py --device cpu --bases seam --steps 10
    .venv/bin/python benchmarks/bench_train_step.py --device cuda --backbone resnet50

CPU numbers depend on the machine's load: other processes on the same cores slow both
variants and add noise to the overhead (interleaving keeps the comparison fair, not the
absolute numbers), and a busy machine oversubscribed with torch threads can make a step
several times slower (try ``--threads 1`` there). A default CPU run takes 1-2 minutes on
an idle 2-core machine, over 5 minutes with a 2-thread torch job on the same cores.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.optim.lr_scheduler import LambdaLR

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from ppc import views  # noqa: E402
from ppc.cli import OneLineParser, thread_count  # noqa: E402
from ppc.config import RunConfig  # noqa: E402
from ppc.loss import PixelToPrototypeContrast  # noqa: E402
from ppc.machine import cpu_name  # noqa: E402
from ppc.models.net import WSSSNet  # noqa: E402
from ppc.train import (  # noqa: E402
    StepContext,
    build_model,
    cudnn_autotuner,
    make_optimizer,
    training_losses,
)

SEED = 0
NUM_BATCHES = 4  # distinct random batches, cycled through
POSITIVES = 1.4  # mean positive labels per image: 1, plus a second one with p = 0.4
VOC_CLASSES = 20
VOC_CROP = 448
VARIANTS = ("base", "head", "ppc")  # no PPC; f_proj without the loss; the whole method
MIB = 2**20


@dataclass
class Variant:
    """One model + optimizer + step context, trained step by step."""

    name: str
    config: RunConfig
    model: WSSSNet
    optimizer: torch.optim.Optimizer
    scheduler: LambdaLR
    ctx: StepContext
    step: int = 0
    times: list[float] = field(default_factory=list)


def cpu_config(base: str) -> RunConfig:
    return RunConfig(base=base, device="cpu")


def cuda_config(backbone: str) -> RunConfig:
    return RunConfig.preset("voc-resnet38", data_root="unused", backbone=backbone,
                            device="cuda")


def random_batches(batch_size: int, num_classes: int, size: int,
                   device: torch.device) -> list[dict]:
    """``NUM_BATCHES`` batches: ``image`` [B, 3, size, size] randn, ``label`` [B, C]
    multi-hot with one or two positives per image (``POSITIVES`` on average)."""
    g = torch.Generator().manual_seed(SEED)
    batches = []
    for _ in range(NUM_BATCHES):
        images = torch.randn(batch_size, 3, size, size, generator=g)
        count = 1 + (torch.rand(batch_size, generator=g) < POSITIVES - 1).long()  # 1 or 2
        classes = torch.rand(batch_size, num_classes, generator=g).argsort(dim=1)[:, :2]
        keep = (torch.arange(2)[None] < count[:, None]).float()
        labels = torch.zeros(batch_size, num_classes).scatter_(1, classes, keep)
        batches.append({"image": images.to(device), "label": labels.to(device)})
    return batches


class ZeroLoss(torch.nn.Module):
    """Stands in for the PPC loss in the ``head`` variant: a zero that still sends (zero)
    gradients back through both views' projections, so ``f_proj`` and the alignment of
    S's maps run forward and backward as with the real loss."""

    def forward(self, proj_s, cams_s, proj_t, cams_t, labels, **_) -> dict:
        return {"total": 0.0 * (proj_s.float().mean() + proj_t.float().mean())}


def build_variant(config: RunConfig, name: str, num_classes: int,
                  device: torch.device) -> Variant:
    """Model, optimizer and step context as ``ppc.train.train`` builds them."""
    config = config.replace(use_ppc=name != "base")
    torch.manual_seed(SEED)  # the same initial weights for every variant
    model = build_model(config, num_classes).to(device)
    if config.channels_last_on(device):
        model = model.to(memory_format=torch.channels_last)
    model.train()
    optimizer, scheduler = make_optimizer(config, model)
    loss = (PixelToPrototypeContrast(config.ppc.replace(validate=False)) if name == "ppc"
            else ZeroLoss())
    generator = torch.Generator(device=device).manual_seed(SEED)
    return Variant(name, config, model, optimizer, scheduler,
                   StepContext(config, loss, generator, config.bf16_autocast(device)))


def train_step(v: Variant, batch: dict) -> None:
    """One step of the training loop of ``ppc.train.train``."""
    terms = training_losses(v.model, batch, v.ctx, v.step)
    v.optimizer.zero_grad(set_to_none=True)
    terms["total"].backward()
    v.optimizer.step()
    v.scheduler.step()
    v.step += 1


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_step(v: Variant, batch: dict, device: torch.device) -> None:
    synchronize(device)
    start = time.perf_counter()
    train_step(v, batch)
    synchronize(device)
    v.times.append(time.perf_counter() - start)


def interleaved_medians(variants: list[Variant], batches: list[dict], device: torch.device,
                        steps: int, warmup: int, block: int) -> dict[str, float]:
    """Median seconds per step of each variant: ``warmup`` untimed steps each, then
    rounds of ``block`` timed steps per variant (order swapped every round)."""
    for v in variants:
        for i in range(warmup):
            train_step(v, batches[i % len(batches)])
    done = 0
    while done < steps:
        n = min(block, steps - done)
        order = variants if (done // block) % 2 == 0 else variants[::-1]
        for v in order:
            for i in range(done, done + n):
                timed_step(v, batches[i % len(batches)], device)
        done += n
    return {v.name: statistics.median(v.times) for v in variants}


# -- CPU: peak resident set per variant, each in a subprocess of its own --------------------
def max_rss_mib() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (MIB if sys.platform == "darwin" else 1024)  # bytes on macOS, KiB on Linux


def peak_rss_child(base: str, name: str, warmup: int) -> None:
    """Subprocess side: build one CPU variant, run its steps, print the peaks as JSON."""
    config = cpu_config(base)
    num_classes = config.synthetic.num_classes
    device = torch.device("cpu")
    batches = random_batches(config.batch_size, num_classes, config.synthetic.image_size,
                             device)
    v = build_variant(config, name, num_classes, device)
    before = max_rss_mib()
    for i in range(max(2, warmup)):
        train_step(v, batches[i % len(batches)])
    print(json.dumps({"before_mib": before, "peak_mib": max_rss_mib()}))


def peak_rss(base: str, name: str, args: argparse.Namespace) -> dict[str, float]:
    """Parent side: run :func:`peak_rss_child` in a fresh interpreter."""
    command = [sys.executable, str(Path(__file__).resolve()), "--_peak-rss", base, name,
               "--threads", str(args.threads), "--warmup", str(args.warmup)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"peak-memory subprocess for {base}/{name} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_cpu(args: argparse.Namespace, log) -> tuple[list[dict], list[str]]:
    device = torch.device("cpu")
    # On Linux a child's ru_maxrss starts at its parent's peak (the peak of the address
    # space it replaces at exec is kept), so the subprocesses run first, while this
    # process holds little more than the imports.
    parent_mib = max_rss_mib()
    rss = {(base, name): peak_rss(base, name, args) for base in args.bases
           for name in VARIANTS}
    log("cpu: peak-memory subprocesses done")
    rows = []
    before = ", ".join(f"{base} {name} {peak['before_mib']:.0f}"
                       for (base, name), peak in rss.items())
    notes = ["cpu peak MiB: ru_maxrss of one subprocess per variant (the whole process)",
             f"  before the first step: {before} MiB",
             f"  (a floor: this process's peak when they started, {parent_mib:.0f} MiB)"]
    for base in args.bases:
        config = cpu_config(base)
        num_classes, size = config.synthetic.num_classes, config.synthetic.image_size
        batches = random_batches(config.batch_size, num_classes, size, device)
        variants = [build_variant(config, name, num_classes, device) for name in VARIANTS]
        medians = interleaved_medians(variants, batches, device, args.steps, args.warmup,
                                      args.block)
        log(f"cpu {base}: timing done")
        case = f"cpu {config.backbone} {size}px"
        for name in VARIANTS:
            rows.append({"case": case, "base": base, "variant": name, "seconds": medians[name],
                         "batch": config.batch_size, "peak_mib": rss[base, name]["peak_mib"]})
    return rows, notes


# -- CUDA ------------------------------------------------------------------------------------
def sync_debug_check(v: Variant, batch: dict) -> str:
    """PPC loss forward + backward on the model's outputs for ``batch``, with host-device
    synchronisations turned into errors. The inputs are built as in ``training_losses``."""
    cfg, ctx = v.config, v.ctx
    images, labels = batch["image"], batch["label"]
    if cfg.channels_last_on(images.device):
        images = images.contiguous(memory_format=torch.channels_last)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=ctx.amp)
    key = "cam_rv" if cfg.base == "seam" else "logits"
    first = 1 if key == "cam_rv" else 0  # cam_rv carries the background first
    with torch.no_grad(), autocast:
        out_s, out_t = v.model(images), v.model(views.make_target(cfg.view, images))
        size_t = tuple(out_t["logits"].shape[2:])
        mask = views.valid_mask(cfg.view, images.shape[0], size_t, images.device)
        proj_s = views.apply(cfg.view, out_s["proj"], size_t)
        cams_s = views.apply(cfg.view, out_s[key][:, first:], size_t)
        proj_t, cams_t = out_t["proj"], out_t[key][:, first:]
    proj_s.requires_grad_(True)  # leaves: the loss's gradient stops at the projections
    proj_t.requires_grad_(True)
    torch.cuda.synchronize()
    stage = "forward"
    torch.cuda.set_sync_debug_mode("error")
    try:
        with autocast:
            loss = ctx.ppc(proj_s, cams_s, proj_t, cams_t, labels, pixel_mask=mask,
                           generator=ctx.generator)["total"]
        stage = "backward"
        loss.backward()
    except RuntimeError as error:
        lines = str(error).strip().splitlines() or [repr(error)]
        return f"RAISED in {stage}: {lines[0]}"
    finally:
        torch.cuda.set_sync_debug_mode(0)
    torch.cuda.synchronize()
    return "did not raise (no host-device sync)"


def run_cuda(args: argparse.Namespace, log) -> tuple[list[dict], list[str]]:
    device = torch.device("cuda", torch.cuda.current_device())
    config = cuda_config(args.backbone)
    with cudnn_autotuner(config.cudnn_benchmark):  # as ppc.train.train does on CUDA
        return _run_cuda(config, device, args, log)


def _run_cuda(config: RunConfig, device: torch.device, args: argparse.Namespace, log
              ) -> tuple[list[dict], list[str]]:
    batches = random_batches(config.batch_size, VOC_CLASSES, VOC_CROP, device)
    variants, peaks = [], {}
    for name in VARIANTS:
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        v = build_variant(config, name, VOC_CLASSES, device)
        for i in range(max(2, args.warmup)):  # warm-up steps, also the memory measurement
            train_step(v, batches[i % len(batches)])
        torch.cuda.synchronize(device)
        peaks[name] = (torch.cuda.max_memory_allocated(device) - before) / MIB
        variants.append(v)
    log(f"cuda {config.base}: warm-up and memory done")
    medians = interleaved_medians(variants, batches, device, args.steps, 0, args.block)
    log(f"cuda {config.base}: timing done")
    case = f"cuda {config.backbone} {VOC_CROP}px"
    rows = [{"case": case, "base": config.base, "variant": name, "seconds": medians[name],
             "batch": config.batch_size, "peak_mib": peaks[name]} for name in VARIANTS]
    outcome = sync_debug_check(variants[VARIANTS.index("ppc")], batches[0])
    notes = [f"{case}: PPC loss forward + backward under set_sync_debug_mode('error'): "
             f"{outcome}"]
    return rows, notes


# -- report ----------------------------------------------------------------------------------
def print_table(rows: list[dict]) -> None:
    """One line per (case, base, variant); the overhead over ``base`` and, on the ``ppc``
    line, the loss's own share ``(ppc - head) / base``."""
    header = (f"{'case':<22}  {'base':<5}  {'variant':<7}  {'ms/step':>9}  {'images/s':>9}  "
              f"{'peak MiB':>9}  {'over base %':>11}  {'loss alone %':>12}")
    print(header)
    print("-" * len(header))
    seconds = {(r["case"], r["base"], r["variant"]): r["seconds"] for r in rows}
    for r in rows:
        key = (r["case"], r["base"])
        base = seconds[(*key, "base")]
        overhead = "-" if r["variant"] == "base" else f"{100 * (r['seconds'] / base - 1):+.1f}"
        alone = (f"{100 * (r['seconds'] - seconds[(*key, 'head')]) / base:+.1f}"
                 if r["variant"] == "ppc" else "-")
        print(f"{r['case']:<22}  {r['base']:<5}  {r['variant']:<7}  "
              f"{1e3 * r['seconds']:>9.1f}  {r['batch'] / r['seconds']:>9.1f}  "
              f"{r['peak_mib']:>9.0f}  {overhead:>11}  {alone:>12}")


def parse_args(argv=None) -> argparse.Namespace:
    cuda = torch.cuda.is_available()
    parser = OneLineParser(
        description="Training-step throughput and peak memory with and without the PPC loss.")
    parser.add_argument("--steps", type=int, default=20,
                        help="timed steps per variant (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=3,
                        help="untimed steps per variant first (default: %(default)s)")
    parser.add_argument("--block", type=int, default=1,
                        help="steps per variant per interleaved round (default: %(default)s)")
    parser.add_argument("--threads", type=thread_count, default=torch.get_num_threads(),
                        help="torch intra-op CPU threads (default: %(default)s)")
    parser.add_argument("--device", choices=("cpu", "cuda", "all"), default="all",
                        help="cpu, cuda, or all available (default: %(default)s)")
    parser.add_argument("--bases", nargs="+", choices=("cam", "seam"), default=["cam", "seam"],
                        help="bases of the CPU case (default: cam seam)")
    parser.add_argument("--backbone", choices=("resnet38", "resnet50"), default="resnet38",
                        help="backbone of the CUDA case (default: %(default)s)")
    parser.add_argument("--_peak-rss", nargs=2, metavar=("BASE", "VARIANT"),
                        help=argparse.SUPPRESS)  # internal: the peak-memory subprocess
    args = parser.parse_args(argv)
    if args.steps < 1 or args.block < 1 or args.warmup < 0:
        parser.error("--steps and --block must be >= 1, --warmup >= 0")
    if args.device == "cuda" and not cuda:
        parser.error("--device cuda: CUDA is not available")
    if args._peak_rss and (args._peak_rss[0] not in ("cam", "seam")
                           or args._peak_rss[1] not in VARIANTS):
        parser.error(f"--_peak-rss takes a base (cam, seam) and a variant {VARIANTS}, got "
                     f"{' '.join(args._peak_rss)}")
    args.devices = (["cpu", "cuda"] if cuda else ["cpu"]) if args.device == "all" else [
        args.device]
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args._peak_rss:
        peak_rss_child(*args._peak_rss, args.warmup)
        return
    run_start = time.perf_counter()

    def log(message: str) -> None:
        print(f"  {message} ({time.perf_counter() - run_start:.1f} s elapsed)", flush=True)

    print(f"torch {torch.__version__}, python {platform.python_version()}")
    print(f"device cpu: {cpu_name()}")
    if "cuda" in args.devices:
        print(f"device cuda: {torch.cuda.get_device_name()}")
    print(f"CPU threads: {torch.get_num_threads()}")
    print(f"timed steps per variant: {args.steps} (interleaved blocks of {args.block}), "
          f"warm-up steps: {args.warmup}; median step time", flush=True)

    rows, notes = [], []
    for device in args.devices:
        device_rows, device_notes = (run_cpu if device == "cpu" else run_cuda)(args, log)
        rows += device_rows
        notes += device_notes
    print()
    print_table(rows)
    print()
    for note in notes:
        print(note)
    print()
    print(f"total runtime: {time.perf_counter() - run_start:.1f} s")


if __name__ == "__main__":
    main()
