"""Input checks shared by the public functions.

Shape checks read only tensor metadata and never synchronise with the device.
Value checks (NaN, ranges) must read tensor values, which costs one host-device
synchronisation on a GPU; every public function therefore takes ``validate=True``
and the training loop may switch it off once its inputs are known to be sane.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import types
import typing
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor


def require_tensor(name: str, value, shape_doc: str, ndim: int | None = None) -> None:
    """Raise ``ValueError`` unless ``value`` is a tensor with ``ndim`` dimensions."""
    if not isinstance(value, torch.Tensor):
        raise ValueError(
            f"{name} must be a torch.Tensor of shape {shape_doc}, got {type(value).__name__}"
        )
    if ndim is not None and value.dim() != ndim:
        raise ValueError(
            f"{name} must have shape {shape_doc} ({ndim} dimensions), "
            f"got shape {tuple(value.shape)}"
        )


def require_bool(name: str, value) -> None:
    """Raise ``ValueError`` unless ``value`` is a bool (a truthy string such as "no" is not)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")


def require_generator(generator) -> None:
    """Raise ``ValueError`` unless ``generator`` is a ``torch.Generator`` or None."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator (or None), got "
                         f"{type(generator).__name__}; pass e.g. torch.Generator().manual_seed(0)")


def require_floating(name: str, value: Tensor, shape_doc: str) -> None:
    if not value.is_floating_point():
        raise ValueError(
            f"{name} must be a floating-point tensor of shape {shape_doc}, got dtype {value.dtype}"
        )


def require_integer(name: str, value: Tensor, shape_doc: str) -> None:
    if value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
        raise ValueError(
            f"{name} must be an integer tensor of shape {shape_doc}, got dtype {value.dtype}"
        )


def require_match(what: str, name_a: str, a: int, name_b: str, b: int, hint: str = "") -> None:
    if a != b:
        msg = f"{what} of {name_a} ({a}) does not match {what} of {name_b} ({b})"
        raise ValueError(msg + (f": {hint}" if hint else ""))


def require_finite(name: str, value: Tensor) -> None:
    """Value check (synchronises): no NaN or Inf."""
    if not bool(torch.isfinite(value).all()):
        bad = int((~torch.isfinite(value)).sum())
        raise ValueError(
            f"{name} contains {bad} NaN or Inf value(s); check the network output "
            "(e.g. a diverged step or a bad learning rate) before computing the loss"
        )


def require_range(name: str, value: Tensor, low: float, high: float, hint: str = "") -> None:
    """Value check (synchronises): every value in ``[low, high]``."""
    require_finite(name, value)
    if value.numel() and not bool(((value >= low) & (value <= high)).all()):
        lo, hi = float(value.min()), float(value.max())
        msg = f"{name} must lie in [{low}, {high}], got values in [{lo:.4g}, {hi:.4g}]"
        raise ValueError(msg + (f": {hint}" if hint else ""))


def require_multi_hot(name: str, value: Tensor, shape_doc: str) -> None:
    """Value check (synchronises): entries are 0 or 1."""
    if value.dtype == torch.bool:
        return
    if not bool(((value == 0) | (value == 1)).all()):
        raise ValueError(f"{name} must be multi-hot (only 0 and 1) of shape {shape_doc}")


def require_labels(name: str, labels: Tensor, num_classes: int, ignore_index: int | None) -> None:
    """Value check (synchronises): labels in ``[0, num_classes)`` or ``ignore_index``."""
    ok = (labels >= 0) & (labels < num_classes)
    if ignore_index is not None:
        ok = ok | (labels == ignore_index)
    if labels.numel() and not bool(ok.all()):
        bad = labels[~ok]
        allowed = f"[0, {num_classes - 1}]" + (
            f" or the ignore label {ignore_index}" if ignore_index is not None else ""
        )
        raise ValueError(
            f"{name} must hold class indices in {allowed}; "
            f"found {bad.numel()} value(s) outside, e.g. {int(bad[0])}"
        )


def _fits(value, hint) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin is tuple:
        if not isinstance(value, (tuple, list)):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_fits(v, args[0]) for v in value)
        return len(value) == len(args) and all(_fits(v, a) for v, a in zip(value, args,
                                                                            strict=True))
    return True  # other annotations are not checked here


def _describe(hint) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if hint is type(None):
        return "None"
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_describe(args[0])}"
        return f"a list of {len(args)} ({', '.join(_describe(a) for a in args)})"
    return getattr(hint, "__name__", str(hint))


def check_field_types(obj, owner: str) -> None:
    """Raise ``ValueError`` naming the field when a dataclass field holds a value of
    another type than its annotation (papermill and JSON hand over text and lists: the
    string ``"false"`` is not a bool, ``"8"`` not an int). Nested dataclasses are skipped;
    ints pass for floats, lists for tuples."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value) or _fits(value, hints[f.name]):
            continue
        raise ValueError(f"{owner}.{f.name} must be {_describe(hints[f.name])}, got "
                         f"{value!r} ({type(value).__name__})")


