"""PASCAL VOC 2012 (+ SBD) in its devkit layout, and any dataset stored the same way.

Expected layout under ``root`` (the ``VOC2012`` folder of the devkit)::

    JPEGImages/<id>.jpg                  every image
    ImageSets/Segmentation/train.txt     1,464 ids with pixel masks (where seeds are scored)
    ImageSets/Segmentation/val.txt       1,449 ids
    SegmentationClass/<id>.png           VOC's masks (palette PNG, 255 = ignore)
    SegmentationClassAug/<id>.png        SBD's augmented masks (needed for train_aug only)
    Annotations/<id>.xml                 object annotations (the image labels)
    ImageSets/Segmentation/train_aug.txt optional; else train_aug = SegmentationClassAug - val
    classes.txt                          optional: one class name per line (own datasets)

Image-level labels come from a label table (a small TSV: id, then the present class
indices), from the XML annotation where one exists (every class named there, as the
official PSA/SEAM/PPC label file ``cls_labels.npy``: a class whose pixels a mask leaves
void or unlabelled still counts), or else from the pixel mask. Tables
for ids not yet known are derived once and cached outside the data folder, which may be
read-only (``~/.cache/ppc`` or ``$PPC_CACHE``), under a key of the folder's path, its
class names and, for a generated benchmark, its ``synthetic.json``. Edit the masks or
annotations of an existing id in place and the cache still holds the old labels: delete
the cache folder then.
"""

from __future__ import annotations

import hashlib
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset
from torchvision import tv_tensors

from .._checks import index_error, require_transform

IGNORE_INDEX = 255

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)

LAYOUT = (
    "expected a PASCAL VOC 2012 devkit folder (e.g. .../VOCdevkit/VOC2012) with JPEGImages/, "
    "ImageSets/Segmentation/{train,val}.txt, SegmentationClass/, Annotations/, and "
    "SegmentationClassAug/ (SBD) for train_aug"
)


# how labels are derived; part of the cache key, so tables derived another way are not reused
LABEL_SOURCE = "xml, else mask"


class DatasetLayoutError(ValueError):
    """A dataset folder that does not have the expected layout or content."""


def voc_palette() -> np.ndarray:
    """The PASCAL VOC colour map, ``[256, 3]`` uint8 (index 255 is the ignore colour)."""
    palette = np.zeros((256, 3), np.uint8)
    for index in range(256):
        c, r, g, b = index, 0, 0, 0
        for shift in range(7, -1, -1):
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette[index] = (r, g, b)
    return palette


def write_label_png(path: str | Path, mask: np.ndarray, palette: bool = True) -> None:
    """Save a ``[H, W]`` label map of integers in [0, 255] (class indices, 255 = ignore) as a
    VOC palette PNG (or a plain grey PNG, as SBD's ``SegmentationClassAug``); either reads
    back to the same indices. Other values (negative, above 255, fractional) would not read
    back as written: they raise ``ValueError``."""
    array = np.asarray(mask)
    if array.ndim != 2 or array.dtype.kind not in "iu":
        raise ValueError(f"mask must be a [H, W] array of integer class indices in [0, 255] "
                         f"(255 = ignore), got shape {array.shape} and dtype {array.dtype}; "
                         "pass integer labels, e.g. a uint8 or int64 array")
    if array.size and (int(array.min()) < 0 or int(array.max()) > 255):
        raise ValueError(f"mask must hold class indices in [0, 255] (255 = ignore) to be "
                         f"stored in a PNG, got values in [{int(array.min())}, "
                         f"{int(array.max())}]; map other labels into that range first")
    image = Image.fromarray(array.astype(np.uint8), mode="L" if not palette else "P")
    if palette:
        image.putpalette(voc_palette().reshape(-1).tolist())
    image.save(path)


