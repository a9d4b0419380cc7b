import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import tv_tensors

from ppc.data import (
    VOC_CLASSES,
    AugmentConfig,
    DatasetLayoutError,
    SeededDataset,
    SyntheticConfig,
    SyntheticSegmentation,
    VOCSegmentation,
    eval_transform,
    generate,
    make_loader,
    multiscale_inputs,
    read_label_png,
    train_transform,
    ensure_voc,
    voc_palette,
    write_label_png,
    write_voc,
)
from ppc.data.synthetic import image_ids
from ppc.data.voc import cache_dir

SMALL = SyntheticConfig(num_train_aug=24, num_train=8, num_val=6)


# ppc's label cache in each test's own folder: nothing read from or left in ~/.cache/ppc
pytestmark = pytest.mark.usefixtures("private_label_cache")


@pytest.fixture
def voc_root(tmp_path):
    return write_voc(tmp_path / "VOC2012", SMALL, seed=3)


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_synthetic_is_byte_identical_for_a_seed_and_differs_across_seeds(tmp_path):
    a, b, c = (generate(SMALL, "train_aug", seed) for seed in (0, 0, 1))
    for field in ("images", "masks", "labels"):
        assert np.array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.images, c.images)
    first, second = write_voc(tmp_path / "x", SMALL, 5), write_voc(tmp_path / "y", SMALL, 5)
    assert _digest(first) == _digest(second)
    assert _digest(write_voc(tmp_path / "z", SMALL, 6)) != _digest(tmp_path / "x")


def test_ensure_voc_reuses_rewrites_or_refuses(tmp_path):
    root = tmp_path / "bench"
    ensure_voc(root, SMALL, 3)
    stamp = (root / "JPEGImages" / "syn_000000.jpg").stat().st_mtime_ns
    labels = VOCSegmentation(root, "train_aug").labels
    assert ensure_voc(root, SMALL, 3) == root  # the same benchmark: reused as it is
    assert (root / "JPEGImages" / "syn_000000.jpg").stat().st_mtime_ns == stamp
    # another benchmark at the same path: rewritten, and its labels are not the cached ones
    other = SMALL.replace(num_train_aug=20, num_train=5, objects_per_image=(2, 3))
    ensure_voc(root, other, 3)
    fresh = generate(other, "train_aug", 3)
    assert _digest(root) == _digest(write_voc(tmp_path / "direct", other, 3))
    read = VOCSegmentation(root, "train_aug")
    assert read.ids == fresh.ids
    assert [list(read.labels[i]) for i in read.ids] == [
        np.flatnonzero(row).tolist() for row in fresh.labels]
    assert any(list(read.labels[i]) != list(labels[i]) for i in read.ids)
    # a folder that is not ours is never overwritten
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="has no synthetic.json"):
        ensure_voc(foreign, SMALL, 3)
    assert (foreign / "notes.txt").read_text() == "mine"


def test_synthetic_content_is_consistent():
    data = generate(SMALL, "val", seed=2)
    assert data.images.shape == (6, 64, 64, 3) and data.images.dtype == np.uint8
    for mask, label in zip(data.masks, data.labels, strict=True):
        present = {int(v) - 1 for v in np.unique(mask) if v}
        assert present == set(np.flatnonzero(label))
        assert present  # every image has an object
    # train is the start of train_aug, val is disjoint from it; image i does not depend
    # on how many images the split has
    assert image_ids(SMALL, "train") == image_ids(SMALL, "train_aug")[:8]
    assert not set(image_ids(SMALL, "val")) & set(image_ids(SMALL, "train_aug"))
    bigger = generate(SMALL.replace(num_train_aug=30), "train_aug", seed=2)
    assert np.array_equal(bigger.images[:24], generate(SMALL, "train_aug", seed=2).images)


def test_synthetic_parts_are_small_and_bodies_large():
    data = generate(SyntheticConfig(num_train_aug=200, num_train=0, num_val=0), seed=0)
    fg = (data.masks > 0).mean()
    part_area = np.pi * SyntheticConfig().part_radius ** 2
    body_area = np.pi * np.mean(SyntheticConfig().body_radius) ** 2
    assert 0.05 < fg < 0.4 and part_area < 0.1 * body_area


