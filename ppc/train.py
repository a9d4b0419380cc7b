"""Two-view training of a WSSS base network with the PPC loss.

``train(config)`` runs (or resumes) one run into ``config.out_dir``: ``config.json``,
``metrics.jsonl`` (one JSON object per logged step), ``checkpoint.pt`` (written
atomically; a resumed run continues bit-identically on a CPU) and ``model.pt`` (final
weights). Under ``torchrun`` every process trains its shard of each batch with DDP, and
the PPC prototypes are those of the global batch.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import math
import os
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader, Sampler
from tqdm import tqdm

from . import views
from ._checks import as_device, check_threads, first_line, read_json
from .base_losses import classification_loss, full_supervision_loss, seam_losses
from .config import RunConfig
from .data.loader import SeededDataset, default_num_workers
from .data.synthetic import SyntheticSegmentation
from .data.transforms import eval_transform, train_transform
from .data.voc import VOCSegmentation
from .loss import PixelToPrototypeContrast
from .models.net import TORCHVISION_BACKBONES, WSSSNet, build_backbone


# -- building blocks -------------------------------------------------------------------------
def resolve_device(config: RunConfig) -> torch.device:
    if config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ValueError("device 'cuda' was asked for but torch sees no CUDA device; "
                             "use device='cpu' or 'auto'")
        local = int(os.environ.get("LOCAL_RANK", 0))
        return torch.device("cuda", local)
    return torch.device("cpu")


def build_dataset(config: RunConfig, split: str, train: bool):
    """The dataset of ``split`` with the training or evaluation transform."""
    transform = train_transform(config.augment) if train else eval_transform(config.augment)
    if config.dataset == "synthetic" and config.data_root is None:
        return SyntheticSegmentation(config.synthetic, split, config.data_seed, transform)
    return VOCSegmentation(config.data_root, split, transform)


def class_names(config: RunConfig) -> tuple[str, ...]:
    if config.dataset == "synthetic" and config.data_root is None:
        return config.synthetic.names
    return VOCSegmentation(config.data_root, config.eval_split).class_names


def weights_source(backbone: str, weights: str | None) -> tuple[str | None, str | None]:
    """(torchvision weight name, local file) that ``weights`` stands for. A value that is
    not an existing path and reads as a name (letters, digits, ``_``: ``IMAGENET1K_V1``)
    is a torchvision weight name, which only resnet50/101 have; anything else is a file
    (a missing one is an error when it is loaded, never silently skipped)."""
    if not weights:
        return None, None
    if not Path(weights).exists() and re.fullmatch(r"\w+", weights):
        if backbone not in TORCHVISION_BACKBONES:
            raise ValueError(
                f"weights {weights!r} is not a file, and torchvision weight names are for "
                f"{' and '.join(TORCHVISION_BACKBONES)} only; for backbone {backbone!r} pass "
                "the path of a .pth file")
        return weights, None
    return None, weights


def weights_digest(config: RunConfig) -> str | None:
    """sha256 of the run's local ``weights`` file (None without one, or for a torchvision
    weight name): a run is resumed or reused only while the file is unchanged."""
    _, path = weights_source(config.backbone, config.weights)
    if path is None or not Path(path).is_file():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def require_same_weights(recorded: str | None, current: str | None, config: RunConfig,
                         holder, fix: str) -> None:
    """Refuse ``holder`` (a run folder or checkpoint) trained from another version of the
    weights file: ``recorded`` and ``current`` are :func:`weights_digest` values (None:
    unknown, nothing to compare)."""
    if None not in (recorded, current) and recorded != current:
        raise ValueError(
            f"{holder} was trained from another version of {config.weights} (sha256 "
            f"{recorded[:12]}..., the file now {current[:12]}...); {fix}")


def build_model(config: RunConfig, num_classes: int) -> WSSSNet:
    """The network of ``config``; a ``weights`` file is loaded into the backbone (for the
    torchvision ResNets a torchvision checkpoint's ``conv1``/``bn1`` go to their ``stem``)."""
    torchvision_name, weights_file = weights_source(config.backbone, config.weights)
    backbone = build_backbone(config.backbone, torchvision_name, config.width,
                              config.dilations)
    if weights_file is not None:
        from .models.weights import load_weights

        report = load_weights(backbone, weights_file,
                              prefix_map=getattr(backbone, "file_prefix_map", None))
        print(f"backbone weights {weights_file}: {report}")
    return WSSSNet(backbone, num_classes, config.base, config.proj_dim, config.dropout)


class EpochSampler(Sampler[int]):
    """Seeded shuffle per epoch, sharded over DDP ranks, resumable mid-epoch:
    ``set_epoch(epoch, start)`` skips the first ``start`` samples of this rank's order."""

    def __init__(self, size: int, batch_size: int, seed: int, rank: int = 0,
                 world: int = 1) -> None:
        self.size, self.seed, self.rank, self.world = size, seed, rank, world
        self.per_rank = (size // (batch_size * world)) * batch_size
        if self.per_rank == 0:
            raise ValueError(f"the dataset has {size} images, fewer than one batch of "
                             f"{batch_size} per process ({world}); lower batch_size")
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.size, generator=g)
        mine = order[self.rank * self.per_rank:(self.rank + 1) * self.per_rank]
        return iter(mine[self.start:].tolist())

    def __len__(self) -> int:
        return self.per_rank - self.start


def make_optimizer(config: RunConfig, model: WSSSNet):
    groups = [
        {"params": params, "lr": config.lr * mult, "initial_lr": config.lr * mult}
        for params, mult in zip(model.parameter_groups(), config.lr_mult, strict=True)
        if params
    ]
    for g in groups:  # no weight decay on biases and norms
        if all(p.dim() <= 1 for p in g["params"]):
            g["weight_decay"] = 0.0
    if config.optimizer == "sgd":
        opt = torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum,
                              weight_decay=config.weight_decay)
    else:
        opt = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    steps = config.steps
    if config.schedule == "poly":
        def factor(step):
            return (1 - min(step, steps - 1) / steps) ** 0.9
    else:  # one cycle: 30% linear warm-up from lr/25, then cosine down to lr/1e4
        warm = max(1, int(0.3 * steps))

        def factor(step):
            if step < warm:
                return 0.04 + 0.96 * step / warm
            t = min(1.0, (step - warm) / max(1, steps - warm))
            return 1e-4 + (1 - 1e-4) * 0.5 * (1 + math.cos(math.pi * t))
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