def read_label_png(path: str | Path) -> np.ndarray:
    """``[H, W]`` uint8 class indices of a VOC/SBD label PNG (palette indices, not colours)."""
    try:
        with Image.open(path) as image:
            if image.mode not in ("P", "L"):
                raise DatasetLayoutError(
                    f"{path}: a label PNG must be a palette (P) or grey (L) image of class "
                    f"indices, got mode {image.mode}"
                )
            return np.array(image, dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as err:
        raise DatasetLayoutError(f"cannot read mask {path} ({err}); replace the file with "
                                 "a readable PNG of class indices") from None


def write_voc_annotation(path: str | Path, ident: str, mask: np.ndarray, names) -> None:
    """A VOC-style XML annotation with one object per connected class region's box
    (one box per class present in ``mask``, which is all image labels need)."""
    height, width = mask.shape
    root = ET.Element("annotation")
    ET.SubElement(root, "filename").text = f"{ident}.jpg"
    size = ET.SubElement(root, "size")
    for tag, value in (("width", width), ("height", height), ("depth", 3)):
        ET.SubElement(size, tag).text = str(value)
    for value in sorted(int(v) for v in np.unique(mask) if 0 < v < IGNORE_INDEX):
        ys, xs = np.nonzero(mask == value)
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = names[value - 1]
        ET.SubElement(obj, "difficult").text = "0"
        box = ET.SubElement(obj, "bndbox")
        for tag, v in (("xmin", xs.min() + 1), ("ymin", ys.min() + 1),
                       ("xmax", xs.max() + 1), ("ymax", ys.max() + 1)):
            ET.SubElement(box, tag).text = str(int(v))
    ET.ElementTree(root).write(path)


def labels_from_xml(path: Path, names) -> list[int]:
    """Indices of the classes named in a VOC XML annotation (difficult objects included,
    as the usual VOC label tables do)."""
    try:
        tree = ET.parse(path)
    except (ET.ParseError, OSError) as err:
        raise DatasetLayoutError(f"{path}: cannot read the XML annotation ({err})") from None
    index = {name: i for i, name in enumerate(names)}
    found = set()
    for obj in tree.getroot().iter("object"):
        name = (obj.findtext("name") or "").strip()
        if name not in index:
            raise DatasetLayoutError(
                f"{path}: object name {name!r} is not a class of this dataset ({', '.join(names)})"
            )
        found.add(index[name])
    return sorted(found)


def labels_from_mask(mask: np.ndarray, num_classes: int, path: Path) -> list[int]:
    values = [int(v) for v in np.unique(mask) if v != 0 and v != IGNORE_INDEX]
    if any(v > num_classes for v in values):
        raise DatasetLayoutError(
            f"{path}: mask has class index {max(values)} but the dataset has {num_classes} "
            "classes (indices 1..C, 0 background, 255 ignore)"
        )
    return [v - 1 for v in values]


def read_label_table(path: str | Path) -> dict[str, list[int]]:
    """``id -> class indices`` from a label table (``# classes: ...`` header, then lines
    ``<id>\\t<i> <j> ...``)."""
    table = {}
    for line in Path(path).read_text().splitlines():
        if line and not line.startswith("#"):
            ident, _, rest = line.partition("\t")
            table[ident] = [int(v) for v in rest.split()]
    return table


def write_label_table(path: str | Path, table: dict[str, list[int]], names) -> None:
    lines = [f"# classes: {' '.join(names)}"]
    lines += [f"{ident}\t{' '.join(map(str, table[ident]))}" for ident in sorted(table)]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(f"{path}.tmp{os.getpid()}")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)


#: written by ppc.data.synthetic.write_voc: the config and seed of a generated benchmark
GENERATED_MARKER = "synthetic.json"


def cache_dir() -> Path:
    return Path(os.environ.get("PPC_CACHE", Path.home() / ".cache" / "ppc"))


SHIPPED_TABLES = Path(__file__).with_name("labels")