def test_synthetic_regions_mark_bodies_and_parts_without_changing_the_images():
    from ppc.data.synthetic import BODY, PART, palettes, render_image

    config = SyntheticConfig(num_train_aug=40, num_train=0, num_val=0)
    data = generate(config, seed=4)
    assert data.regions.shape == data.masks.shape and data.regions.dtype == np.uint8
    assert np.array_equal(data.regions > 0, data.masks > 0)  # objects only
    _, parts = palettes(config)
    for image, mask, regions in zip(data.images, data.masks, data.regions, strict=True):
        for c in {int(v) - 1 for v in np.unique(mask) if v}:
            inside = (regions == PART) & (mask == c + 1)
            if inside.sum() >= 5:  # visible parts carry their class's unique colour
                colour = image[inside].astype(float).mean(0) / 255
                assert np.abs(colour - parts[c]).max() < 0.15
        assert (regions == BODY).sum() > (regions == PART).sum()
    # the regions are drawn from nothing: the images are those without them
    children = np.random.SeedSequence(4).spawn(3)
    body, part = palettes(config)
    for i, child in enumerate(children):
        image, mask, _ = render_image(config, np.random.default_rng(child), body, part)
        assert np.array_equal(image, data.images[i]) and np.array_equal(mask, data.masks[i])


@pytest.mark.parametrize("bad", [
    dict(body_groups=4), dict(objects_per_image=(0, 2)), dict(body_radius=(8, 40)),
    dict(part_radius=9), dict(num_train=50, num_train_aug=10), dict(class_names=("a",)),
])
def test_synthetic_config_rejects_bad_values(bad):
    with pytest.raises(ValueError, match="SyntheticConfig"):
        SyntheticConfig(**bad)


def test_voc_layout_reads_back_what_was_written(voc_root):
    assert (voc_root / "classes.txt").read_text().split() == list(SMALL.names)
    for split in ("train", "val", "train_aug"):
        ds = VOCSegmentation(voc_root, split)
        data = generate(SMALL, "train_aug" if split == "train" else split, seed=3)
        assert ds.ids == image_ids(SMALL, split)
        for i, ident in enumerate(ds.ids):
            sample = ds[i]
            j = data.ids.index(ident)
            assert sample["id"] == ident and sample["has_mask"]
            assert torch.equal(sample["label"], torch.from_numpy(data.labels[j]))
            assert torch.equal(sample["mask"], torch.from_numpy(data.masks[j]).long())
            assert isinstance(sample["image"], tv_tensors.Image)
            jpeg_error = (sample["image"].permute(1, 2, 0).float() - torch.from_numpy(
                data.images[j]).float()).abs().mean()
            assert jpeg_error < 6
    palette = Image.open(voc_root / "SegmentationClass" / f"{ds.ids[0]}.png")
    assert palette.mode == "P" and palette.getpalette()[3:6] == [128, 0, 0]


def test_labels_come_from_xml_without_masks_and_are_cached_outside_the_data(voc_root, tmp_path):
    shutil.rmtree(voc_root / "SegmentationClass")
    shutil.rmtree(voc_root / "SegmentationClassAug")
    before = _digest(voc_root)
    ds = VOCSegmentation(voc_root, "train")
    data = generate(SMALL, "train_aug", seed=3)
    for i in range(len(ds)):
        assert torch.equal(ds[i]["label"], torch.from_numpy(data.labels[i]))
        assert not ds[i]["has_mask"] and torch.all(ds[i]["mask"] == 255)
    assert _digest(voc_root) == before  # nothing written into the data folder
    tables = list((tmp_path / "cache" / "labels").glob("*.tsv"))
    assert len(tables) == 1 and "syn_000000" in tables[0].read_text()
    # the cached table is used: remove the XML and the labels are still known
    shutil.rmtree(voc_root / "Annotations")
    again = VOCSegmentation(voc_root, "train")
    assert torch.equal(again[0]["label"], ds[0]["label"])