@dataclass
class StepContext:
    config: RunConfig
    ppc: PixelToPrototypeContrast
    generator: torch.Generator
    amp: bool
    #: check the maps PPC reads for NaN or Inf (one host-device sync), naming the fix
    check_finite: bool = False


def training_losses(model: nn.Module, batch: dict, ctx: StepContext, step: int) -> dict:
    """Every loss term of one step (a dict of scalar tensors, ``total`` included)."""
    cfg = ctx.config
    device = next(model.parameters()).device
    images = batch["image"].to(device, non_blocking=True)
    labels = batch["label"].to(device, non_blocking=True)
    if cfg.channels_last_on(device):
        images = images.contiguous(memory_format=torch.channels_last)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=ctx.amp)
    terms: dict[str, Tensor] = {}
    with autocast:
        if cfg.base == "full":
            out = model(images, project=False)
            terms["ce"] = full_supervision_loss(out["logits"], batch["mask"].to(device))
        else:
            target = views.make_target(cfg.view, images)
            project = cfg.use_ppc and step >= cfg.ppc_start_step
            out_s, out_t = model(images, project=project), model(target, project=project)
            terms["cls"] = 0.5 * (classification_loss(out_s["scores"], labels)
                                  + classification_loss(out_t["scores"], labels))
            size_t = tuple(out_t["logits"].shape[2:])
            mask = views.valid_mask(cfg.view, images.shape[0], size_t, device)

            def align(maps):
                return views.apply(cfg.view, maps, size_t)

            if cfg.base == "seam":
                size_img = tuple(target.shape[2:])
                terms.update(seam_losses(
                    out_s["logits"], out_s["cam_rv"], out_t["logits"], out_t["cam_rv"], labels,
                    lambda maps: views.apply(cfg.view, maps, size_img),
                    size_s=tuple(images.shape[2:]), size_t=size_img, map_mask=mask,
                    pixel_mask=views.valid_mask(cfg.view, images.shape[0], size_img, device)))
            if project:
                key = "cam_rv" if cfg.base == "seam" else "logits"
                cams_s = out_s[key][:, 1:] if key == "cam_rv" else out_s[key]
                cams_t = out_t[key][:, 1:] if key == "cam_rv" else out_t[key]
                if ctx.check_finite and not all(
                        bool(torch.isfinite(t).all()) for t in (cams_s, cams_t, out_s["proj"],
                                                                 out_t["proj"])):
                    raise diverged(cfg, step + 1, "the network's maps hold NaN or Inf")
                ppc_terms = ctx.ppc(align(out_s["proj"]), align(cams_s.detach()), out_t["proj"],
                                    cams_t.detach(), labels, pixel_mask=mask,
                                    generator=ctx.generator)
                terms.update({f"ppc_{k}": v for k, v in ppc_terms.items()})
    base_total = sum(v for k, v in terms.items() if not k.startswith("ppc_"))
    terms["total"] = base_total + terms.get("ppc_total", 0.0)
    return terms


