import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)


@pytest.fixture
def private_label_cache(tmp_path, monkeypatch):
    """ppc's label cache (``$PPC_CACHE``) in the test's own ``tmp_path / "cache"``."""
    monkeypatch.setenv("PPC_CACHE", str(tmp_path / "cache"))