def test_voc_classes_are_the_default(voc_root):
    (voc_root / "classes.txt").unlink()
    shutil.rmtree(voc_root / "Annotations")  # they name the synthetic classes
    ds = VOCSegmentation(voc_root, "val", class_names=None)
    assert ds.class_names == VOC_CLASSES and ds[0]["label"].shape == (20,)


def test_train_aug_without_sbd_is_refused_with_a_hint(voc_root):
    shutil.rmtree(voc_root / "SegmentationClassAug")
    (voc_root / "ImageSets/Segmentation/train_aug.txt").unlink()
    assert len(VOCSegmentation(voc_root, "train")) == 8  # VOC alone serves train
    with pytest.raises(DatasetLayoutError, match=r"train_aug.*SegmentationClassAug.*split='train'"):
        VOCSegmentation(voc_root, "train_aug")


def test_train_aug_is_derived_from_sbd_masks_minus_val(voc_root):
    (voc_root / "ImageSets/Segmentation/train_aug.txt").unlink()
    assert VOCSegmentation(voc_root, "train_aug").ids == image_ids(SMALL, "train_aug")


def test_bad_layouts_give_one_clear_error(voc_root, tmp_path):
    with pytest.raises(DatasetLayoutError, match=r"VOC root .*nowhere does not exist.*JPEGImages"):
        VOCSegmentation(tmp_path / "nowhere")
    with pytest.raises(DatasetLayoutError, match=r"split list .*test.txt does not exist"):
        VOCSegmentation(voc_root, "test")
    (voc_root / "JPEGImages" / "syn_000003.jpg").unlink()
    msg = r"1 id\(s\) of split 'train' have no image.*syn_000003.jpg"
    with pytest.raises(DatasetLayoutError, match=msg):
        VOCSegmentation(voc_root, "train")
    (voc_root / "JPEGImages" / "syn_000003.jpg").write_bytes(b"not a jpeg")
    ds = VOCSegmentation(voc_root, "train")
    with pytest.raises(DatasetLayoutError, match=r"cannot read image .*syn_000003.jpg"):
        ds[3]
    (voc_root / "classes.txt").write_text("only\n")
    with pytest.raises(DatasetLayoutError, match=r"object name 'shape\d' is not a class"):
        VOCSegmentation(voc_root, "val")
    shutil.rmtree(voc_root / "Annotations")  # labels from the masks
    with pytest.raises(DatasetLayoutError, match="mask has class index"):
        VOCSegmentation(voc_root, "val")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetLayoutError, match="has no JPEGImages"):
        VOCSegmentation(empty)


def test_unknown_class_in_xml(voc_root):
    shutil.rmtree(voc_root / "SegmentationClass")
    shutil.rmtree(voc_root / "SegmentationClassAug")
    xml = voc_root / "Annotations" / "syn_000001.xml"
    xml.write_text(xml.read_text().replace("<name>shape", "<name>zebra", 1))
    with pytest.raises(DatasetLayoutError, match=r"syn_000001.xml: object name 'zebra\d'"):
        VOCSegmentation(voc_root, "train")


def test_label_png_round_trip(tmp_path):
    mask = np.array([[0, 1, 20], [255, 3, 0]], np.uint8)
    for palette in (True, False):
        write_label_png(tmp_path / "m.png", mask, palette=palette)
        assert np.array_equal(read_label_png(tmp_path / "m.png"), mask)
    assert voc_palette()[1].tolist() == [128, 0, 0]
    assert voc_palette()[255].tolist() == [224, 224, 192]


def _probe_sample(size=40):
    """An image whose first channel encodes its mask, to check they move together."""
    mask = torch.randint(0, 7, (size, size + 10))
    image = torch.stack([mask * 30, mask * 0 + 128, mask * 0]).to(torch.uint8)
    return {"id": "p", "image": tv_tensors.Image(image), "mask": tv_tensors.Mask(mask),
            "label": torch.zeros(6), "has_mask": True}