# -- checkpoints -----------------------------------------------------------------------------
def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _rng_state(generator: torch.Generator) -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
             "python": random.getstate(), "ppc": generator.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _truncate_metrics(path: Path, step: int, rank: int) -> None:
    """Drop rows logged after the checkpoint a run resumes from (they will be redone)."""
    if rank != 0 or not path.exists():
        return
    lines = [line for line in path.read_text().splitlines()
             if line and json.loads(line)["step"] <= step]
    path.write_text("".join(f"{line}\n" for line in lines))


def _set_rng_state(state: dict, generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    generator.set_state(state["ppc"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# -- the loop --------------------------------------------------------------------------------
def _setup_distributed(device: torch.device) -> tuple[int, int, bool]:
    """(rank, world size, whether this call started the process group) under
    ``torchrun``; the group gets the backend of the run's device (nccl on CUDA, gloo on
    the CPU, also on a machine with a GPU)."""
    if "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1:
        started = not dist.is_initialized()
        if started:
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return dist.get_rank(), dist.get_world_size(), started
    return 0, 1, False


@contextlib.contextmanager
def cudnn_autotuner(on: bool):
    """``torch.backends.cudnn.benchmark`` set to ``on`` inside the block, restored after.

    On, cuDNN times its convolution algorithms at the first step of each input shape and
    keeps the fastest: worth it for training's fixed crop, not for inference over images of
    many sizes. It changes float rounding on the GPU, not what is computed."""
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = on
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


#: how to start a run again from step 0, in Python and on the command line
_NO_RESUME = "resume=False (--resume false)"


def distributed_model(model: nn.Module, device: torch.device, *,
                      find_unused_parameters: bool) -> nn.parallel.DistributedDataParallel:
    """``model`` in DDP for a training step that runs two forwards (views S and T) before
    its backward.

    No buffer sync at each forward (``forward_sync_buffers=False``, or
    ``broadcast_buffers=False`` where DDP lacks that argument, as in torch 2.11): DDP's
    buffer broadcast at the second forward would rewrite BatchNorm's running statistics in
    place while the first forward's backward still needs them (torch 2.11 then refuses the
    backward). Nothing computed changes: BatchNorm trains on batch statistics, a frozen
    BatchNorm never updates its buffers, and rank 0, whose model is saved, keeps its own
    running statistics either way.
    """
    ddp = nn.parallel.DistributedDataParallel
    no_sync = ({"forward_sync_buffers": False}
               if "forward_sync_buffers" in inspect.signature(ddp).parameters
               else {"broadcast_buffers": False})
    return ddp(model, device_ids=[device.index] if device.type == "cuda" else None,
               find_unused_parameters=find_unused_parameters, **no_sync)


def train(config: RunConfig, *, stop_after: int | None = None, progress: bool = True) -> Path:
    """Train (or resume) the run of ``config``; returns ``config.out_dir``.

    ``stop_after`` ends this call after that many steps of the run (a checkpoint is
    written), as if the run had been killed there; calling ``train`` again resumes it.
    """
    if not isinstance(config, RunConfig):
        raise ValueError(f"config must be a ppc.config.RunConfig, got {type(config).__name__}; "
                         "build one with RunConfig(...), RunConfig.preset(...) or "
                         "RunConfig.load(...)")
    config = config.replace()  # checked again: a field may have been set after it was built
    device = resolve_device(config)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    rank, world, started_group = _setup_distributed(device)
    out = Path(config.out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir {out} is a file; pass a folder for the run")
    if any((out / name).is_dir() for name in ("JPEGImages", "ImageSets")):
        raise ValueError(f"out_dir {out} holds a dataset (JPEGImages or ImageSets); pass a "
                         "folder of its own for the run")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"cannot create out_dir {out} ({err.strerror or err}); pass a "
                         "folder that can be written") from None
    if config.threads:
        torch.set_num_threads(check_threads(config.threads))
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    random.seed(config.seed)

    dataset = build_dataset(config, config.train_split, train=True)
    seeded = SeededDataset(dataset, config.seed)
    if config.batch_size % world:
        raise ValueError(f"batch_size {config.batch_size} is not divisible by the "
                         f"{world} processes; use a multiple of {world}")
    per_process = config.batch_size // world
    sampler = EpochSampler(len(dataset), per_process, config.seed, rank, world)
    workers = default_num_workers() if config.num_workers is None else config.num_workers
    # the loader's own generator: creating an iterator must not draw from the global RNG
    # (dropout's), or a resumed run would drift from an uninterrupted one
    loader = DataLoader(seeded, batch_size=per_process, sampler=sampler, drop_last=True,
                        num_workers=workers, pin_memory=device.type == "cuda",
                        generator=torch.Generator().manual_seed(config.seed))
    steps_per_epoch = sampler.per_rank // per_process

    model = build_model(config, len(dataset.class_names)).to(device)
    torch.manual_seed(config.seed * 1000 + rank)  # same init on every rank, own dropout
    if config.channels_last_on(device):
        model = model.to(memory_format=torch.channels_last)
    optimizer, scheduler = make_optimizer(config, model)
    net = model
    if world > 1:
        # the projection head gets no gradient without PPC (or before ppc_start_step)
        unused = not config.use_ppc or config.ppc_start_step > 0 or config.base == "full"
        net = distributed_model(model, device, find_unused_parameters=unused)
    ppc = PixelToPrototypeContrast(config.ppc.replace(validate=device.type != "cuda"))
    generator = torch.Generator(device=device).manual_seed(config.seed * 7919 + rank)
    ctx = StepContext(config, ppc, generator, config.bf16_autocast(device),
                      check_finite=ppc.config.validate)

    step = 0
    initial_weights = weights_digest(config)  # what the backbone started from
    ckpt_path = out / "checkpoint.pt"
    if config.resume and ckpt_path.exists():
        # on the CPU: the RNG states must stay CPU tensors (load_state_dict moves the rest)
        ckpt = _read_run_file(ckpt_path, "cpu", weights_only=False,
                              fix=f"delete it to train from the start (or {_NO_RESUME})")
        missing = sorted({"model", "optimizer", "scheduler", "step", "rng", "config"}
                         - set(ckpt if isinstance(ckpt, dict) else ()))
        if missing:
            raise ValueError(f"{ckpt_path} is not a ppc training checkpoint (it lacks "
                             f"{missing}); delete it to train from the start (or "
                             f"{_NO_RESUME})")
        if config.changed_fields(RunConfig.from_dict(ckpt["config"], ckpt_path)):
            raise ValueError(f"{ckpt_path} belongs to a run with another config; use a new "
                             f"out_dir or {_NO_RESUME}")
        require_same_weights(ckpt.get("weights_sha256"), initial_weights, config, ckpt_path,
                             f"use a new out_dir, or {_NO_RESUME} to start again from "
                             "the file as it is")
        if len(ckpt["rng"]) != world:
            raise ValueError(
                f"{ckpt_path} was written by {len(ckpt['rng'])} process(es), this run has "
                f"{world}; resume with the same number (torchrun --nproc_per_node "
                f"{len(ckpt['rng'])}), or use a new out_dir")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        step = ckpt["step"]
        _set_rng_state(ckpt["rng"][rank], generator)
        _truncate_metrics(out / "metrics.jsonl", step, rank)
    elif rank == 0:
        config.save(out / "config.json")
        (out / "metrics.jsonl").write_text("")
        # a run trained from the start here replaces any finished one: its summary (config,
        # scores) no longer describes the folder
        (out / "summary.json").unlink(missing_ok=True)

    def checkpoint():
        states = [_rng_state(generator)]
        if world > 1:  # every rank's RNG, so a resumed DDP run continues each stream
            states = [None] * world
            dist.all_gather_object(states, _rng_state(generator))
        if rank == 0:
            _atomic_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                          "scheduler": scheduler.state_dict(), "step": step,
                          "rng": states, "config": config.to_dict(),
                          "weights_sha256": initial_weights}, ckpt_path)

    end = config.steps if stop_after is None else min(config.steps, stop_after)
    bar = tqdm(total=config.steps, initial=step, disable=not progress or rank != 0,
               desc=f"train {out.name}", unit="step")
    net.train()
    metrics_file = (out / "metrics.jsonl").open("a") if rank == 0 else None
    started = time.perf_counter()
    # cuDNN's autotuner for the fixed training crop (inference image sizes vary: off)
    with cudnn_autotuner(config.cudnn_benchmark and device.type == "cuda"):
        while step < end:
            epoch, offset = divmod(step, steps_per_epoch)
            sampler.set_epoch(epoch, offset * per_process)
            seeded.set_epoch(epoch)
            for batch in loader:
                terms = training_losses(net, batch, ctx, step)
                lr = scheduler.get_last_lr()[0]  # the rate this step uses
                optimizer.zero_grad(set_to_none=True)
                terms["total"].backward()
                optimizer.step()
                scheduler.step()
                step += 1
                bar.update(1)
                if metrics_file and (step % config.log_every == 0 or step == config.steps):
                    row = {"step": step, "epoch": epoch, "lr": lr,
                           "time": round(time.perf_counter() - started, 3)}
                    row.update({k: float(v.detach()) if isinstance(v, Tensor) else float(v)
                                for k, v in terms.items()})
                    if not math.isfinite(row["total"]):
                        raise diverged(config, step, f"the loss is {row['total']}")
                    metrics_file.write(json.dumps(row) + "\n")
                    metrics_file.flush()
                    bar.set_postfix(loss=f"{row['total']:.3f}")
                if step % config.checkpoint_every == 0 or step == end:
                    checkpoint()
                if step >= end:
                    break
    bar.close()
    if metrics_file:
        metrics_file.close()
    if rank == 0 and step >= config.steps:
        _atomic_save(model.state_dict(), out / "model.pt")
    if world > 1:
        dist.barrier()  # no process returns before model.pt is written
        if started_group:
            dist.destroy_process_group()
    return out


def diverged(config: RunConfig, step: int, what: str) -> ValueError:
    """The error of a run whose training diverged at ``step`` (``what``: the symptom)."""
    return ValueError(f"training diverged at step {step}: {what}; lower lr ({config.lr}) or "
                      f"weight_decay ({config.weight_decay}), or check the weights file "
                      f"({config.weights})")


def load_trained(out_dir: str | Path, device: str | torch.device = "cpu"):
    """(config, model in eval mode) of a finished run."""
    device = as_device(device)
    out = Path(out_dir)
    if not (out / "model.pt").exists():
        raise FileNotFoundError(f"{out / 'model.pt'} does not exist: the run in {out} has not "
                                "finished (train it, or resume it with the same config)")
    config = load_run_config(out)
    model = build_model(config.replace(weights=None), len(class_names(config)))
    fix = ("delete it and run the same config again: training resumes from checkpoint.pt "
           "where there is one")
    state = _read_run_file(out / "model.pt", device, weights_only=True, fix=fix)
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        first = first_line(exc)
        raise ValueError(f"{out / 'model.pt'} does not fit the network of "
                         f"{out / 'config.json'} ({first}); {fix}") from None
    return config, model.to(device).eval()


def load_run_config(out_dir: str | Path) -> RunConfig:
    """The ``config.json`` of a run folder, refused if it differs from the config that
    ``summary.json`` (written by :func:`ppc.experiment.run`) records: an edited config would
    describe another model or other data than the run's weights and seeds."""
    out = Path(out_dir)
    config = RunConfig.load(out / "config.json")
    summary = out / "summary.json"
    if summary.is_file():
        recorded = read_json(summary)
        recorded = recorded.get("config") if isinstance(recorded, dict) else None
        if isinstance(recorded, dict):
            changed = config.changed_fields(RunConfig.from_dict(recorded, summary))
            if changed:
                raise ValueError(
                    f"{out / 'config.json'} differs from the config the run was made with "
                    f"(summary.json) in {changed}: its weights and seeds belong to the "
                    f"recorded one; restore config.json (summary.json's \"config\"), or "
                    "train a new run with the changed config")
    return config


def _read_run_file(path: Path, device, *, weights_only: bool, fix: str):
    """``torch.load`` of a file a run wrote (checkpoint or model), with a ``ValueError``
    naming the file and ``fix`` where it cannot be read (truncated, empty, not torch's)."""
    try:
        return torch.load(path, map_location=device, weights_only=weights_only)
    except Exception as exc:  # any failure of torch.load: a damaged file
        first = first_line(exc)
        raise ValueError(f"{path} cannot be read, it is damaged or was not written by ppc "
                         f"({type(exc).__name__}: {first}); {fix}") from None