class VOCSegmentation(Dataset):
    """A VOC-layout dataset split; samples are dicts like :class:`SyntheticSegmentation`'s.

    Args:
        root: the ``VOC2012`` folder (see the module docstring for the layout).
        split: ``"train"``, ``"val"``, ``"train_aug"`` or the name of any other list in
            ``ImageSets/Segmentation``.
        transform: applied to the whole sample dict (torchvision transforms v2).
        class_names: default ``classes.txt`` in ``root`` if present, else VOC's 20 classes.

    Each sample: ``id``, ``image`` (``tv_tensors.Image`` uint8 ``[3, H, W]``), ``label``
    (float ``[C]`` multi-hot), ``mask`` (``tv_tensors.Mask`` int64 ``[H, W]``, 255 = ignore;
    all 255 where the id has no mask) and ``has_mask``.
    """

    def __init__(self, root: str | Path, split: str = "train", transform=None,
                 class_names=None) -> None:
        if not isinstance(root, (str, os.PathLike)) or str(root) == "":
            # Path(None) is a TypeError and Path("") the working directory
            raise ValueError(f"VOCSegmentation root must be the path of the dataset folder (str "
                             f"or Path), got {root!r}; pass e.g. data_root='.../VOC2012': "
                             f"{LAYOUT}")
        require_transform("VOCSegmentation", transform)
        self.root = Path(root)
        self.split = split
        self.transform = transform
        if self.root.exists() and not self.root.is_dir():
            raise DatasetLayoutError(f"VOC root {self.root} is a file, not a folder: a dataset "
                                     f"root must be a folder in the VOC layout; {LAYOUT}")
        if not self.root.is_dir():
            raise DatasetLayoutError(f"VOC root {self.root} does not exist: {LAYOUT}")
        if not (self.root / "JPEGImages").is_dir():
            raise DatasetLayoutError(f"{self.root} has no JPEGImages/ folder: {LAYOUT}")
        if class_names is not None and (isinstance(class_names, (str, bytes)) or not all(
                isinstance(n, str) and n.strip() for n in class_names)):
            raise ValueError(f"VOCSegmentation class_names must be a list of the foreground "
                             f"class names (e.g. ppc.data.voc.VOC_CLASSES), got "
                             f"{repr(class_names)[:80]}")
        self.class_names = tuple(class_names or self._read_class_names())
        self.ids = self._read_ids(split)
        images = {entry.name for entry in os.scandir(self.root / "JPEGImages")}
        missing = [i for i in self.ids if f"{i}.jpg" not in images]
        if missing:
            raise DatasetLayoutError(
                f"{len(missing)} id(s) of split {split!r} have no image, e.g. "
                f"{self.root / 'JPEGImages' / (missing[0] + '.jpg')}: every listed id needs "
                "JPEGImages/<id>.jpg"
            )
        self.masks = {i: self._mask_path(i) for i in self.ids}
        self.labels = self._load_labels()

    # -- layout ---------------------------------------------------------------------------
    def _read_class_names(self) -> tuple[str, ...]:
        path = self.root / "classes.txt"
        if path.exists():
            names = tuple(n.strip() for n in self._read_text(path).splitlines() if n.strip())
            if not names:
                raise DatasetLayoutError(f"{path} is empty: list one class name per line")
            return names
        return VOC_CLASSES

    @staticmethod
    def _read_text(path: Path) -> str:
        try:
            return path.read_text()
        except (OSError, UnicodeDecodeError) as err:
            raise DatasetLayoutError(f"cannot read {path} ({err}); it must be a readable text "
                                     "file, one entry per line") from None

    def _read_list(self, path: Path) -> list[str]:
        """The ids of a split list (first word of each non-empty line); a list that names an
        id twice is refused: its image would be used twice per epoch."""
        first_line: dict[str, int] = {}  # id -> its line, in the list's order
        for number, line in enumerate(self._read_text(path).splitlines(), 1):
            if not line.strip():
                continue
            ident = line.split()[0]
            if ident in first_line:
                raise DatasetLayoutError(
                    f"split list {path} lists id {ident!r} twice (lines {first_line[ident]} and "
                    f"{number}); remove the duplicate lines so that each id appears once")
            first_line[ident] = number
        if not first_line:
            raise DatasetLayoutError(f"split list {path} lists no id: list one image id per "
                                     "line, or pick another split")
        return list(first_line)

    def _read_ids(self, split: str) -> list[str]:
        lists = self.root / "ImageSets" / "Segmentation"
        path = lists / f"{split}.txt"
        if path.exists():
            return self._read_list(path)
        if split == "train_aug":
            aug = self.root / "SegmentationClassAug"
            if not aug.is_dir():
                raise DatasetLayoutError(
                    f"split 'train_aug' needs SBD's augmented masks in {aug} (or a list "
                    f"{path}); this root has VOC only, so use split='train', or add SBD's "
                    "SegmentationClassAug (see the README)"
                )
            val_path = lists / "val.txt"
            if not val_path.exists():
                raise DatasetLayoutError(
                    f"split 'train_aug' is derived as the masks in {aug} minus the val "
                    f"ids, but {val_path} does not exist; add it (or a list {path})")
            val = set(self._read_list(val_path))
            return sorted(e.name[:-4] for e in os.scandir(aug)
                          if e.name.endswith(".png") and e.name[:-4] not in val)
        raise DatasetLayoutError(f"split list {path} does not exist: {LAYOUT}")

    def _mask_path(self, ident: str) -> Path | None:
        for folder in ("SegmentationClass", "SegmentationClassAug"):
            path = self.root / folder / f"{ident}.png"
            if path.exists():
                return path
        return None

    # -- labels ---------------------------------------------------------------------------
    def _table_paths(self) -> list[Path]:
        # a generated benchmark names its content (synthetic.json): a regenerated folder
        # at the same path must not reuse the labels of the old one
        marker = self.root / GENERATED_MARKER
        content = marker.read_text() if marker.is_file() else ""
        key = hashlib.sha256(f"{self.root.resolve()}|{'|'.join(self.class_names)}|{content}"
                             f"|{LABEL_SOURCE}".encode()).hexdigest()[:16]
        paths = [cache_dir() / "labels" / f"{key}.tsv"]
        if self.class_names == VOC_CLASSES:
            paths.insert(0, SHIPPED_TABLES / "voc2012.tsv")
        return paths

    def _load_labels(self) -> dict[str, list[int]]:
        table: dict[str, list[int]] = {}
        *shipped, cache = self._table_paths()
        for path in (*shipped, cache):
            if path.exists():
                table.update(read_label_table(path))
        unknown = [i for i in self.ids if i not in table]
        if unknown:
            derived = {i: self._derive_labels(i) for i in unknown}
            cached = read_label_table(cache) if cache.exists() else {}
            cached.update(derived)
            try:
                write_label_table(cache, cached, self.class_names)
            except OSError:
                pass  # a read-only cache only costs the derivation next time
            table.update(derived)
        return {i: table[i] for i in self.ids}

    def _derive_labels(self, ident: str) -> list[int]:
        xml = self.root / "Annotations" / f"{ident}.xml"
        if xml.exists():
            return labels_from_xml(xml, self.class_names)
        mask_path = self.masks[ident]
        if mask_path is None:
            raise DatasetLayoutError(
                f"no labels for id {ident!r}: neither {xml} nor a mask (SegmentationClass/ "
                "or SegmentationClassAug/)"
            )
        return labels_from_mask(read_label_png(mask_path), len(self.class_names), mask_path)

    # -- samples --------------------------------------------------------------------------
    def label_vector(self, ident: str) -> torch.Tensor:
        vector = torch.zeros(len(self.class_names))
        vector[self.labels[ident]] = 1.0
        return vector

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict:
        try:
            ident = self.ids[index]
        except IndexError:
            raise index_error(index, len(self.ids), f"split {self.split!r} of {self.root}") \
                from None
        path = self.root / "JPEGImages" / f"{ident}.jpg"
        try:
            with Image.open(path) as image:
                array = np.array(image.convert("RGB"))
        except (UnidentifiedImageError, OSError) as err:
            raise DatasetLayoutError(f"cannot read image {path}: {err}") from None
        mask_path = self.masks[ident]
        if mask_path is not None:
            mask = torch.from_numpy(read_label_png(mask_path)).long()
            if tuple(mask.shape) != array.shape[:2]:
                raise DatasetLayoutError(
                    f"{mask_path} is {tuple(mask.shape)} but its image is {array.shape[:2]}")
        else:
            mask = torch.full(array.shape[:2], IGNORE_INDEX, dtype=torch.long)
        sample = {
            "id": ident,
            "image": tv_tensors.Image(torch.from_numpy(array).permute(2, 0, 1)),
            "label": self.label_vector(ident),
            "mask": tv_tensors.Mask(mask),
            "has_mask": mask_path is not None,
        }
        return self.transform(sample) if self.transform is not None else sample