def replace_fields(obj, changes: dict):
    """``dataclasses.replace(obj, **changes)``, with a ``ValueError`` naming the unknown
    fields (rather than ``__init__``'s ``TypeError``); the copy's ``__post_init__`` checks
    the new values."""
    names = {f.name for f in dataclasses.fields(obj) if f.init}
    unknown = sorted(set(changes) - names)
    if unknown:
        kind = type(obj)
        raise ValueError(f"unknown {kind.__name__} field(s) {unknown}; see "
                         f"{kind.__module__}.{kind.__qualname__} for the fields")
    return dataclasses.replace(obj, **changes)


def check_scales(scales, max_scale: float = math.inf) -> None:
    """A ``ValueError`` unless ``scales`` is one or more finite factors in
    ``(0, max_scale]``."""
    if isinstance(scales, (str, bytes)) or not isinstance(scales, Iterable) or not scales \
            or not all(is_number(v) and 0 < v < math.inf and v <= max_scale for v in scales):
        bound = "finite factors > 0" if max_scale == math.inf else \
            f"factors in (0, {max_scale:g}]"
        raise ValueError(f"scales must be one or more {bound} (the official "
                         f"(0.5, 1.0, 1.5, 2.0)), got {scales!r}")


def as_device(device) -> torch.device:
    """``device`` (a ``torch.device`` or its name) as a ``torch.device``, or a one-line
    ``ValueError``."""
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be a torch.device or a name such as 'cpu', 'cuda' or "
                         f"'cuda:0', got {device!r} ({first_line(exc)})") from None


def require_transform(owner: str, transform) -> None:
    """Raise ``ValueError`` unless a dataset's ``transform`` is None or callable."""
    if transform is not None and not callable(transform):
        raise ValueError(f"{owner} transform must be None or a callable applied to each sample "
                         f"dict (e.g. ppc.data.eval_transform()), got {transform!r} "
                         f"({type(transform).__name__})")


def index_error(index, size: int, what: str) -> IndexError:
    """The error for an item ``index`` outside a dataset of ``size`` items (``what`` names
    it): an ``IndexError`` still, as iteration by ``__getitem__`` stops on it."""
    return IndexError(f"index {index} is out of range: {what} has {size} items; pass an "
                      f"index in [0, {size})")


def require_int(name: str, value, minimum: int = 1, what: str = "") -> int:
    """``value`` as an int, or a ``ValueError`` unless it is an int (Python or NumPy, not a
    bool) >= ``minimum``; ``what`` says what it counts, e.g. ``" (channels)"``."""
    if not is_int(value) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}{what}, got {value!r} "
                         f"({type(value).__name__})")
    return int(value)


