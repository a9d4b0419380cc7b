"""Load pre-trained weights from a local PyTorch checkpoint, with a clear report.

:func:`load_weights` reads a file written by ``torch.save`` (a state_dict, or a dict that
holds one under ``"state_dict"`` or ``"model"``, possibly with DataParallel's ``"module."``
key prefix), loads every tensor whose name and shape match the model, and returns a
:class:`WeightsReport` of what was loaded, missing from the file, or not used. A file for a
different network (no name in common, or tensors of other shapes) is refused with a
``ValueError`` rather than half-loaded.

ResNet-38 ImageNet weights
--------------------------
The ImageNet weights of ResNet-38 (:class:`ppc.models.resnet38.ResNet38`) are published
as MXNet parameters, ``ilsvrc-cls_rna-a1_cls1000_ep-0001.params`` (Wu et al., used by PSA,
SEAM and PPC). They must first be converted to a ``.pth`` state_dict with the official
repositories' converter (``convert_mxnet_to_torch`` in ``network/resnet38d.py`` of
jiwoon-ahn/psa, YudeWang/SEAM or usr922/wseg, which needs ``mxnet``), e.g.::

    torch.save(convert_mxnet_to_torch("ilsvrc-cls_rna-a1_cls1000_ep-0001.params"),
               "resnet38_imagenet.pth")

The weights cannot be downloaded from this environment. The converted names
(``conv1a.weight``, ``b2.bn_branch2a.running_mean``, ..., ``bn7.bias``) are exactly this
package's parameter names, so no renaming is needed: there is no ``convert_official_resnet38``.
The converted file has no BatchNorm ``num_batches_tracked`` counters; these are never
reported as missing (they are unused by the frozen BatchNorms).
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from .._checks import first_line

__all__ = ["WeightsReport", "load_weights"]

_DP_PREFIX = "module."
_IGNORED_MISSING_SUFFIX = "num_batches_tracked"
_SHOW = 8  # names shown per list in messages


def _preview(names: list[str], limit: int = _SHOW) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


@dataclass
class WeightsReport:
    """What :func:`load_weights` did.

    path        the file read.
    loaded      number of tensors copied into the model.
    missing     model keys the file does not provide (left at their current values;
                BatchNorm ``num_batches_tracked`` counters are not listed).
    unexpected  file keys (after prefix handling) the model does not have; not used.
    mismatched  ``"key: file [shape] vs model [shape]"`` for tensors skipped because of a
                shape mismatch (only with ``strict_shapes=False``; otherwise an error).
    """

    path: str
    loaded: int
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when every model tensor came from the file and every file tensor was used."""
        return not (self.missing or self.unexpected or self.mismatched)

    def __str__(self) -> str:
        lines = [f"loaded {self.loaded} tensor(s) from {self.path}"]
        if self.missing:
            lines.append(
                f"  {len(self.missing)} missing from the file (kept as initialised): "
                + _preview(self.missing)
            )
        if self.unexpected:
            lines.append(
                f"  {len(self.unexpected)} unexpected in the file (ignored): "
                + _preview(self.unexpected)
            )
        if self.mismatched:
            lines.append(
                f"  {len(self.mismatched)} skipped for a shape mismatch: "
                + _preview(self.mismatched, 4)
            )
        if self.complete:
            lines.append("  all keys matched")
        return "\n".join(lines)