def main(argv=None) -> int:
    """``python -m ppc.data.voc ROOT [--splits ...] [--out FILE]``: write the label table of
    a VOC-layout dataset (default: the table shipped with ppc for VOC 2012, written only
    from VOC's own classes and both default splits)."""
    from .._checks import check_output
    from ..cli import OneLineParser  # one-line errors, like python -m ppc

    shipped = SHIPPED_TABLES / "voc2012.tsv"
    parser = OneLineParser(prog="python -m ppc.data.voc", description=main.__doc__)
    parser.add_argument("root", help="the VOC2012 folder")
    parser.add_argument("--splits", nargs="+", default=["train_aug", "val"],
                        help="splits whose ids the table lists (default: train_aug val)")
    parser.add_argument("--out", help=f"the table to write (default: {shipped})")
    args = parser.parse_args(argv)
    try:
        out = check_output(args.out if args.out is not None else shipped, "--out",
                           "/tmp/labels.tsv")
        table: dict[str, list[int]] = {}
        for split in args.splits:
            dataset = VOCSegmentation(args.root, split)
            table.update(dataset.labels)
        if args.out is None and (dataset.class_names != VOC_CLASSES
                                 or sorted(args.splits) != ["train_aug", "val"]):
            raise ValueError(f"the table shipped with ppc ({shipped}) lists VOC 2012's "
                             "train_aug and val with VOC's 20 classes; for another dataset "
                             "or other splits pass --out")
    except ValueError as err:  # DatasetLayoutError too
        parser.error(str(err))
    write_label_table(out, table, dataset.class_names)
    print(f"{len(table)} ids -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