def check_threads(threads, name: str = "threads") -> int:
    """``threads`` as an int, or a ``ValueError`` unless it is an int from 1 to 4x this
    machine's cores (more threads than that only slows torch down, and far more crash it)."""
    most = 4 * (os.cpu_count() or 1)
    if not is_int(threads) or not 1 <= threads <= most:
        raise ValueError(f"{name} must be an int in [1, {most}] (CPU threads; this machine has "
                         f"{os.cpu_count()} cores), got {threads!r}")
    return int(threads)


def is_int(value) -> bool:
    """An int (Python or NumPy), not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_number(value) -> bool:
    """A real number (Python or NumPy), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_seed(seed, owner: str, bits: int = 32) -> int:
    """``seed`` as an int, or a ``ValueError`` naming ``owner`` unless it is an int in
    ``[0, 2**bits)`` (NumPy refuses negative seeds; torch wraps them)."""
    if not is_int(seed) or not 0 <= seed < 2**bits:
        raise ValueError(f"{owner}: seed must be an int in [0, 2**{bits}), got {seed!r} "
                         f"({type(seed).__name__}); pass a non-negative integer such as 0")
    return int(seed)


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (at most ``limit`` characters), to quote a
    library's error inside a one-line error of ours."""
    return (str(exc).strip().splitlines() or [""])[0][:limit]


def blocking_file(path: str | Path) -> Path | None:
    """The file that stands where ``path`` or one of its folders should be (``path``
    itself, or its nearest existing ancestor when that is not a folder); None when the
    path is free or a folder."""
    for candidate in (Path(path), *Path(path).parents):
        if candidate.exists():
            return None if candidate.is_dir() else candidate
    return None


def check_output(output: str | Path, name: str = "output",
                 example: str = "/tmp/run.ipynb") -> Path:
    """``output`` as a :class:`Path` where a file can be written (its folder created), or a
    ``ValueError`` naming the argument ``name`` and saying what is in the way: called
    before the work (a notebook's execution, a training) rather than after it."""
    if not isinstance(output, (str, os.PathLike)) or not str(output).strip():
        raise ValueError(f"{name} must be the path of the file to write, got {output!r}; "
                         f"pass a file path such as {example}")
    if str(output).endswith(("/", os.sep)):
        raise ValueError(f"{name} {output} ends with a slash, so it names a folder; pass a "
                         f"file path such as {Path(output) / Path(example).name}")
    output = Path(output)
    if output.is_dir():
        raise ValueError(f"{name} {output} is a folder; pass a file path such as "
                         f"{output / Path(example).name}")
    blocking = blocking_file(output.parent)
    if blocking is not None:
        raise ValueError(f"cannot write {output}: {blocking} is a file, not a folder; pass a "
                         "path whose folders are folders (or can be created)")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"cannot create the folder {output.parent} for {name} "
                         f"({first_line(err)}); "
                         "pass a path you can write to") from None
    if not os.access(output.parent, os.W_OK):
        raise ValueError(f"cannot write {output}: the folder {output.parent} is not "
                         "writable; pass a path you can write to")
    if output.exists() and not os.access(output, os.W_OK):
        raise ValueError(f"cannot write {output}: the file is read-only; pass a path you can "
                         "write to")
    if not output.exists():  # some folders refuse new files whatever their mode (/sys)
        try:
            output.touch(exist_ok=False)
            output.unlink()
        except OSError as err:
            raise ValueError(f"cannot write {output} ({first_line(err)}); pass a path you "
                             "can write to") from None
    return output


def require_score(name: str, value) -> float:
    """``value`` as a float, or a ``ValueError`` unless it is a number in [0, 1] (a
    background score for CAMs normalised to [0, 1])."""
    if not is_number(value) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a number in [0, 1] (a background score for CAMs "
                         f"normalised to [0, 1]), got {value!r}")
    return float(value)


def read_json(path) -> object:
    """The JSON value in file ``path``, or a ``ValueError`` naming the file where it cannot
    be read (half-written, not JSON): a run's summary, coverage or report."""
    import json

    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ValueError(f"{path} cannot be read as JSON ({first_line(err)}); it is damaged: "
                         "delete it, and the run's folder if need be, to compute it again") \
            from None