def _read_checkpoint(path: str):
    if not os.path.exists(path):
        raise FileNotFoundError(f"weights file {path} does not exist")
    if os.path.isdir(path):
        raise ValueError(f"weights path {path} is a directory, not a checkpoint file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any failure of torch.load means "not a readable checkpoint"
        if zipfile.is_zipfile(path):  # torch.save's format, with more than tensors in it
            what = ("a torch.save file that holds Python objects besides tensors (e.g. a ppc "
                    "run's checkpoint.pt, with its optimizer and RNG states)")
        elif "Weights only load failed" in str(exc):  # torch's text says nothing of the file
            what = "not a file written by torch.save"
        else:
            what = f"not a PyTorch checkpoint ({type(exc).__name__}: {first_line(exc)})"
        hint = ""
        if path.endswith(".params"):
            hint = (
                "; this looks like MXNet parameters: convert them to a .pth state_dict "
                "first (see ppc.models.weights)"
            )
        raise ValueError(
            f"weights file {path} is {what}; expected a state_dict written by "
            f"torch.save(model.state_dict(), path){hint}"
        ) from None


def _extract_state_dict(obj, path: str) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint: the dict itself, or its ``state_dict`` / ``model`` entry."""
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping):
        raise ValueError(
            f"weights file {path} holds a {type(obj).__name__}, not a state_dict "
            "(a dict of name -> tensor)"
        )
    tensors = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    nested = [str(k) for k, v in obj.items() if isinstance(v, Mapping)
              and any(isinstance(t, torch.Tensor) for t in v.values())]
    if nested:
        raise ValueError(
            f"weights file {path} holds tensors nested under {_preview(nested)} besides the "
            "state_dict; save the network's state_dict alone (a flat dict of name -> tensor)")
    if not tensors:
        raise ValueError(
            f"weights file {path} holds no tensors (keys: {_preview([str(k) for k in obj])}); "
            "expected a state_dict"
        )
    return tensors


def _map_key(key: str, model_keys, prefix_map: list[tuple[str, str]]) -> str:
    while key.startswith(_DP_PREFIX) and key not in model_keys:
        key = key[len(_DP_PREFIX) :]
    for old, new in prefix_map:
        if key.startswith(old):
            return new + key[len(old) :]
    return key


def load_weights(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    strict_shapes: bool = True,
    prefix_map: Mapping[str, str] | None = None,
) -> WeightsReport:
    """Load the tensors of checkpoint ``path`` into ``model`` (in place) and report.

    Args:
        model: the network; a ``DataParallel`` / ``DistributedDataParallel`` wrapper is
            loaded through its ``.module``.
        path: a file written by ``torch.save``: a state_dict, or a dict with the state_dict
            under ``"state_dict"`` or ``"model"``. It is read with
            ``torch.load(map_location="cpu", weights_only=True)`` (no arbitrary code).
        strict_shapes: if True (default), a tensor whose name matches but whose shape
            differs is an error; if False it is skipped and listed in ``report.mismatched``.
        prefix_map: optional ``{file_prefix: model_prefix}`` renaming of the file's keys,
            applied after stripping DataParallel's ``"module."`` (longest prefix first;
            e.g. ``{"backbone.": ""}``).

    Returns:
        a :class:`WeightsReport` (``loaded``, ``missing``, ``unexpected``, ``mismatched``).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not a PyTorch checkpoint / holds no state_dict; none of its
            keys is a model key; two file keys map to the same model key; or (with
            ``strict_shapes``) some matching keys have other shapes. Nothing is loaded then.
    """
    path = os.fspath(path)
    if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
        model = model.module
    file_tensors = _extract_state_dict(_read_checkpoint(path), path)

    model_state = model.state_dict()
    if prefix_map is not None and not (isinstance(prefix_map, Mapping) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in prefix_map.items())):
        raise ValueError(f"prefix_map must be a dict of file prefix -> model prefix (str -> "
                         f"str), got {prefix_map!r}")
    rules = sorted((prefix_map or {}).items(), key=lambda kv: len(kv[0]), reverse=True)

    renamed: dict[str, torch.Tensor] = {}
    origin: dict[str, str] = {}
    for key, tensor in file_tensors.items():
        new = _map_key(key, model_state, rules)
        if new in renamed:
            raise ValueError(
                f"weights file {path}: keys {origin[new]!r} and {key!r} both map to "
                f"{new!r}; check prefix_map"
            )
        renamed[new] = tensor
        origin[new] = key

    common = [k for k in renamed if k in model_state]
    if not common and any(k.startswith("backbone.") and k[len("backbone."):] in model_state
                          for k in renamed):
        raise ValueError(
            f"weights file {path} holds a whole network (keys 'backbone.*', e.g. a ppc run's "
            "model.pt), not a backbone: save its backbone alone, {k[len('backbone.'):]: v "
            "for 'backbone.*' keys}, and pass that file (in Python, "
            "load_weights(..., prefix_map={'backbone.': ''}) loads it as it is)")
    if not common:
        raise ValueError(
            f"weights file {path} matches none of the model's parameters: it is for another "
            f"network (file keys: {_preview(list(renamed), 3)}; model keys: "
            f"{_preview(list(model_state), 3)}); use prefix_map if only the prefixes differ"
        )

    mismatched = [
        (k, tuple(renamed[k].shape), tuple(model_state[k].shape))
        for k in common
        if renamed[k].shape != model_state[k].shape
    ]
    if mismatched and strict_shapes:
        detail = "; ".join(
            f"{k}: file {list(fs)} vs model {list(ms)}" for k, fs, ms in mismatched[:3]
        )
        more = f" (and {len(mismatched) - 3} more)" if len(mismatched) > 3 else ""
        raise ValueError(
            f"weights file {path} is for a different network: {len(mismatched)} tensor(s) "
            f"have other shapes than the model's: {detail}{more}. Nothing was loaded "
            "(pass strict_shapes=False to skip these tensors)"
        )
    bad = {k for k, _, _ in mismatched}
    to_load = {k: renamed[k] for k in common if k not in bad}
    model.load_state_dict(to_load, strict=False)

    return WeightsReport(
        path=path,
        loaded=len(to_load),
        missing=[
            k for k in model_state if k not in renamed and not k.endswith(_IGNORED_MISSING_SUFFIX)
        ],
        unexpected=[k for k in renamed if k not in model_state],
        mismatched=[f"{k}: file {list(fs)} vs model {list(ms)}" for k, fs, ms in mismatched],
    )
