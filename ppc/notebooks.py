"""Execute the book's notebooks with papermill.

Each notebook lives in ``notebooks/`` as a jupytext pair (``name.py`` in percent format,
the source of truth, and ``name.ipynb``, the executed copy the book publishes). Papermill
cannot read the ``.py`` directly, so it is read with jupytext and handed over as a
notebook object; parameters are injected after the cell tagged ``parameters``.

    python -m ppc.notebooks                       # execute every notebook of the book
    python -m ppc.notebooks 05_training -p extra '{"steps": 50}' -p seed 1 \\
        -p out_dir ../runs/mine -o /tmp/mine.ipynb
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import os
import sys
import time
from collections import Counter
from pathlib import Path

from ._checks import as_device, check_output, first_line, is_int, is_number

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def notebook_names() -> list[str]:
    """The book's notebooks, in reading order (file names sort by their number)."""
    return sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.py"))


#: parameters whose value must be a count (an int >= 1), in any notebook that has them
_COUNTS = {"batch_size": "images per batch", "num_images": "images shown",
           "top_k": "pixels per prototype", "weight_images": "train images",
           "steps": "training steps"}
#: parameters that may be None or a string, whatever their default
_OPTIONAL_TEXT = {"backbone", "weights"}


def check_parameters(name: str, parameters: dict) -> None:
    """A ``ValueError`` naming the parameter unless each value of ``parameters`` fits the
    cell tagged ``parameters`` of ``notebooks/<name>.py``: a known name, the type of its
    default (a bool for a bool, an int for an int, a string for a string, a dict for a
    dict), and, where the notebook's use of it is known, its range (``epochs``: None or a
    finite number > 0; counts such as ``batch_size``: ints >= 1; ``seed`` in
    ``[0, 2**32)``). Papermill would otherwise run the notebook with a value that fails
    deep inside it, or trains silently on another length (``epochs = 0`` trains 1 step)."""
    if not isinstance(parameters, dict):
        raise ValueError(f"parameters must be a dict of {name}'s parameters, got "
                         f"{type(parameters).__name__}; pass e.g. {{'seed': 1}}")
    defaults = parameter_defaults(name)
    unknown = sorted(set(parameters) - set(defaults))
    if unknown:
        raise ValueError(f"{name} has no parameter(s) {unknown}; its parameters: "
                         f"{', '.join(defaults)}")
    for key, value in parameters.items():
        default = defaults[key]

        def refuse(expected: str, example, key=key, value=value) -> None:
            raise ValueError(f"{name}: parameter {key} must be {expected}, got {value!r} "
                             f"({type(value).__name__}); pass e.g. {key} = {example!r}")

        if key == "epochs":
            if value is not None and not (is_number(value) and math.isfinite(value)
                                          and value > 0):
                refuse("None (the preset's length) or a finite number > 0 (epochs of the "
                       "train split)", 2)
        elif key == "extra":
            if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
                refuse("a dict of RunConfig fields, flat (nested ones joined by __)",
                       {"steps": 50, "ppc__top_k": 16})
            if "steps" in value and parameters.get("epochs") is not None:
                raise ValueError(f"{name}: epochs and extra's steps both set the training's "
                                 "length; pass one of them")
        elif key == "device":
            _check_device(name, value, allow_auto=default == "auto")
        elif key == "family":
            if value != default:
                refuse(f"{default!r}: this chapter reads and discusses the {default!r} family; "
                       "each family has its own chapter", default)
        elif key.endswith("_path"):
            if not isinstance(value, (str, os.PathLike)) or not (NOTEBOOKS / value).is_file():
                refuse("the path of an existing file (relative paths start at notebooks/)",
                       default)
        elif key == "seed":
            if not is_int(value) or not 0 <= value < 2**32:
                refuse("an int in [0, 2**32)", 0)
        elif key in _COUNTS:
            if not (value is None and default is None) and not (is_int(value) and value >= 1):
                refuse(f"an int >= 1 ({_COUNTS[key]})" + (" or None (the preset's)"
                                                           if default is None else ""),
                       default if default is not None else 8)
        elif key in _OPTIONAL_TEXT:
            if value is not None and not isinstance(value, (str, os.PathLike)):
                refuse("None or a string", "path/to/weights.pth" if key == "weights"
                       else "resnet50")
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                refuse("True or False", default)
        elif isinstance(default, int):
            if not is_int(value):
                refuse("an int", default)
        elif isinstance(default, float):
            if not (is_number(value) and math.isfinite(value)):
                refuse("a finite number", default)
        elif isinstance(default, str):
            if not isinstance(value, (str, os.PathLike)):
                refuse("a string", default)
        elif isinstance(default, dict):
            if not isinstance(value, dict):
                refuse("a dict", default)


