# widenets: `make demo` and `make test` work on a fresh machine (they create .venv if missing).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
JOBS   ?= 2

.PHONY: demo report test test-slow lint bench e2e clean

# The pinned CPU build of torch goes in first: an unpinned torch would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[dev]"
	touch $(STAMP)

# The main job on embedded data (scikit-learn's digits): every report section, small sizes.
demo: $(STAMP)
	$(VENV)/bin/widenets report --quick

# The full report (more widths, networks and Langevin steps); DATA=mnist etc. for bundled sets.
DATA ?= digits
report: $(STAMP)
	$(VENV)/bin/widenets report --data $(DATA)

test: $(STAMP)
	$(PY) -m pytest -q -n $(JOBS) tests

test-slow: $(STAMP)
	$(PY) -m pytest -q -n $(JOBS) -m slow tests

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks experiments tools

# Headless browser check of the report: installs Debian's Chromium and ChromeDriver if missing.
e2e: $(STAMP)
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  ( $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -q chromium chromium-driver )
	$(PY) -m pytest -q -o addopts="" -m browser tests/report

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) widenets-report .pytest_cache
