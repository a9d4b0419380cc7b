"""Deterministic data loading.

:class:`SeededDataset` makes every sample's random augmentation a function of
``(seed, epoch, index)`` only: the same sample gets the same crop and flip whatever the
number of workers, the order of loading, or a resume in the middle of an epoch.
:func:`make_loader` adds a seeded shuffle, so a whole run is reproducible from its seed.
"""

from __future__ import annotations

import operator
import os
import random

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .._checks import check_seed, index_error, is_int, require_int


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
        self.dataset, self.seed, self.epoch = dataset, check_seed(seed, "SeededDataset", bits=64), 0

    def set_epoch(self, epoch: int) -> None:
        if not is_int(epoch) or epoch < 0:
            raise ValueError(f"SeededDataset.set_epoch: epoch must be an int >= 0, got {epoch!r}; "
                             "pass the 0-based epoch number")
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        try:
            index = operator.index(index)
        except TypeError:
            raise TypeError(f"SeededDataset index must be an int, got {index!r} "
                            f"({type(index).__name__})") from None
        size = len(self.dataset)
        if not -size <= index < size:
            raise index_error(index, size, "the dataset")
        index %= size  # a negative index: the same item, seed and augmentation as its positive
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
    augmentation, ``num_workers`` defaulting to :func:`default_num_workers`.

    ``batch_size``: int >= 1; ``seed``: int in [0, 2**64); ``num_workers``: None (one per
    core, what ``-1`` means on the command line) or an int >= 0. With ``drop_last`` a
    dataset smaller than one batch is refused rather than yielding no batch."""
    batch_size = require_int("batch_size", batch_size)
    seed = check_seed(seed, "make_loader", bits=64)
    if num_workers is not None and (not is_int(num_workers) or num_workers < 0):
        raise ValueError(f"num_workers must be None (one per core, up to 8) or an int >= 0 (0: "
                         f"load in the main process), got {num_workers!r}; -1 means one per "
                         "core on the command line only, pass None here")
    for name, flag in (("shuffle", shuffle), ("drop_last", drop_last),
                       ("pin_memory", pin_memory)):
        if not isinstance(flag, (bool, np.bool_)):
            raise ValueError(f"{name} must be True or False, got {flag!r} "
                             f"({type(flag).__name__})")
    try:
        size = len(dataset)
    except TypeError:
        raise ValueError(f"dataset must be a map-style dataset with __len__ and __getitem__, "
                         f"got {type(dataset).__name__}, which has no length") from None
    if size == 0:
        raise ValueError("dataset is empty (0 items): the loader would yield no batch; check "
                         "the split and the data folder")
    if drop_last and size < batch_size:
        raise ValueError(f"the dataset has {size} items, fewer than one batch of {batch_size}, "
                         "so drop_last=True would yield no batch; lower batch_size or use "
                         "more data (or drop_last=False)")
    if not isinstance(dataset, SeededDataset):
        dataset = SeededDataset(dataset, seed)
    workers = default_num_workers() if num_workers is None else int(num_workers)
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
        num_workers=workers, generator=generator, pin_memory=pin_memory,
        persistent_workers=False,
    )