def _check_device(name: str, value, allow_auto: bool) -> None:
    """A ``ValueError`` unless ``value`` names a device this machine has ("auto" where the
    notebook resolves it itself)."""
    import torch

    if allow_auto and value == "auto":
        return
    try:
        device = as_device(value) if isinstance(value, str) else None
    except ValueError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        example = "'auto', 'cpu' or 'cuda'" if allow_auto else "'cpu' or 'cuda'"
        raise ValueError(f"{name}: parameter device must be {example}, got {value!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{name}: parameter device is {value!r}, but torch finds no CUDA "
                         "device on this machine; pass device = 'cpu'")


def execute(name: str, parameters: dict | None = None, output: str | Path | None = None,
            progress: bool = True, cwd: str | Path | None = None) -> Path:
    """Run ``notebooks/<name>.py`` with papermill; write the executed notebook to ``output``
    (default: ``notebooks/<name>.ipynb``, the book's copy) and return its path.
    ``parameters`` (:func:`check_parameters`) and ``output`` (:func:`check_output`) are
    checked before the notebook runs."""
    import jupytext
    import papermill

    source = NOTEBOOKS / f"{name}.py"
    if not source.exists():
        raise FileNotFoundError(f"no notebook {source}; known: {', '.join(notebook_names())}")
    check_parameters(name, parameters or {})
    output = check_notebook_output(output if output is not None else
                                   NOTEBOOKS / f"{name}.ipynb")
    notebook = jupytext.read(source)
    for index, cell in enumerate(notebook.cells):  # stable ids: re-runs diff only in outputs
        cell.id = f"cell-{index}"
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    env_before = os.environ.get("PPC_QUIET")
    os.environ["PPC_QUIET"] = "1"  # progress bars off inside the kernel: stable outputs
    try:
        papermill.execute_notebook(
            notebook, str(output), parameters=parameters or {}, kernel_name="python3",
            progress_bar=progress, cwd=str(cwd or NOTEBOOKS), request_save_on_cell_execute=False,
        )
    finally:
        if env_before is None:
            os.environ.pop("PPC_QUIET", None)
        else:
            os.environ["PPC_QUIET"] = env_before
    _strip_papermill_metadata(output)
    return output


def check_notebook_output(output) -> Path:
    """:func:`ppc._checks.check_output` for an executed notebook: a ``.ipynb`` path (never a
    notebook's ``.py`` source, which the notebook JSON would overwrite)."""
    path = check_output(output, "output", "/tmp/run.ipynb")
    if path.suffix != ".ipynb":
        raise ValueError(f"output {path} must be a .ipynb file (the executed notebook); pass "
                         f"e.g. {path.with_suffix('.ipynb')}")
    return path