def test_train_transform_moves_image_and_mask_together():
    cfg = AugmentConfig(resize_long=None, crop=64, jitter=None, mean=(0, 0, 0), std=(1, 1, 1))
    transform = train_transform(cfg)
    for seed in range(5):
        torch.manual_seed(seed)
        out = transform(_probe_sample())
        assert out["image"].shape == (3, 64, 64) and out["mask"].shape == (64, 64)
        padded = out["mask"] == 255
        assert padded.any()  # 40x50 padded to 64x64
        assert torch.all(out["image"][:, padded] == 0)
        code = (out["image"][0] * 255 / 30).round().long()
        assert torch.equal(code[~padded], out["mask"][~padded])


def test_train_transform_resizes_the_long_side_and_normalises():
    torch.manual_seed(0)
    cfg = AugmentConfig(resize_long=(80, 90), crop=32, jitter=(0.3, 0.3, 0.3, 0.1))
    out = train_transform(cfg)(_probe_sample())
    assert out["image"].dtype == torch.float32 and out["image"].shape == (3, 32, 32)
    assert set(out["mask"].unique().tolist()) <= set(range(7))
    resize = train_transform(AugmentConfig(resize_long=(80, 90), crop=200, jitter=None))
    for seed in range(5):
        torch.manual_seed(seed)
        mask = resize(_probe_sample())["mask"]
        valid_cols = (mask != 255).any(0).sum().item()
        assert 80 <= valid_cols <= 90  # the long side (width 50) became 80..90
    with pytest.raises(ValueError, match="unknown augmentation preset"):
        train_transform("imagenet")


def test_eval_transform_and_multiscale_inputs():
    sample = _probe_sample()
    out = eval_transform("synthetic")(sample)
    assert out["image"].shape == (3, 40, 50) and torch.equal(out["mask"], sample["mask"])
    inputs = multiscale_inputs(out["image"])
    assert [tuple(x.shape[-2:]) for x in inputs] == [
        (20, 25), (20, 25), (40, 50), (40, 50), (60, 75), (60, 75), (80, 100), (80, 100)]
    assert torch.equal(inputs[3], inputs[2].flip(-1))
    assert torch.allclose(inputs[2][0], out["image"])
    with pytest.raises(ValueError, match=r"image must have shape \[3, H, W\]"):
        multiscale_inputs(out["image"][0])


def test_loader_is_deterministic_across_workers_and_epochs(monkeypatch):
    ds = SyntheticSegmentation(SMALL, "train_aug", seed=0, transform=train_transform("synthetic"))
    first = [b["image"] for b in make_loader(ds, 4, seed=7, num_workers=0)]
    again = [b["image"] for b in make_loader(ds, 4, seed=7, num_workers=2)]
    other = [b["image"] for b in make_loader(ds, 4, seed=8, num_workers=0)]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0], other[0])
    seeded = SeededDataset(ds, seed=7)
    x0 = seeded[5]["image"]
    assert torch.equal(seeded[5]["image"], x0)
    seeded.set_epoch(1)
    assert not torch.equal(seeded[5]["image"], x0)
    state = torch.get_rng_state()
    seeded[0]
    assert torch.equal(torch.get_rng_state(), state)  # the caller's RNG is untouched
    reseeded = []  # and no GPU generator is reseeded (fork_rng would not restore it)
    monkeypatch.setattr(torch.cuda, "manual_seed_all", reseeded.append)
    monkeypatch.setattr(torch.cuda, "manual_seed", reseeded.append)
    seeded[1]
    assert reseeded == []
    assert seeded.class_names == SMALL.names
    with pytest.raises(ValueError, match="batch_size"):
        make_loader(ds, 0)


def test_label_table_command_writes_a_table_the_reader_uses(voc_root, tmp_path):
    from ppc.data.voc import main, read_label_table

    out = tmp_path / "table.tsv"
    assert main([str(voc_root), "--out", str(out)]) == 0
    table = read_label_table(out)
    assert len(table) == 24 + 6 and out.read_text().startswith("# classes: shape0")
    data = generate(SMALL, "val", seed=3)
    assert table[data.ids[0]] == np.flatnonzero(data.labels[0]).tolist()


