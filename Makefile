# fgh_tutorial: `make run` runs the course, `make test` tests it, `make lab` opens it.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export FGH_CACHE ?= $(CURDIR)/build/cache
export MPLBACKEND ?= Agg

.PHONY: setup run test test-fast lint lab explore screenshots notebooks bench gpu-check clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -c constraints.txt -e '.[course,dev,offline-weights,gradcam,scale]'
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (fgh_tutorial)"
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m fgh_tutorial course --out build/course

test: $(STAMP)
	$(PY) -m pytest -q tests notebooks --nbval-lax --nbval-current-env --nbval-sanitize-with tests/sanitize.cfg

# The unit and property tests of seconds: no notebooks, no browser, nothing marked slow.
test-fast: $(STAMP)
	$(PY) -m pytest -q tests -m "not slow and not notebooks and not browser"

lint: $(STAMP)
	$(PY) -m ruff check .

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

# The retrieval explorer as a web app on http://127.0.0.1:8866 (PORT=... to change it).
PORT ?= 8866
explore: $(STAMP)
	$(VENV)/bin/voila app/explorer.ipynb --Voila.ip=127.0.0.1 --port=$(PORT)

# The browser test of the explorer, writing its screenshots to assets/ (needs /usr/bin/chromium).
screenshots: $(STAMP)
	FGH_SCREENSHOTS=$(CURDIR)/assets FGH_REQUIRE_BROWSER=1 $(PY) -m pytest -q tests/test_browser.py

# Re-execute the notebooks in place (refreshes their committed outputs), export the README's
# figures (cells marked "# FIGURE name") to assets/ and write the measured runtimes into the
# README's notebook table. NB=05 re-executes notebook 05 only.
NB ?= [0-9][0-9]
notebooks: $(STAMP)
	$(PY) -c "from fgh_tutorial.course.runner import refresh_notebooks; refresh_notebooks('notebooks/$(NB)_*.ipynb')"

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# Every GPU path checked in a few minutes on a CUDA machine; elsewhere the checks a CPU can run
# (README, "make gpu-check"). Uses .venv's python when there is one, else $(PYTHON): a GPU machine
# without a package registry needs no set-up (GPU_CHECK_ARGS="--wheels DIR --out DIR" to pass options).
GPU_CHECK_PY = $(if $(wildcard $(PY)),$(PY),$(PYTHON))
gpu-check:
	$(GPU_CHECK_PY) benchmarks/gpu_check.py $(GPU_CHECK_ARGS)

clean:
	rm -rf build
