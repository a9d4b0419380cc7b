"""One configuration object per run: :class:`RunConfig`, filled from presets, the command
line or a notebook's papermill parameters (``RunConfig.from_flat``)."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from ._checks import check_field_types, check_scales, replace_fields
from .data.synthetic import SyntheticConfig
from .loss import PPCConfig
from .models.backbones import SMALL_DILATIONS
from .models.net import BACKBONES, BASES
from .views import ViewConfig

DATASETS = ("synthetic", "voc")
SYNTHETIC_SPLITS = ("train_aug", "train", "val")
#: largest inference scale a run accepts (the official scales go up to 2; a typo such as 20
#: or inf would otherwise only fail after the training, allocating the upscaled images)
MAX_SCALE = 8.0
OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("poly", "onecycle")


@dataclass
class RunConfig:
    """Everything one training run needs (defaults: the synthetic CPU recipe).

    Data: ``dataset`` ("synthetic" in memory, or "voc": any VOC-layout folder at
    ``data_root``, e.g. the synthetic benchmark written by ``ppc.data.write_voc``),
    ``train_split`` / ``eval_split`` (pseudo masks are scored on VOC *train*),
    ``augment`` (preset of ``ppc.data.transforms``), ``synthetic`` (benchmark knobs) and
    ``data_seed`` (the benchmark's own seed: fixed while ``seed`` varies the training).
    Model: ``backbone``, ``weights`` (local .pth file or torchvision weight name), ``base``
    ("cam", "seam", or "full" = fully supervised upper bound), ``width`` and ``dilations``
    (small backbone: channel width, dilation of blocks 5 and 6),
    ``proj_dim``, ``dropout``.
    Views and PPC: ``view`` (A), ``use_ppc`` and ``ppc`` (every PPC knob),
    ``ppc_start_step`` (steps of base-only warm-up before PPC switches on).
    Optimisation: ``optimizer`` ("sgd" official, "adamw"), ``lr``, ``weight_decay``,
    ``momentum``, ``schedule`` ("poly" official, power 0.9; "onecycle"), ``steps``,
    ``batch_size``, ``lr_mult`` (x1/x2/x10/x20 of the official groups).
    Runtime: ``device`` ("auto", "cpu", "cuda"), ``amp`` ("auto": bf16 autocast on CUDA),
    ``channels_last`` ("auto": on CUDA), ``cudnn_benchmark`` (cuDNN's autotuner while training
    on CUDA), ``seed``, ``num_workers`` (None: the machine's
    cores), ``threads`` (CPU threads, None: torch's default), ``out_dir``, ``log_every``,
    ``checkpoint_every``, ``resume``, inference ``scales``/``flip``/``png_threshold``.
    """

    dataset: str = "synthetic"
    data_root: str | None = None
    train_split: str = "train_aug"
    eval_split: str = "train"
    augment: str = "synthetic"
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    data_seed: int = 0
    backbone: str = "small"
    weights: str | None = None
    base: str = "cam"
    width: int = 32
    dilations: tuple[int, int] = SMALL_DILATIONS
    proj_dim: int = 128
    dropout: float = 0.0
    view: ViewConfig = field(default_factory=lambda: ViewConfig(scale=0.5))
    use_ppc: bool = True
    ppc: PPCConfig = field(default_factory=PPCConfig)
    ppc_start_step: int = 0
    optimizer: str = "adamw"
    lr: float = 3e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9
    schedule: str = "onecycle"
    steps: int = 300
    batch_size: int = 32
    lr_mult: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    device: str = "auto"
    amp: str = "auto"
    channels_last: str = "auto"
    cudnn_benchmark: bool = True
    seed: int = 0
    num_workers: int | None = 0
    threads: int | None = None
    out_dir: str = "runs/default"
    log_every: int = 10
    checkpoint_every: int = 100
    resume: bool = True
    scales: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0)
    flip: bool = True
    png_threshold: float = 0.26
    infer_batch_size: int = 64

    def __post_init__(self) -> None:
        def one_of(name, allowed):
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"unknown {name} {getattr(self, name)!r}; expected one of {tuple(allowed)}")

        one_of("dataset", DATASETS)
        one_of("backbone", BACKBONES)
        one_of("base", BASES)
        one_of("optimizer", OPTIMIZERS)
        one_of("schedule", SCHEDULES)
        one_of("device", ("auto", "cpu", "cuda"))
        one_of("amp", ("auto", "bf16", "off"))
        one_of("channels_last", ("auto", "on", "off"))
        for name, kind in (("synthetic", SyntheticConfig), ("view", ViewConfig),
                           ("ppc", PPCConfig)):
            value = getattr(self, name)
            if isinstance(value, dict):
                unknown = sorted(set(value) - {f.name for f in dataclasses.fields(kind)})
                if unknown:
                    raise ValueError(f"unknown {name} field(s) {unknown}; see "
                                     f"{kind.__module__}.{kind.__name__}")
                setattr(self, name, kind(**_tuples(value)))
            elif not isinstance(value, kind):
                raise ValueError(f"RunConfig.{name} must be a {kind.__name__} or a dict of its "
                                 f"fields, got {value!r} ({type(value).__name__})")
        check_field_types(self, "RunConfig")  # the nested configs check their own fields
        self._check_values()
        self.lr_mult = tuple(self.lr_mult)
        self.dilations = tuple(self.dilations)
        self.scales = tuple(self.scales)

    def _check_values(self) -> None:
        """``ValueError`` naming the field whose value no run can use."""
        if self.dataset == "voc" and not self.data_root:
            raise ValueError("dataset 'voc' needs data_root: the VOC2012 folder of the devkit "
                             "(or a folder written by ppc.data.write_voc)")
        for name in ("steps", "batch_size", "log_every", "checkpoint_every", "infer_batch_size",
                     "width", "proj_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr}")
        if len(self.lr_mult) != 4 or not all(0 <= m < math.inf for m in self.lr_mult) \
                or not any(self.lr_mult):
            raise ValueError(f"lr_mult must be 4 finite factors >= 0, not all 0 (backbone "
                             f"weights, backbone biases, new layers, new biases), got "
                             f"{tuple(self.lr_mult)}")
        if not 0 <= self.weight_decay < math.inf:
            raise ValueError(f"weight_decay must be a finite number >= 0, got "
                             f"{self.weight_decay}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1) (SGD diverges from 1 on), got "
                             f"{self.momentum}")
        for name in ("seed", "data_seed"):
            if not 0 <= getattr(self, name) < 2**32:
                raise ValueError(f"{name} must be in [0, 2**32), got {getattr(self, name)}")
        if self.dataset == "synthetic":
            for role in ("train_split", "eval_split"):
                split = getattr(self, role)
                if split not in SYNTHETIC_SPLITS:
                    raise ValueError(f"{role} {split!r} is not a split of the synthetic "
                                     f"benchmark; expected one of {SYNTHETIC_SPLITS}")
                if getattr(self.synthetic, f"num_{split}") == 0:
                    raise ValueError(f"{role} {split!r} of the synthetic benchmark has no image "
                                     f"(synthetic.num_{split} = 0); raise it, or pick another "
                                     "split")
        if not str(self.out_dir).strip():
            raise ValueError("out_dir must name a folder for the run, got an empty path")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not 0 <= self.png_threshold <= 1:
            raise ValueError(f"png_threshold must be in [0, 1] (a background score for "
                             f"CAMs normalised to [0, 1]), got {self.png_threshold}")
        check_scales(tuple(self.scales), MAX_SCALE)
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1 (or None: torch's default), got "
                             f"{self.threads}")
        if self.num_workers is not None and self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0 (or None: the machine's cores), got "
                             f"{self.num_workers}")
        if self.use_ppc and not 0 <= self.ppc_start_step < self.steps:
            raise ValueError(f"ppc_start_step must be in [0, steps) = [0, {self.steps}) when "
                             f"use_ppc is on (PPC would never switch on), got "
                             f"{self.ppc_start_step}")

    # -- runtime rules ---------------------------------------------------------------------
    def bf16_autocast(self, device) -> bool:
        """Whether forward passes on ``device`` (a ``torch.device``) run under bf16
        autocast: ``amp="bf16"``, or ``"auto"`` on CUDA."""
        return self.amp == "bf16" or (self.amp == "auto" and device.type == "cuda")

    def channels_last_on(self, device) -> bool:
        """Whether the model and its input images on ``device`` use the channels-last
        memory format: ``channels_last="on"``, or ``"auto"`` on CUDA."""
        return self.channels_last == "on" or (self.channels_last == "auto"
                                              and device.type == "cuda")

    # -- presets and conversions ----------------------------------------------------------
    @classmethod
    def preset(cls, name: str, **changes) -> RunConfig:
        """``"synthetic"`` (the CPU recipe above) or ``"voc-resnet38"`` (the official
        recipe: ResNet-38, SEAM, 448 crops, T = 128x128, SGD poly, lr groups x1/x2/x10/x20,
        batch 8, 8 epochs of train_aug = 10,582 // 8 * 8 steps). The official code passes
        the weight decay where SGD expects the momentum, so its runs have momentum 5e-4
        (the weight decay of 5e-4 still applies to the weights, set per parameter group);
        the preset reproduces that (``momentum=0.9`` for the evidently intended optimiser).
        ``steps`` stays 10,576 if ``batch_size`` changes: pass
        ``steps=10582 // batch_size * 8`` to keep 8 epochs."""
        if name == "synthetic":
            return cls(**changes)
        if name == "voc-resnet38":
            base = dict(
                dataset="voc", augment="voc", backbone="resnet38", base="seam", dropout=0.5,
                view=ViewConfig(size=128), optimizer="sgd", lr=0.01, weight_decay=5e-4,
                momentum=5e-4, schedule="poly", steps=10582 // 8 * 8, batch_size=8,
                lr_mult=(1.0, 2.0, 10.0, 20.0), num_workers=None, infer_batch_size=1,
                checkpoint_every=500, log_every=20,
            )
            base.update(changes)
            return cls(**base)
        raise ValueError(f"unknown preset {name!r}; expected 'synthetic' or 'voc-resnet38'")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    #: fields that say where and how fast a run goes, not what it computes
    RUNTIME_FIELDS = ("out_dir", "resume", "threads", "num_workers", "log_every",
                      "checkpoint_every", "infer_batch_size", "cudnn_benchmark")

    def identity(self) -> dict:
        """What makes two runs the same experiment, as plain JSON values: every field but
        the runtime ones (a run folder may be moved, or resumed with other threads)."""
        values = json.loads(json.dumps(self.to_dict()))
        for name in self.RUNTIME_FIELDS:
            values.pop(name)
        return values

    def replace(self, **changes) -> RunConfig:
        """A copy with ``changes`` (checked as a new config: unknown names and bad values
        raise ``ValueError``)."""
        return replace_fields(self, changes)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        """The config saved at ``path`` (a run's ``config.json``)."""
        try:
            values = json.loads(Path(path).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"cannot read a run config from {path} ({err}); pass a "
                             "config.json written by a run") from None
        return cls.from_dict(values, path)

    @classmethod
    def from_dict(cls, values, source) -> RunConfig:
        """The config of the field values ``values`` (as ``to_dict`` gives them) read from
        ``source`` (a file, named in every error: unknown fields, refused values)."""
        if not isinstance(values, dict):
            raise ValueError(f"{source} holds no run config (a JSON object of RunConfig "
                             "fields)")
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"{source}: unknown RunConfig field(s) {unknown}")
        try:
            return cls(**values)
        except ValueError as err:
            raise ValueError(f"{source}: {err}") from None

    def changed_fields(self, other: RunConfig) -> list[str]:
        """The fields of :meth:`identity` in which ``other`` differs (runtime fields such as
        ``threads`` do not count)."""
        mine, theirs = self.identity(), other.identity()
        return sorted(k for k in mine if mine[k] != theirs.get(k))

    @classmethod
    def from_flat(cls, start: RunConfig | None = None, /, **flat) -> RunConfig:
        """Fill a config from flat names, as papermill parameters and the command line give
        them: top-level fields by name, nested ones as ``ppc__top_k``, ``view__scale``,
        ``synthetic__num_classes``. Unknown names raise ``ValueError``. A ``view__scale``
        given without ``view__size`` clears the start's fixed ``size`` (the VOC preset's
        128 px), which would otherwise silently override the scale."""
        config = start or cls()
        top, nested = {}, {}
        for key, value in flat.items():
            if "__" in key:
                group, _, name = key.partition("__")
                nested.setdefault(group, {})[name] = value
            else:
                top[key] = value
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(top) - known) + sorted(set(nested) - {"ppc", "view", "synthetic"})
        if unknown:
            dotted = [k for k in unknown if "." in k]
            hint = (f"; write nested fields as group__name, e.g. "
                    f"{dotted[0].replace('.', '__')}" if dotted else "")
            raise ValueError(f"unknown run parameter(s) {unknown}; see ppc.config.RunConfig"
                             + hint)
        config = dataclasses.replace(config, **top)
        for group, values in nested.items():
            current = getattr(config, group)
            names = {f.name for f in dataclasses.fields(current)}
            if set(values) - names:
                raise ValueError(f"unknown {group} parameter(s) {sorted(set(values) - names)}")
            if group == "view" and "scale" in values and "size" not in values:
                values = {**values, "size": None}
            config = dataclasses.replace(config, **{group: dataclasses.replace(current, **values)})
        return config


def _tuples(values: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
