"""Command line: ``python -m ppc train|infer|evaluate|run``.

Every field of :class:`ppc.config.RunConfig` is an option (``--steps 300``), nested ones
with a dot (``--ppc.top_k 16``, ``--view.scale 0.5``, ``--synthetic.num_classes 8``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import typing
from pathlib import Path

from ._checks import check_threads, first_line
from .config import RunConfig
from .data.synthetic import SyntheticConfig
from .loss import PPCConfig
from .views import ViewConfig

HELP = {
    "dataset": "'synthetic' (the embedded benchmark, in memory) or 'voc' (a VOC-layout "
               "folder at --data_root: real VOC 2012, or one written by ppc.data.write_voc)",
    "data_root": "the VOC2012 folder of the devkit (JPEGImages/, ImageSets/, ...)",
    "train_split": "split to train on (train_aug: 10,582 VOC images with SBD)",
    "eval_split": "split whose seeds are scored (VOC train, 1,464 images, as the paper)",
    "augment": "augmentation preset: 'voc' (official ranges) or 'synthetic' (scaled to 64 px)",
    "data_seed": "seed of the synthetic benchmark itself (fixed while --seed varies)",
    "backbone": "small (CPU, from scratch), resnet38 (the paper's), resnet50, resnet101",
    "weights": "backbone weights: a local .pth file, or a torchvision weight name for "
               "resnet50/101 such as IMAGENET1K_V1",
    "base": "cam (CAM + classification), seam (SEAM: PCM, ER, ECR, min-pooling), or full "
            "(fully supervised upper bound from pixel masks)",
    "width": "channel width of the small backbone",
    "dilations": "dilation of the small backbone's blocks 5 and 6 (receptive field "
                 "17 + 8 * (d5 + d6) px: 65 with 2 4, 33 with 1 1)",
    "proj_dim": "embedding size D of the projection head f_proj",
    "dropout": "Dropout2d before the CAM head (0.5 in the official ResNet-38 net)",
    "use_ppc": "add the PPC loss (false: the base alone, the control)",
    "ppc_start_step": "train the base alone for this many steps before PPC switches on",
    "optimizer": "sgd (official) or adamw",
    "lr": "base learning rate",
    "weight_decay": "weight decay (not on biases)",
    "momentum": "SGD momentum",
    "schedule": "poly (official, power 0.9) or onecycle",
    "steps": "training steps (not epochs: voc-resnet38's 10,576 are 8 epochs of train_aug "
             "at batch 8; with another --batch_size pass 10582 // batch_size * 8)",
    "batch_size": "images per step (over all processes)",
    "lr_mult": "learning-rate multipliers of [pretrained weights, pretrained biases, new "
               "weights, new biases] (official: 1 2 10 20)",
    "device": "auto (CUDA when present), cpu or cuda",
    "amp": "auto (bf16 autocast on CUDA), bf16, off",
    "channels_last": "auto (on CUDA), on, off",
    "cudnn_benchmark": "let cuDNN time its convolution algorithms for the fixed training crop "
                       "and keep the fastest (CUDA training only; inference sizes vary)",
    "seed": "seed of the run (initialisation, data order, augmentation, pixel sampling)",
    "num_workers": "DataLoader workers: 0 loads in the main process (the synthetic preset), "
                   "none or -1 one per core up to 8 (the VOC preset)",
    "threads": "CPU threads for torch (default: torch's choice)",
    "out_dir": "run folder: config.json, metrics.jsonl, checkpoint.pt, model.pt, seeds/",
    "log_every": "write metrics.jsonl every N steps",
    "checkpoint_every": "write checkpoint.pt every N steps (and at the end)",
    "resume": "continue from out_dir/checkpoint.pt when it exists",
    "scales": "inference scales",
    "flip": "add horizontally flipped inputs at inference",
    "png_threshold": "background threshold of the pseudo-mask PNGs (official: 0.26)",
    "infer_batch_size": "images per inference pass (images of different sizes go in "
                        "separate passes)",
    # nested fields whose class docstring does not document them one by one
    "view.scale": "target view size as a fraction of the source's (the paper rescales)",
    "view.size": "a fixed square target side in px instead (official: 128); none: use scale",
    "view.flip": "mirror the target view horizontally (transformation ablation)",
    "view.rotate": "rotate the target view by this many degrees (corners outside the source "
                   "are masked out of every term)",
    "ppc.mining_exclude_positive": "rank the positive prototype out of the mining band (the "
                                   "official code ranks it with the negatives)",
    "synthetic.decoy_fraction": "fraction of the clutter blobs that take a body colour",
    "synthetic.pixel_noise": "per-pixel noise sigma (0-1 scale)",
    "synthetic.class_names": "names of the classes (default: generated)",
}


class OneLineParser(argparse.ArgumentParser):
    """One line per error, and where to look, instead of the whole usage (dozens of
    options) above it."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _docstring_help(cls) -> dict[str, str]:
    """``name: text`` entries of a dataclass docstring (``a, b: text`` documents both)."""
    entries, current = {}, None
    for line in (cls.__doc__ or "").splitlines():
        match = re.match(r"\s*([a-z_][a-z_0-9, ]*):\s+(.*)", line)
        if match:
            current = [n.strip() for n in match.group(1).split(",")]
            for name in current:
                entries[name] = match.group(2).strip()
        elif current and line.strip():
            for name in current:
                entries[name] += " " + line.strip()
        else:
            current = None
    return entries


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def runs_folder(hint: str, resolve: bool = True):
    """An argparse type for a folder where runs go: an empty path is refused (it would
    mean the current folder; ``hint`` says what to pass instead); the path is made
    absolute where ``resolve``."""
    def parse(text: str) -> Path:
        if not text.strip():
            raise argparse.ArgumentTypeError(
                f"an empty path would put the runs in the current folder; {hint}")
        return Path(text).resolve() if resolve else Path(text)

    return parse