def test_label_table_command_errors_are_one_line_and_spare_the_shipped_table(
        voc_root, tmp_path, capsys):
    from ppc.data.voc import SHIPPED_TABLES, main

    shipped = SHIPPED_TABLES / "voc2012.tsv"
    before = shipped.read_bytes() if shipped.exists() else None
    (tmp_path / "a_folder").mkdir()
    for argv, message in (
            ([str(voc_root)], "the table shipped with ppc"),  # the synthetic classes
            ([str(tmp_path / "nope"), "--out", str(tmp_path / "t.tsv")], "does not exist"),
            ([str(voc_root), "--splits", "bogus", "--out", str(tmp_path / "t.tsv")],
             "bogus.txt does not exist"),
            ([str(voc_root), "--out", str(tmp_path / "a_folder")], "is a folder"),
            ([str(voc_root), "--out", ""], "--out must be the path of the file to write")):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and message in err
        assert len(err.strip().splitlines()) == 1, err
    assert (shipped.read_bytes() if shipped.exists() else None) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["VOC2012", "a_folder", "cache"]


def test_labels_come_from_the_xml_where_it_exists_else_from_the_mask(voc_root):
    # VOC masks may leave a small object void (255): its class is still an image label
    # in the XML, as in the official cls_labels.npy
    ident = VOCSegmentation(voc_root, "train").ids[0]
    mask_path = voc_root / "SegmentationClass" / f"{ident}.png"
    mask = read_label_png(mask_path)
    voided = int(mask[(mask > 0) & (mask < 255)][0])
    write_label_png(mask_path, np.where(mask == voided, 255, mask).astype(np.uint8))
    shutil.rmtree(cache_dir(), ignore_errors=True)  # labels of known ids are cached
    with_xml = VOCSegmentation(voc_root, "train")
    assert with_xml[0]["label"][voided - 1] == 1
    (voc_root / "Annotations" / f"{ident}.xml").unlink()
    shutil.rmtree(cache_dir())  # labels of known ids are cached
    from_mask = VOCSegmentation(voc_root, "train")
    assert from_mask[0]["label"][voided - 1] == 0
    assert torch.equal(from_mask[1]["label"], with_xml[1]["label"])


def test_unreadable_mask_and_missing_val_list_are_layout_errors(voc_root):
    (voc_root / "ImageSets/Segmentation/train_aug.txt").unlink()
    (voc_root / "ImageSets/Segmentation/val.txt").rename(voc_root / "val.txt.bak")
    with pytest.raises(DatasetLayoutError, match=r"train_aug.*minus the val ids.*val.txt "
                                                 r"does not exist"):
        VOCSegmentation(voc_root, "train_aug")
    (voc_root / "val.txt.bak").rename(voc_root / "ImageSets/Segmentation/val.txt")
    ds = VOCSegmentation(voc_root, "train")
    (voc_root / "SegmentationClass" / f"{ds.ids[1]}.png").write_bytes(b"not a png")
    with pytest.raises(DatasetLayoutError, match=rf"cannot read mask .*{ds.ids[1]}.png"):
        ds[1]


@pytest.mark.parametrize("bad, match", [
    (dict(pixel_noise=-1.0), "pixel_noise must be in \\[0, 1\\]"),
    (dict(colour_jitter=-1.0), "colour_jitter must be in \\[0, 1\\]"),
    (dict(pixel_noise=float("nan")), "pixel_noise must be finite"),
    (dict(colour_jitter=float("inf")), "colour_jitter must be finite"),
    (dict(part_offset=float("nan")), "part_offset must be finite"),
    (dict(body_radius=(8.0, float("nan"))), "body_radius must be finite"),
    (dict(decoy_fraction=float("-inf")), "decoy_fraction must be finite"),
    (dict(palette_seed=-1), r"palette_seed must be in \[0, 2\*\*32\)"),
    (dict(palette_seed=2**32), r"palette_seed must be in \[0, 2\*\*32\)"),
    (dict(num_classes=256, body_groups=1), r"num_classes must be in \[1, 254\]"),
    (dict(clutter_blobs=(-1, 2)), "clutter_blobs must be"),
    (dict(num_val=-1), "need 0 <= num_train <= num_train_aug and num_val >= 0"),
    (dict(num_classes=2, class_names=("a", "a")), "class_names must be distinct"),
    (dict(num_classes=2, class_names=("a", " b")), "class_names must be non-empty"),
])
def test_synthetic_config_rejects_non_finite_and_out_of_range_knobs(bad, match):
    with pytest.raises(ValueError, match=f"SyntheticConfig: {match}"):
        SyntheticConfig(**bad)


