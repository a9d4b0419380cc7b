import matplotlib
import pytest
import torch

from ppc.plotting import show_maps

matplotlib.use("Agg")


def test_show_maps_titles_every_map_and_refuses_a_count_mismatch():
    maps = [torch.full((4, 4), float(i)) for i in range(3)]
    fig = show_maps(maps, ["a", "b", "c"], cols=2)
    titled = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titled == ["a", "b", "c"]
    with pytest.raises(ValueError, match="3 maps but 2 titles"):
        show_maps(maps, ["a", "b"])
