import matplotlib
import pandas as pd
import pytest
import torch

from ppc.plotting import mask_to_rgb, plot_curves, show_maps, show_samples, to_rgb

matplotlib.use("Agg")


def test_show_maps_titles_every_map_and_refuses_a_count_mismatch():
    maps = [torch.full((4, 4), float(i)) for i in range(3)]
    fig = show_maps(maps, ["a", "b", "c"], cols=2)
    titled = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titled == ["a", "b", "c"]
    with pytest.raises(ValueError, match="3 maps but 2 titles"):
        show_maps(maps, ["a", "b"])


def test_show_maps_refuses_no_maps_non_2d_maps_and_a_bad_column_count():
    with pytest.raises(ValueError, match="no maps to show"):
        show_maps([], [])
    with pytest.raises(ValueError, match=r"2-D \[H, W\], got shape \(2, 4, 4\)"):
        show_maps([torch.zeros(2, 4, 4)], ["a"])
    with pytest.raises(ValueError, match="cols must be an int >= 1"):
        show_maps([torch.zeros(4, 4)], ["a"], cols=0)


def test_to_rgb_and_mask_to_rgb_name_the_expected_layout():
    image = torch.zeros(3, 5, 7, dtype=torch.uint8)
    assert to_rgb(image).shape == (5, 7, 3)
    with pytest.raises(ValueError, match=r"channels last: pass image.permute\(2, 0, 1\)"):
        to_rgb(image.permute(1, 2, 0))
    with pytest.raises(ValueError, match=r"\[3, H, W\], got shape \(5, 7\)"):
        to_rgb(torch.zeros(5, 7))
    colours = mask_to_rgb(torch.tensor([[0, 1], [255, 2]]))
    assert colours.shape == (2, 2, 3) and colours[0, 0].tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match=r"label map \[H, W\], got shape \(1, 2, 2\)"):
        mask_to_rgb(torch.zeros(1, 2, 2, dtype=torch.long))


def test_show_samples_draws_one_column_per_sample_and_checks_the_counts():
    samples = [{"image": torch.zeros(3, 4, 4, dtype=torch.uint8),
                "label": torch.tensor([0.0, 1.0]), "mask": torch.zeros(4, 4, dtype=torch.long)}
               for _ in range(2)]
    fig = show_samples(samples, ["a", "b"], cams=[torch.rand(2, 4, 4)] * 2)
    assert len(fig.axes) == 3 * 2 and fig.axes[0].get_title() == "b"
    with pytest.raises(ValueError, match="no samples to show"):
        show_samples([], ["a", "b"])
    with pytest.raises(ValueError, match="2 samples but 1 pseudo"):
        show_samples(samples, ["a", "b"], pseudo=[torch.zeros(4, 4)])


def test_plot_curves_names_a_missing_column():
    frame = pd.DataFrame({"threshold": [0.1, 0.2], "mIoU (%)": [30.0, 35.0]})
    fig = plot_curves(frame, "threshold", "mIoU (%)")
    assert fig.axes[0].get_xlabel() == "threshold"
    with pytest.raises(ValueError, match="no column 'miou'.*'mIoU \\(%\\)'"):
        plot_curves(frame, "threshold", "miou")
