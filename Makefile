# make test  - create the environment when missing, then run every test
# make book  - create the environment when missing, execute the notebooks with papermill
#              (stored runs in results/ are reused), build the book into _build/html
# make bench - print the loss benchmark (vectorised PPC against a loop-style reference)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: env test book bench clean-book

env: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[test,book]"
	touch $(STAMP)

test: env
	$(PY) -m pytest -q

book: env
	$(PY) -m ppc.notebooks
	$(VENV)/bin/jupyter-book build . -W -n --keep-going
	@echo "book: open _build/html/index.html"

bench: env
	$(PY) benchmarks/bench_loss.py

clean-book:
	rm -rf _build