def _split_name(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a split name such as train or val, got ''")
    return text


def thread_count(text: str) -> int:
    """An argparse type for ``--threads``: an int from 1 to 4x this machine's cores
    (:func:`ppc._checks.check_threads`)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int, got {text!r}") from None
    try:
        return check_threads(value, "the thread count")
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def run_script_extras(parser: argparse.ArgumentParser, seeds, extra: list[str],
                      owned: set[str]) -> list[str]:
    """For scripts that start ``python -m ppc run`` once per row and seed: ``extra`` (the
    options after ``--``) without the ``--``, or a parser error where a seed is out of range
    (before any run) or ``extra`` repeats an option in ``owned``, which the script sets for
    each run (the later one would win silently)."""
    bad = [s for s in seeds if not 0 <= s < 2**32]
    if bad:
        parser.error(f"--seeds must be ints in [0, 2**32), got {bad}")
    extra = [a for a in extra if a != "--"]
    repeated = sorted({a.split("=")[0] for a in extra} & owned)
    if repeated:
        parser.error(f"{repeated} after -- would override what the script sets for each run; "
                     "use the script's own options (--seeds, --out, ...) instead")
    return extra


def _config_file(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("expected the path of a run's config.json, got an "
                                         "empty string (an unset variable?)")
    return text


def _parse_optional(kind):
    def parse(text):
        return None if text.lower() in ("none", "null", "") else kind(text)
    return parse


def _add_field(parser, name: str, ftype, default, help_text: str) -> None:
    origin = typing.get_origin(ftype)
    args = [a for a in typing.get_args(ftype) if a is not type(None)]
    kwargs = {"help": f"{help_text} (default: {default})", "default": argparse.SUPPRESS}
    if ftype is bool:
        kwargs.update(type=_parse_bool, metavar="BOOL")
    elif origin is tuple:
        fixed = args and args[-1] is not Ellipsis
        kwargs.update(type=args[0] if args else float, nargs=len(args) if fixed else "+")
    elif args and len(args) == 1 and origin is not None:  # X | None
        kwargs.update(type=_parse_optional(args[0]))
    elif ftype in (int, float, str):
        kwargs.update(type=ftype)
    else:
        return
    parser.add_argument(f"--{name}", dest=name, **kwargs)


def add_config_options(parser: argparse.ArgumentParser) -> None:
    hints = typing.get_type_hints(RunConfig)
    defaults = RunConfig()
    group = parser.add_argument_group("run configuration (ppc.config.RunConfig)")
    for f in dataclasses.fields(RunConfig):
        if f.name in ("ppc", "view", "synthetic"):
            continue
        _add_field(group, f.name, hints[f.name], getattr(defaults, f.name), HELP.get(f.name, ""))
    for prefix, cls, title in (("ppc", PPCConfig, "PPC loss (ppc.PPCConfig)"),
                               ("view", ViewConfig, "target view A (ppc.views.ViewConfig)"),
                               ("synthetic", SyntheticConfig,
                                "synthetic benchmark (ppc.data.SyntheticConfig)")):
        sub = parser.add_argument_group(title)
        doc = _docstring_help(cls)
        sub_hints = typing.get_type_hints(cls)
        current = getattr(defaults, prefix)
        for f in dataclasses.fields(cls):
            _add_field(sub, f"{prefix}.{f.name}", sub_hints[f.name], getattr(current, f.name),
                       doc.get(f.name) or HELP.get(f"{prefix}.{f.name}", ""))


def config_from_args(args: argparse.Namespace) -> RunConfig:
    values = {k: v for k, v in vars(args).items()
              if k not in ("command", "preset", "config", "run_dir", "split", "cams",
                           "quiet", "force", "func")}
    flat = {k.replace(".", "__"): v for k, v in values.items()}
    if flat.get("num_workers") == -1:
        flat["num_workers"] = None
    start = RunConfig.load(args.config) if getattr(args, "config", None) is not None \
        else RunConfig.preset(
        args.preset, **({"data_root": flat["data_root"]} if flat.get("data_root") else {}))
    return RunConfig.from_flat(start, **flat)


def _cmd_train(args) -> None:
    from .train import train

    config = config_from_args(args)
    out = train(config, progress=not args.quiet)
    print(f"trained: {out / 'model.pt'}")


def _cmd_run(args) -> None:
    from .experiment import run

    summary = run(config_from_args(args), progress=not args.quiet, force=args.force)
    if summary:  # under torchrun, rank 0's
        print(json.dumps({k: summary[k] for k in ("best_threshold", "best_miou",
                                                  "eval_split", "seconds")}, indent=2))


def _cmd_infer(args) -> None:
    from .experiment import write_seeds
    from .train import load_run_config, load_trained, resolve_device

    device = resolve_device(load_run_config(args.run_dir))
    config, model = load_trained(args.run_dir, device)
    split = args.split or config.eval_split
    out = write_seeds(config, model, split, Path(args.run_dir) / f"seeds-{split}", device,
                      progress=not args.quiet)
    print(f"seeds: {out}")


def default_cams(run_dir: Path, split: str, eval_split: str) -> Path:
    """The CAMs of ``split`` in a run folder: ``seeds-<split>/cams`` (``ppc infer``), or for
    the run's own eval_split ``seeds/cams`` (``ppc run``) when infer has not written any."""
    inferred = run_dir / f"seeds-{split}" / "cams"
    if split == eval_split and not inferred.is_dir() and (run_dir / "seeds" / "cams").is_dir():
        return run_dir / "seeds" / "cams"
    return inferred


def _cmd_evaluate(args) -> None:
    from .evaluate import evaluate_cam_dir
    from .train import build_dataset, load_run_config

    config = load_run_config(args.run_dir)
    split = args.split or config.eval_split
    dataset = build_dataset(config, split, train=False)  # an unknown split fails here
    cams = Path(args.cams) if args.cams else default_cams(Path(args.run_dir), split,
                                                          config.eval_split)
    if not args.cams and not cams.is_dir():
        raise ValueError(f"{cams} does not exist: infer the seeds of split {split!r} first "
                         f"(python -m ppc infer {args.run_dir} --split {split}), or pass --cams")
    curve = evaluate_cam_dir(cams, dataset)
    print(curve.to_frame().to_string(index=False))
    print(f"best: mIoU {100 * curve.best_miou:.2f} at background threshold "
          f"{curve.best_threshold:.2f} ({split}, {curve.num_images} images)")


def build_parser(prog: str = "python -m ppc") -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=prog,
        description="Weakly supervised semantic segmentation with pixel-to-prototype "
                    "contrast: train a base network with PPC, infer CAM seeds, score them.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, func, text in (
        ("train", _cmd_train, "train (or resume) one run"),
        ("run", _cmd_run, "train, infer the seeds of --eval_split and score them"),
    ):
        sub = commands.add_parser(name, help=text, description=(
            f"{text}. Defaults shown are the synthetic preset's; --preset voc-resnet38 starts "
            "from the official recipe (e.g. 10,576 steps of batch 8)."))
        start = sub.add_mutually_exclusive_group()
        start.add_argument("--preset", default="synthetic",
                           choices=("synthetic", "voc-resnet38"),
                           help="starting configuration: the synthetic CPU recipe, or the "
                                "official VOC recipe (ResNet-38 + SEAM)")
        start.add_argument("--config", type=_config_file,
                           help="start from a saved config.json instead of a preset")
        sub.add_argument("--quiet", action="store_true", help="no progress bars")
        if name == "run":
            sub.add_argument("--force", action="store_true", help="recompute a finished run")
        add_config_options(sub)
        sub.set_defaults(func=func)
    infer_cmd = commands.add_parser("infer", help="multi-scale + flip CAM seeds of a run",
                                    description="Write seeds-<split>/cams/*.npz and masks/*.png "
                                                "in the run folder.")
    infer_cmd.add_argument("run_dir", help="folder of a finished run (config.json, model.pt)")
    infer_cmd.add_argument("--split", type=_split_name,
                           help="split to infer (default: the run's eval_split)")
    infer_cmd.add_argument("--quiet", action="store_true", help="no progress bars")
    infer_cmd.set_defaults(func=_cmd_infer)
    eval_cmd = commands.add_parser("evaluate", help="mIoU of seeds against the split's masks",
                                   description="Background-threshold curve and best mIoU.")
    eval_cmd.add_argument("run_dir", help="folder of a run (its config.json names the data)")
    eval_cmd.add_argument("--split", type=_split_name,
                          help="split to score (default: the run's eval_split)")
    eval_cmd.add_argument("--cams", help="folder of <id>.npz CAMs (default: the run's seeds "
                                         "of the split: seeds-<split>/cams from infer, else "
                                         "seeds/cams from run)")
    eval_cmd.set_defaults(func=_cmd_evaluate)
    return parser


def main(argv=None, prog: str = "python -m ppc") -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (ValueError, FileNotFoundError, NotADirectoryError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (MemoryError, RuntimeError) as err:  # NumPy's, torch's CPU and CUDA allocators
        text = f"{type(err).__name__}: {first_line(err)}"
        if not isinstance(err, MemoryError) and not re.search(
                r"out of memory|can't allocate memory", text, re.IGNORECASE):
            raise
        print(f"error: out of memory ({text}); lower batch_size, the image or view size "
              "or the inference scales (or use a device with more memory)", file=sys.stderr)
        return 1
    return 0


def console() -> None:
    """The ``ppc`` console script: ``ppc train|run|infer|evaluate``, as ``python -m ppc``."""
    sys.exit(main(prog="ppc"))