def _strip_papermill_metadata(path: Path) -> None:
    """Drop papermill's timing metadata so re-executions differ only where outputs do."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("papermill", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    nbformat.write(nb, path)


def parameter_names(name: str) -> list[str]:
    """Names assigned in the cell tagged ``parameters`` of ``notebooks/<name>.py``."""
    return list(parameter_defaults(name))


def parameter_defaults(name: str) -> dict:
    """``{name: default}`` of the cell tagged ``parameters`` of ``notebooks/<name>.py``, in
    order (a default that is not a literal is given as None)."""
    import jupytext

    for cell in jupytext.read(NOTEBOOKS / f"{name}.py").cells:
        if "parameters" in cell.metadata.get("tags", []):
            found = {}
            for node in ast.parse(cell.source).body:
                if isinstance(node, ast.Assign):
                    try:
                        value = ast.literal_eval(node.value)
                    except ValueError:
                        value = None
                    for target in node.targets:
                        if isinstance(target, ast.Name):
                            found[target.id] = value
            return found
    return {}


_WORDS = {"true": True, "false": False, "none": None, "null": None}


def _value(text: str):
    """A Python literal (``3``, ``0.5``, ``{"steps": 50}``) or JSON (``{"flip": true}``);
    ``true``/``false``/``none`` in any case; else the text itself (a string). Text that
    opens a dict or a list but parses as neither raises ``ValueError``."""
    if text.lower() in _WORDS:
        return _WORDS[text.lower()]
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        pass
    try:
        return json.loads(text)
    except ValueError as err:
        if text.lstrip()[:1] in ("{", "["):
            raise ValueError(f"{text!r} is neither a Python literal nor JSON ({err})") from None
    return text


def main(argv=None) -> int:
    from .cli import OneLineParser  # one-line errors, like python -m ppc

    parser = OneLineParser(prog="python -m ppc.notebooks", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="notebooks to run (default: all, in order)")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                        metavar=("NAME", "VALUE"), help="a papermill parameter (Python literal)")
    parser.add_argument("-o", "--output", help="where to write the executed notebook "
                                               "(one notebook only)")
    args = parser.parse_args(argv)
    names = args.names or notebook_names()
    if args.output is not None and len(names) != 1:
        parser.error("--output needs exactly one notebook name")
    known = notebook_names()
    unknown = sorted(set(names) - set(known))
    if unknown:
        parser.error(f"no notebook(s) {unknown}; known: {', '.join(known)}")
    repeated = sorted(k for k, n in Counter(k for k, _ in args.parameter).items() if n > 1)
    if repeated:
        parser.error(f"parameter(s) {repeated} given more than once; pass each once")
    parameters = {}
    for key, text in args.parameter:
        try:
            parameters[key] = _value(text)
        except ValueError as err:
            parser.error(f"-p {key}: {err}")
    for name in names:  # papermill would only warn, and run with the default instead
        accepted = parameter_names(name)
        extra = sorted(set(parameters) - set(accepted))
        if extra:
            parser.error(f"{name} has no parameter(s) {extra}; its parameters: "
                         f"{', '.join(accepted)} (other RunConfig fields of "
                         "05_training go in extra, e.g. -p extra '{\"steps\": 50}')")
        try:
            check_parameters(name, parameters)
        except ValueError as err:
            parser.error(f"{err} (-p NAME VALUE takes a Python literal)")
    output = None
    if args.output is not None:
        try:
            output = check_notebook_output(args.output)
        except ValueError as err:
            parser.error(f"-o/--output: {err}")
    import papermill

    for name in names:
        started = time.perf_counter()
        print(f"executing {name} ...", flush=True)
        try:
            path = execute(name, parameters, output)
        except papermill.PapermillExecutionError as err:  # a cell raised: its last line
            where = output if output is not None else NOTEBOOKS / f"{name}.ipynb"
            evalue = " ".join(str(err.evalue).split())
            print(f"error: {name}: {err.ename}: {evalue} (the failing cell's traceback is in "
                  f"{where})", file=sys.stderr)
            return 1
        except Exception as err:  # e.g. the kernel died: its first line
            print(f"error: {name}: {type(err).__name__}: {first_line(err)}", file=sys.stderr)
            return 1
        print(f"  {path} ({time.perf_counter() - started:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