def test_synthetic_seeds_roots_and_quality_are_checked(tmp_path):
    for seed in (-1, 2**32, 1.5, True):
        with pytest.raises(ValueError, match=r"SyntheticSegmentation: seed must be .*2\*\*32"):
            SyntheticSegmentation(SMALL, seed=seed)
    with pytest.raises(ValueError, match=r"generate: seed must be an int in .*, got -1"):
        generate(SMALL, "val", seed=-1)
    with pytest.raises(ValueError, match="config must be a SyntheticConfig"):
        SyntheticSegmentation({})
    afile = tmp_path / "afile"
    afile.write_text("x")
    for write in (write_voc, ensure_voc):
        with pytest.raises(ValueError, match=rf"{write.__name__}: root .*afile is a file"):
            write(afile, SMALL)
    with pytest.raises(ValueError, match="write_voc: root must be the path of the folder"):
        write_voc(None, SMALL)
    for quality in (0, 101, 500, 95.0):
        with pytest.raises(ValueError, match=r"jpeg_quality must be an int in \[1, 100\]"):
            write_voc(tmp_path / "q", SMALL, jpeg_quality=quality)
    assert not (tmp_path / "q").exists()  # refused before anything is written
    with pytest.raises(ValueError, match="ensure_voc: seed"):
        ensure_voc(tmp_path / "q", SMALL, seed=-1)


@pytest.mark.parametrize("split", ["train", "train_aug"])
def test_split_list_with_a_duplicate_id_is_refused(voc_root, split):
    path = voc_root / "ImageSets/Segmentation" / f"{split}.txt"
    ids = path.read_text().split()
    path.write_text("\n".join([*ids, ids[2]]) + "\n")
    msg = rf"split list .*{split}.txt lists id '{ids[2]}' twice \(lines 3 and {len(ids) + 1}\)"
    with pytest.raises(DatasetLayoutError, match=msg):
        VOCSegmentation(voc_root, split)


def test_voc_root_that_is_a_file_or_not_a_path(tmp_path):
    afile = tmp_path / "VOC2012"
    afile.write_text("x")
    with pytest.raises(DatasetLayoutError, match=r"VOC2012 is a file, not a folder: a dataset "
                                                 r"root must be a folder in the VOC layout"):
        VOCSegmentation(afile)
    for root in (None, ""):
        with pytest.raises(ValueError, match="VOCSegmentation root must be the path"):
            VOCSegmentation(root)


def test_make_loader_rejects_bad_arguments():
    ds = SyntheticSegmentation(SMALL, "val", seed=0)  # 6 images
    for batch_size in (2.5, "2", True, 0):
        with pytest.raises(ValueError, match="batch_size must be an int >= 1"):
            make_loader(ds, batch_size, num_workers=0)
    with pytest.raises(ValueError, match=r"num_workers must be None .*-1 means one per core on "
                                         r"the command line only"):
        make_loader(ds, 2, num_workers=-1)
    for seed in (2**70, -1, 1.5):
        with pytest.raises(ValueError, match=r"make_loader: seed must be an int in \[0, 2\*\*64\)"):
            make_loader(ds, 2, seed=seed, num_workers=0)
    with pytest.raises(ValueError, match="SeededDataset: seed must be"):
        SeededDataset(ds, -1)
    with pytest.raises(ValueError, match="epoch must be an int >= 0"):
        SeededDataset(ds, 0).set_epoch(-1)
    with pytest.raises(ValueError, match="drop_last must be True or False"):
        make_loader(ds, 2, drop_last="no", num_workers=0)
    with pytest.raises(ValueError, match=r"has 6 items, fewer than one batch of 8.*lower "
                                         r"batch_size or use more data"):
        make_loader(ds, 8, num_workers=0)
    assert len(list(make_loader(ds, 8, drop_last=False, num_workers=0))) == 1
    assert len(make_loader(ds, 2, seed=2**64 - 1, num_workers=0)) == 3
