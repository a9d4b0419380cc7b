"""A procedurally generated WSSS benchmark that shows the problem PPC addresses.

Every object has a large *body* whose colour is shared by a group of classes and a small
*part* whose colour is unique to its class. An image-level classifier needs only the part
to tell the classes apart, and body-coloured decoy blobs in the clutter make the body
colour itself a poor cue, so its CAMs cover the part and little of the body: the
under-segmentation of real CAMs. A segmentation network trained with the pixel masks can
label the whole body from the part nearby. Pixel masks are generated for evaluation only.

Everything is drawn from ``numpy.random.Generator`` streams spawned per image from one
``SeedSequence``, so the same config and seed give byte-identical data, and image ``i``
does not depend on how many images are generated.

The benchmark's knobs live in :class:`SyntheticConfig`; :func:`generate` returns arrays,
:class:`SyntheticSegmentation` is an in-memory dataset, and :func:`write_voc` writes the
benchmark in the PASCAL VOC directory layout, so that :class:`ppc.data.voc.VOCSegmentation`
reads it through the same code path as the real VOC.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import tv_tensors

from .._checks import (
    check_field_types,
    check_seed,
    index_error,
    is_int,
    replace_fields,
    require_transform,
)
from .voc import GENERATED_MARKER, IGNORE_INDEX, write_label_png, write_voc_annotation

SPLITS = ("train_aug", "val")
#: values of the ``regions`` maps: background (clutter included), object body, discriminative part
BACKGROUND, BODY, PART = 0, 1, 2


@dataclass(frozen=True)
class SyntheticConfig:
    """Knobs of the synthetic benchmark (defaults: the book's benchmark).

    image_size: side of the square images (px).
    num_classes: foreground classes.
    body_groups: classes sharing one body colour (``num_classes / body_groups`` colours).
    objects_per_image: (min, max) objects per image.
    body_radius: (min, max) radii of the elliptic bodies (px).
    part_radius: radius of the discriminative disc (px).
    part_offset: how far from the body centre the part sits, as a fraction of the body's
        smaller radius (0: centre).
    clutter_blobs: (min, max) background blobs; decoy_fraction of them take a body colour.
    colour_jitter: per-object colour jitter (0-1 scale); pixel_noise: per-pixel sigma (0-1
        scale); both in [0, 1].
    cooccurrence: probability that an image's second object is its first object's
        partner class (``c ^ 1``): a co-occurrence bias like boat/water in VOC.
    num_train_aug, num_train, num_val: images in train_aug (training, image labels only),
        in train (the first ``num_train`` of train_aug, where pseudo masks are scored, as
        VOC train within train_aug) and in val (separate images, for choosing knobs).
    palette_seed: seed of the class colours, shared by all splits, in [0, 2**32).
    """

    image_size: int = 64
    num_classes: int = 6
    body_groups: int = 2
    objects_per_image: tuple[int, int] = (1, 2)
    body_radius: tuple[float, float] = (8.0, 14.0)
    part_radius: float = 2.5
    part_offset: float = 0.45
    clutter_blobs: tuple[int, int] = (2, 5)
    decoy_fraction: float = 0.5
    colour_jitter: float = 0.06
    pixel_noise: float = 0.03
    cooccurrence: float = 0.0
    num_train_aug: int = 3000
    num_train: int = 500
    num_val: int = 400
    palette_seed: int = 0
    class_names: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        check_field_types(self, "SyntheticConfig")
        def bad(msg):
            raise ValueError(f"SyntheticConfig: {msg}")

        # NaN passes every range check below as False, and inf some of them: refuse both first
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            values = value if isinstance(value, (tuple, list)) else (value,)
            if any(isinstance(v, float) and not math.isfinite(v) for v in values):
                bad(f"{f.name} must be finite, got {value!r}; pass a real number (see the "
                    "SyntheticConfig docstring for its range)")
        if self.image_size < 16:
            bad(f"image_size must be >= 16, got {self.image_size}")
        # masks are uint8 with class c stored as c + 1 and 255 meaning ignore
        if not 1 <= self.num_classes <= 254:
            bad(f"num_classes must be in [1, 254] (uint8 masks, 255 = ignore), got "
                f"{self.num_classes}")
        if self.body_groups < 1 or self.num_classes % self.body_groups:
            bad(f"body_groups ({self.body_groups}) must divide num_classes ({self.num_classes})")
        lo, hi = self.objects_per_image
        if not 1 <= lo <= hi:
            bad(f"objects_per_image must be (min, max) with 1 <= min <= max, got {(lo, hi)}")
        rlo, rhi = self.body_radius
        if not 0 < rlo <= rhi < self.image_size / 2:
            bad(f"body_radius must be (min, max) with 0 < min <= max < image_size/2, got "
                f"{(rlo, rhi)}")
        if not 0 < self.part_radius < rlo:
            bad(f"part_radius must be in (0, body_radius min), got {self.part_radius}")
        if not 0 <= self.part_offset <= 1:
            bad(f"part_offset must be in [0, 1], got {self.part_offset}")
        if not 0 <= self.clutter_blobs[0] <= self.clutter_blobs[1]:
            bad(f"clutter_blobs must be (min, max) with 0 <= min <= max, got {self.clutter_blobs}")
        for name in ("decoy_fraction", "cooccurrence", "colour_jitter", "pixel_noise"):
            if not 0 <= getattr(self, name) <= 1:
                bad(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0 <= self.num_train <= self.num_train_aug or self.num_val < 0:
            bad("need 0 <= num_train <= num_train_aug and num_val >= 0, got "
                f"{(self.num_train, self.num_train_aug, self.num_val)}")
        if not 0 <= self.palette_seed < 2**32:
            bad(f"palette_seed must be in [0, 2**32), got {self.palette_seed}; pass a "
                "non-negative seed such as 0")
        if self.class_names and len(self.class_names) != self.num_classes:
            bad(f"class_names has {len(self.class_names)} names for {self.num_classes} classes")
        # classes.txt holds one stripped name per line: other names would not read back
        for name in self.class_names:
            if not name.strip() or name != name.strip() or "\n" in name or "\r" in name:
                bad(f"class_names must be non-empty names without surrounding spaces or line "
                    f"breaks (they are written one per line to classes.txt), got {name!r}")
        if len(set(self.class_names)) != len(self.class_names):
            dup = next(n for i, n in enumerate(self.class_names) if n in self.class_names[:i])
            bad(f"class_names must be distinct, got {dup!r} twice")

    @property
    def names(self) -> tuple[str, ...]:
        """Class names (``class_names`` or ``shape0 ..``)."""
        return self.class_names or tuple(f"shape{c}" for c in range(self.num_classes))

    def replace(self, **changes) -> SyntheticConfig:
        """A copy with ``changes`` (checked again; unknown names raise ``ValueError``)."""
        return replace_fields(self, changes)

    def fingerprint(self, seed: int) -> str:
        """Short hash of config + seed, e.g. to name a cache folder."""
        text = json.dumps([dataclasses.asdict(self), seed], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass
class SyntheticSplit:
    """Arrays of one split: ``images`` ``[N, S, S, 3]`` uint8, ``masks`` ``[N, S, S]`` uint8
    (0 background, ``c + 1`` class ``c``), ``labels`` ``[N, C]`` float32 multi-hot, ``ids``,
    and ``regions`` ``[N, S, S]`` uint8 (:data:`BACKGROUND`, :data:`BODY`, :data:`PART`):
    which part of an object each pixel shows, for diagnostics only."""

    images: np.ndarray
    masks: np.ndarray
    labels: np.ndarray
    ids: list[str]
    regions: np.ndarray | None = None


def _check_config(config, owner: str) -> SyntheticConfig:
    """``config``, or the default config for None; a ``ValueError`` for anything else (an
    empty dict would otherwise silently mean the defaults)."""
    if config is None:
        return SyntheticConfig()
    if not isinstance(config, SyntheticConfig):
        raise ValueError(f"{owner}: config must be a SyntheticConfig (or None for the "
                         f"defaults), got {type(config).__name__}; build one with "
                         "SyntheticConfig(**values)")
    return config


def _output_root(root, owner: str) -> Path:
    """``root`` as a Path, or a ``ValueError`` unless it is a path that is missing or a
    folder."""
    if not isinstance(root, (str, os.PathLike)) or str(root) == "":
        raise ValueError(f"{owner}: root must be the path of the folder to write the benchmark "
                         f"into (str or Path), got {root!r}; pass e.g. 'data/synthetic'")
    path = Path(root)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{owner}: root {path} is a file, not a folder; pass the path of a "
                         "missing or empty folder to write the benchmark into")
    return path


def palettes(config: SyntheticConfig) -> tuple[np.ndarray, np.ndarray]:
    """(body colours ``[groups, 3]``, part colours ``[C, 3]``) in [0, 1], well separated."""
    rng = np.random.default_rng(config.palette_seed)
    n = config.body_groups + config.num_classes
    # hues spread around the circle, shuffled; alternating brightness keeps them apart
    hues = (np.arange(n) / n + rng.uniform(0, 1 / n)) % 1.0
    hues = hues[rng.permutation(n)]
    sat = np.where(np.arange(n) % 2 == 0, 0.85, 0.6)
    val = np.where(np.arange(n) % 3 == 0, 0.95, 0.75)
    colours = hsv_to_rgb(hues, sat, val)
    return colours[: config.body_groups], colours[config.body_groups:]


def hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """RGB colours ``[n, 3]`` in [0, 1] of hues, saturations and values ``[n]`` in [0, 1]."""
    i = np.floor(h * 6).astype(int) % 6
    f = h * 6 - np.floor(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    table = np.stack([
        np.stack([v, t, p], -1), np.stack([q, v, p], -1), np.stack([p, v, t], -1),
        np.stack([p, q, v], -1), np.stack([t, p, v], -1), np.stack([v, p, q], -1),
    ])
    return table[i, np.arange(len(h))]


def ellipse(yy, xx, cy, cx, ry, rx, angle):
    """Bool mask of the ellipse centred at ``(cy, cx)`` with radii ``ry``, ``rx``, turned by
    ``angle`` (radians), on the pixel grids ``yy``, ``xx``."""
    c, s = np.cos(angle), np.sin(angle)
    dy, dx = yy - cy, xx - cx
    u, w = c * dx + s * dy, -s * dx + c * dy
    return (u / rx) ** 2 + (w / ry) ** 2 <= 1.0


def render_image(config: SyntheticConfig, rng: np.random.Generator, body, part, *,
                 return_regions: bool = False):
    """One image: ``(image [S, S, 3] uint8, mask [S, S] uint8, classes present)``, and its
    ``regions`` ``[S, S]`` uint8 map last when ``return_regions`` (draws the same numbers)."""
    size = config.image_size
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)

    # background: a gradient between two random dull colours, plus clutter blobs
    direction = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(direction) * xx + np.sin(direction) * yy) / size
    ramp = (ramp - ramp.min()) / max(np.ptp(ramp), 1e-6)
    c0, c1 = rng.uniform(0.1, 0.6, size=(2, 3))
    image = c0 + ramp[..., None] * (c1 - c0)
    for _ in range(rng.integers(config.clutter_blobs[0], config.clutter_blobs[1] + 1)):
        if rng.random() < config.decoy_fraction:
            colour = body[rng.integers(len(body))] + rng.normal(0, config.colour_jitter, 3)
        else:
            colour = rng.uniform(0.05, 0.95, 3)
        r = rng.uniform(0.3, 0.8) * config.body_radius[1]
        blob = ellipse(yy, xx, *rng.uniform(0, size, 2), r * rng.uniform(0.5, 1.0), r,
                       rng.uniform(0, np.pi))
        image[blob] = colour

    # objects: classes, optionally with the partner class co-occurring
    count = int(rng.integers(config.objects_per_image[0], config.objects_per_image[1] + 1))
    classes = [int(rng.integers(config.num_classes))]
    for _ in range(count - 1):
        if rng.random() < config.cooccurrence and (classes[0] ^ 1) < config.num_classes:
            classes.append(classes[0] ^ 1)
        else:
            classes.append(int(rng.integers(config.num_classes)))
    mask = np.zeros((size, size), np.uint8)
    regions = np.zeros((size, size), np.uint8)
    centres: list[tuple[float, float, float]] = []
    group_size = config.num_classes // config.body_groups
    for c in classes:
        rmin, rmax = config.body_radius
        ry, rx = rng.uniform(rmin, rmax, 2)
        for _ in range(20):  # keep objects mostly apart
            cy, cx = rng.uniform(max(ry, rx) * 0.6, size - max(ry, rx) * 0.6, 2)
            if all(np.hypot(cy - y, cx - x) > 0.8 * (max(ry, rx) + r) for y, x, r in centres):
                break
        centres.append((cy, cx, max(ry, rx)))
        angle = rng.uniform(0, np.pi)
        body_mask = ellipse(yy, xx, cy, cx, ry, rx, angle)
        image[body_mask] = body[c // group_size] + rng.normal(0, config.colour_jitter, 3)
        theta = rng.uniform(0, 2 * np.pi)
        dist = config.part_offset * min(ry, rx) * rng.uniform(0.5, 1.0)
        py, px = cy + dist * np.sin(theta), cx + dist * np.cos(theta)
        part_mask = ((yy - py) ** 2 + (xx - px) ** 2 <= config.part_radius ** 2) & body_mask
        image[part_mask] = part[c] + rng.normal(0, config.colour_jitter / 2, 3)
        mask[body_mask] = c + 1
        regions[body_mask] = BODY
        regions[part_mask] = PART

    image = image + rng.normal(0, config.pixel_noise, image.shape)
    image = (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)
    present = sorted({int(v) - 1 for v in np.unique(mask) if v > 0})
    return (image, mask, present, regions) if return_regions else (image, mask, present)


def _split_offset(config: SyntheticConfig, split: str) -> int:
    if split not in SPLITS:
        raise ValueError(f"unknown synthetic split {split!r}; expected 'train_aug', 'train' "
                         "(the first num_train images of train_aug) or 'val'")
    return 0 if split == "train_aug" else config.num_train_aug


def image_ids(config: SyntheticConfig, split: str) -> list[str]:
    """Ids of a split, in the VOC style (``syn_000123``); train = train_aug's first ids."""
    if split == "train":
        return [f"syn_{i:06d}" for i in range(config.num_train)]
    offset = _split_offset(config, split)
    count = config.num_train_aug if split == "train_aug" else config.num_val
    return [f"syn_{offset + i:06d}" for i in range(count)]


def generate(config: SyntheticConfig, split: str = "train_aug", seed: int = 0) -> SyntheticSplit:
    """Render every image of ``split`` ("train_aug", "train" or "val")."""
    config = _check_config(config, "generate")
    seed = check_seed(seed, "generate")
    ids = image_ids(config, split)
    first = int(ids[0][4:]) if ids else 0
    children = np.random.SeedSequence(seed).spawn(first + len(ids))[first:]
    body, part = palettes(config)
    size, n = config.image_size, len(ids)
    images = np.zeros((n, size, size, 3), np.uint8)
    masks = np.zeros((n, size, size), np.uint8)
    labels = np.zeros((n, config.num_classes), np.float32)
    regions = np.zeros((n, size, size), np.uint8)
    for i, child in enumerate(children):
        image, mask, present, regions[i] = render_image(
            config, np.random.default_rng(child), body, part, return_regions=True)
        images[i], masks[i] = image, mask
        labels[i, present] = 1.0
    return SyntheticSplit(images, masks, labels, ids, regions)


class SyntheticSegmentation(Dataset):
    """The synthetic benchmark in memory, with the sample format of
    :class:`ppc.data.voc.VOCSegmentation`: a dict with ``id``, ``image``
    (``tv_tensors.Image`` uint8 ``[3, S, S]``), ``label`` (float ``[C]``), ``mask``
    (``tv_tensors.Mask`` int64 ``[S, S]``, 255 = ignore) and ``has_mask``; ``transform``
    (e.g. :func:`ppc.data.transforms.train_transform`) is applied to the whole sample."""

    def __init__(self, config: SyntheticConfig | None = None, split: str = "train_aug",
                 seed: int = 0, transform=None) -> None:
        self.config = _check_config(config, "SyntheticSegmentation")
        seed = check_seed(seed, "SyntheticSegmentation")
        require_transform("SyntheticSegmentation", transform)
        self.split, self.seed, self.transform = split, seed, transform
        self.data = generate(self.config, split, seed)
        self.ids = self.data.ids
        self.class_names = self.config.names

    def __len__(self) -> int:
        return len(self.data.ids)

    def __getitem__(self, index: int) -> dict:
        try:
            ident = self.data.ids[index]
        except IndexError:
            raise index_error(index, len(self.data.ids),
                              f"synthetic split {self.split!r}") from None
        sample = {
            "id": ident,
            "image": tv_tensors.Image(torch.from_numpy(self.data.images[index]).permute(2, 0, 1)),
            "label": torch.from_numpy(self.data.labels[index]),
            "mask": tv_tensors.Mask(torch.from_numpy(self.data.masks[index]).long()),
            "has_mask": True,
        }
        return self.transform(sample) if self.transform is not None else sample


def write_voc(root: str | Path, config: SyntheticConfig | None = None, seed: int = 0,
              jpeg_quality: int = 95) -> Path:
    """Write the benchmark in the PASCAL VOC 2012 layout under ``root`` and return it.

    ``JPEGImages/<id>.jpg``, ``SegmentationClass/<id>.png`` (VOC palette, train and val),
    ``SegmentationClassAug/<id>.png`` (every image, as SBD's masks), ``Annotations/<id>.xml``
    (one ``<object>`` per object, with its box), ``ImageSets/Segmentation/{train,val,
    train_aug}.txt``, ``classes.txt`` (the class names, one per line: a VOC-layout
    dataset with its own classes; without it the reader assumes VOC's 20) and
    ``synthetic.json`` (the config and seed it was generated from, see :func:`ensure_voc`).
    ``jpeg_quality`` is PIL's JPEG quality, an int in [1, 100] (PIL advises at most 95).
    """
    config = _check_config(config, "write_voc")
    seed = check_seed(seed, "write_voc")
    if not is_int(jpeg_quality) or not 1 <= jpeg_quality <= 100:
        raise ValueError(f"write_voc: jpeg_quality must be an int in [1, 100] (PIL's JPEG "
                         f"quality; 95 is the default and best advised), got {jpeg_quality!r}")
    jpeg_quality = int(jpeg_quality)
    root = _output_root(root, "write_voc")
    for sub in _WRITTEN_FOLDERS:
        (root / sub).mkdir(parents=True, exist_ok=True)
    names = config.names
    (root / "classes.txt").write_text("\n".join(names) + "\n")
    train_ids = set(image_ids(config, "train"))
    for split in SPLITS:
        data = generate(config, split, seed)
        for image, mask, ident in zip(data.images, data.masks, data.ids, strict=True):
            # 4:4:4 chroma: subsampling would blur the small coloured parts
            Image.fromarray(image).save(root / "JPEGImages" / f"{ident}.jpg",
                                        quality=jpeg_quality, subsampling=0)
            write_label_png(root / "SegmentationClassAug" / f"{ident}.png", mask, palette=False)
            if split == "val" or ident in train_ids:
                write_label_png(root / "SegmentationClass" / f"{ident}.png", mask)
            write_voc_annotation(root / "Annotations" / f"{ident}.xml", ident, mask, names)
        (root / "ImageSets/Segmentation" / f"{split}.txt").write_text("\n".join(data.ids) + "\n")
    (root / "ImageSets/Segmentation/train.txt").write_text(
        "\n".join(image_ids(config, "train")) + "\n")
    (root / MARKER).write_text(_marker_text(config, seed))
    return root


#: the file in a written benchmark folder that names its config and seed
MARKER = GENERATED_MARKER
_WRITTEN_FOLDERS = ("JPEGImages", "SegmentationClass", "SegmentationClassAug", "Annotations",
                    "ImageSets/Segmentation")


def _marker_text(config: SyntheticConfig, seed: int) -> str:
    return json.dumps({"config": dataclasses.asdict(config), "seed": seed}, indent=1,
                      sort_keys=True) + "\n"


def ensure_voc(root: str | Path, config: SyntheticConfig | None = None, seed: int = 0) -> Path:
    """The benchmark of ``config`` and ``seed`` in the VOC layout at ``root``: reused when
    ``root`` holds exactly that benchmark (its ``synthetic.json``), written when ``root``
    is missing or empty, rewritten when it holds another version of the synthetic
    benchmark. A folder with other contents (real VOC, or a benchmark written before
    ``synthetic.json`` existed) raises ``ValueError`` instead of being reused silently."""
    config = _check_config(config, "ensure_voc")
    seed = check_seed(seed, "ensure_voc")  # before anything is removed
    root = _output_root(root, "ensure_voc")
    marker = root / MARKER
    if marker.is_file():
        if marker.read_text() == _marker_text(config, seed):
            return root
        # our own folder, holding another benchmark: remove what write_voc wrote
        for sub in _WRITTEN_FOLDERS:
            shutil.rmtree(root / sub, ignore_errors=True)
        for name in ("classes.txt", MARKER):
            (root / name).unlink(missing_ok=True)
    elif root.exists() and any(root.iterdir()):
        raise ValueError(
            f"{root} is not empty and has no {MARKER}: it is not a synthetic benchmark "
            "written by this version of ppc (or it is real data). Delete it, or pass another "
            "folder to write the benchmark into.")
    return write_voc(root, config, seed)


__all__ = [
    "IGNORE_INDEX",
    "SyntheticConfig",
    "SyntheticSegmentation",
    "SyntheticSplit",
    "ensure_voc",
    "generate",
    "image_ids",
    "palettes",
    "render_image",
    "write_voc",
]
