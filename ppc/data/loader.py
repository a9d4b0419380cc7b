"""Deterministic data loading.

:class:`SeededDataset` makes every sample's random augmentation a function of
``(seed, epoch, index)`` only: the same sample gets the same crop and flip whatever the
number of workers, the order of loading, or a resume in the middle of an epoch.
:func:`make_loader` adds a seeded shuffle, so a whole run is reproducible from its seed.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset


def default_num_workers() -> int:
    """The CPU cores this process may use (``os.sched_getaffinity``), at most 8."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return min(cores, 8)


class SeededDataset(Dataset):
    """Wraps a dataset whose ``transform`` draws from torch's global RNG; each
    ``__getitem__`` runs with that RNG (and Python's and NumPy's) seeded from
    ``(seed, epoch, index)``, restoring the caller's RNG state afterwards. Call
    :meth:`set_epoch` at the start of every epoch for new augmentations."""

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset, self.seed, self.epoch = dataset, int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        sample_seed = np.random.SeedSequence([self.seed, self.epoch, int(index)]).generate_state(1)
        sample_seed = int(sample_seed[0])
        py_state, np_state = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            # the CPU generator only: torch.manual_seed would also reseed every GPU's,
            # which fork_rng(devices=[]) does not restore (the caller's dropout stream)
            torch.default_generator.manual_seed(sample_seed)
            random.seed(sample_seed)
            np.random.seed(sample_seed)
            try:
                return self.dataset[index]
            finally:
                random.setstate(py_state)
                np.random.set_state(np_state)

    def __getattr__(self, name):  # class_names, ids, ... of the wrapped dataset
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)


def make_loader(dataset: Dataset, batch_size: int, *, seed: int = 0, shuffle: bool = True,
                drop_last: bool = True, num_workers: int | None = None,
                pin_memory: bool = False) -> DataLoader:
    """A DataLoader whose batches are a function of ``seed`` (and the epoch set on a
    :class:`SeededDataset`): shuffling from a seeded ``torch.Generator``, per-sample seeded
    augmentation, ``num_workers`` defaulting to :func:`default_num_workers`."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not isinstance(dataset, SeededDataset):
        dataset = SeededDataset(dataset, seed)
    workers = default_num_workers() if num_workers is None else num_workers
    generator = torch.Generator().manual_seed(int(seed))
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
        num_workers=workers, generator=generator, pin_memory=pin_memory,
        persistent_workers=False,
    )
