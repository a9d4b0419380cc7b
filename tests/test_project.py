"""The project's own files agree with each other: one set of packages and versions in
pyproject.toml, environment.yml and constraints.txt; CI runs the README's test command."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"torch": "pytorch"}  # PyPI name -> conda-forge name


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].strip().lower()


def _pyproject_requirements():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    return reqs


def _constraints():
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version
    return pins


def _environment():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda, pip = {}, {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for item in dep["pip"]:
                if "==" in item:
                    name, version = item.split("==")
                    pip[name.lower()] = version
        elif "=" in dep:
            name, version = dep.split("=")
            conda[name.lower()] = version
    return conda, pip


def test_every_dependency_is_pinned_in_constraints():
    pins = _constraints()
    for req in _pyproject_requirements():
        assert _name(req) in pins, f"{req} (pyproject.toml) has no pin in constraints.txt"


def test_environment_yml_has_every_dependency_at_the_pinned_version():
    pins = _constraints()
    conda, pip = _environment()
    for req in _pyproject_requirements():
        name = _name(req)
        conda_name = CONDA_NAMES.get(name, name)
        if conda_name in conda:
            assert conda[conda_name] == pins[name], f"environment.yml {conda_name}"
        else:
            assert pip.get(name) == pins[name], f"{name} missing from environment.yml"
    for conda_name, version in conda.items():
        name = {v: k for k, v in CONDA_NAMES.items()}.get(conda_name, conda_name)
        if name != "python":
            assert pins.get(name) == version, f"environment.yml pins {conda_name}={version}"


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test" in ci.splitlines()[-1]
    assert "make test" in readme and "make book" in readme


def test_torch_pair_is_the_tested_one():
    import torch
    import torchvision

    pins = _constraints()
    assert torch.__version__.split("+")[0] == pins["torch"]
    assert torchvision.__version__.split("+")[0] == pins["torchvision"]


def test_the_pinned_versions_satisfy_pyproject():
    from packaging.requirements import Requirement

    pins = _constraints()
    for req in map(Requirement, _pyproject_requirements()):
        name = _name(str(req))
        assert req.specifier.contains(pins[name], prereleases=True), \
            f"constraints.txt pins {name}=={pins[name]}, outside pyproject's {req}"


def test_every_pinned_package_installs_on_the_oldest_python_allowed():
    # a pin whose wheels need a newer Python than requires-python's floor breaks `make env`
    # there (numpy 2.4 and pandas 3 need 3.11: the floor was once a wrong 3.10)
    from importlib import metadata

    from packaging.specifiers import SpecifierSet

    allowed = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    floors = [s.version for s in SpecifierSet(allowed) if s.operator == ">="]
    assert floors, f"requires-python {allowed!r} names no lower bound"
    checked, too_new = 0, []
    for name, version in _constraints().items():
        try:
            dist = metadata.metadata(name)
        except metadata.PackageNotFoundError:
            continue
        if dist["Version"] != version or not dist.get("Requires-Python"):
            continue
        checked += 1
        if not SpecifierSet(dist["Requires-Python"]).contains(floors[0]):
            too_new.append(f"{name}=={version} (Python {dist['Requires-Python']})")
    assert not too_new, f"pyproject allows Python {allowed}, but {', '.join(too_new)}"
    assert checked > 20


def test_the_book_builds_without_warnings(tmp_path):
    # what `make book` ends with, on the committed notebooks (executed, not re-run): broken
    # {doc} links, API docstrings that Sphinx cannot resolve, a page missing from _toc.yml
    import subprocess
    import sys

    import pytest

    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    if not jupyter_book.exists():
        pytest.skip("jupyter-book is not installed (pip install -e '.[book]')")
    result = subprocess.run([str(jupyter_book), "build", str(ROOT), "-W", "-n", "--keep-going",
                             "--path-output", str(tmp_path)],
                            capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    warnings = [line for line in output.splitlines() if "WARNING" in line or "ERROR" in line]
    assert result.returncode == 0 and not warnings, "\n".join(warnings) or output[-3000:]
    assert (tmp_path / "_build" / "html" / "index.html").is_file()
