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
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def notebook_names() -> list[str]:
    """The book's notebooks, in reading order (file names sort by their number)."""
    return sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.py"))


def execute(name: str, parameters: dict | None = None, output: str | Path | None = None,
            progress: bool = True, cwd: str | Path | None = None) -> Path:
    """Run ``notebooks/<name>.py`` with papermill; write the executed notebook to ``output``
    (default: ``notebooks/<name>.ipynb``, the book's copy) and return its path."""
    import jupytext
    import papermill

    source = NOTEBOOKS / f"{name}.py"
    if not source.exists():
        raise FileNotFoundError(f"no notebook {source}; known: {', '.join(notebook_names())}")
    output = Path(output) if output else NOTEBOOKS / f"{name}.ipynb"
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
    import jupytext

    for cell in jupytext.read(NOTEBOOKS / f"{name}.py").cells:
        if "parameters" in cell.metadata.get("tags", []):
            return [target.id for node in ast.parse(cell.source).body
                    if isinstance(node, ast.Assign) for target in node.targets
                    if isinstance(target, ast.Name)]
    return []


_WORDS = {"true": True, "false": False, "none": None, "null": None}


def _value(text: str):
    """A Python literal (``3``, ``0.5``, ``{"steps": 50}``); ``true``/``false``/``none`` in
    any case; else the text itself (a string)."""
    if text.lower() in _WORDS:
        return _WORDS[text.lower()]
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ppc.notebooks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="notebooks to run (default: all, in order)")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                        metavar=("NAME", "VALUE"), help="a papermill parameter (Python literal)")
    parser.add_argument("-o", "--output", help="where to write the executed notebook "
                                               "(one notebook only)")
    args = parser.parse_args(argv)
    names = args.names or notebook_names()
    if args.output and len(names) != 1:
        parser.error("--output needs exactly one notebook name")
    known = notebook_names()
    unknown = sorted(set(names) - set(known))
    if unknown:
        parser.error(f"no notebook(s) {unknown}; known: {', '.join(known)}")
    parameters = {k: _value(v) for k, v in args.parameter}
    for name in names:  # papermill would only warn, and run with the default instead
        accepted = parameter_names(name)
        extra = sorted(set(parameters) - set(accepted))
        if extra:
            parser.error(f"{name} has no parameter(s) {extra}; its parameters: "
                         f"{', '.join(accepted)} (other RunConfig fields of "
                         "05_training go in extra, e.g. -p extra '{\"steps\": 50}')")
    for name in names:
        started = time.perf_counter()
        print(f"executing {name} ...", flush=True)
        try:
            path = execute(name, parameters, args.output)
        except Exception as err:  # papermill reports the failing cell
            print(f"error: {name}: {err}", file=sys.stderr)
            return 1
        print(f"  {path} ({time.perf_counter() - started:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
