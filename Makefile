# The two commands: `make reproduce` and `make test`. Both bootstrap a fresh Debian/Ubuntu
# machine: system packages through apt-get (as root; otherwise the exact line to run),
# a virtual environment in .venv, and the package installed editable. A second run with
# everything present installs nothing.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.instclf-installed
SYSTEM_PACKAGES := python3-venv fluidsynth libsndfile1 fluid-soundfont-gm \
	musescore-general-soundfont-lossless timgm6mb-soundfont csound-soundfont opl3-soundfont \
	libcsound64-6.0 \
	chromium fonts-liberation  # headless browser of tests/test_app.py and the page screenshot
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
REPORTS := reports
APP_PORT ?= 8866

.PHONY: test reproduce lab app bench system venv data

system:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; \
	done | xargs); \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing system packages: $$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
				apt-get install -y -q --no-install-recommends $$missing; \
		else \
			echo "missing system packages; run: sudo apt-get install -y $$missing" >&2; \
			exit 1; \
		fi; \
	fi

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m pip install -q --no-deps musicnn==0.1.0  # its own pins are obsolete
	@touch $@

venv: $(STAMP)

data: system venv
	$(BIN)/instclf data render

test: system venv
	@start=$$(date +%s); \
	INSTCLF_PROFILE=smoke $(BIN)/python -m pytest tests && \
	INSTCLF_PROFILE=smoke $(BIN)/python -m pytest --nbval-lax -p no:cacheprovider $(NOTEBOOKS) && \
	echo "make test: $$(( $$(date +%s) - start )) s for the tests and notebooks"

# A second run with nothing changed reuses the dataset, the caches and the trained models; it
# is recorded as such (benchmarks/results/reproduce.json) when the models already existed.
reproduce: system venv
	@start=$$(date +%s); \
	if [ -n "$$(ls -d $${INSTCLF_DATA_DIR:-data}/models/default/*/ 2>/dev/null)" ]; then \
		run=second; else run=first; fi; \
	INSTCLF_PROFILE=default $(BIN)/instclf data render && \
	echo "   rendering: $$(( $$(date +%s) - start )) s" && \
	mkdir -p $(REPORTS) && \
	for nb in $(NOTEBOOKS); do \
		echo "== $$nb"; t0=$$(date +%s); \
		INSTCLF_PROFILE=default $(BIN)/jupyter nbconvert --to notebook --execute \
			--ExecutePreprocessor.timeout=1800 --output-dir $(REPORTS) $$nb --log-level WARN \
			|| exit 1; \
		echo "   $$(( $$(date +%s) - t0 )) s"; \
	done; \
	echo "== the web page (figures/07_prediction_page.png)"; t0=$$(date +%s); \
	INSTCLF_PROFILE=default $(BIN)/python -m instclf.app screenshot --if-stale figures/07_prediction_page.png \
		|| exit 1; \
	echo "   $$(( $$(date +%s) - t0 )) s"; \
	INSTCLF_PROFILE=default $(BIN)/instclf data info && \
	INSTCLF_PROFILE=default $(BIN)/instclf results --readme README.md || exit 1; \
	seconds=$$(( $$(date +%s) - start )); \
	$(BIN)/python benchmarks/table.py --record-reproduce $$seconds --run $$run >/dev/null; \
	echo "make reproduce: $$seconds s in all ($$run run)"

lab: system venv
	$(BIN)/jupyter lab notebooks

# The upload page (instclf/page/app.ipynb through Voila, code hidden) on
# http://127.0.0.1:$(APP_PORT)/, predicting with MODEL=path.keras (or $$INSTCLF_MODEL), else the
# best trained model of INSTCLF_PROFILE (default: default), trained first only if it has none.
app: system venv
	$(BIN)/python -m instclf.app serve --port $(APP_PORT) $(if $(MODEL),--model "$(MODEL)")

bench: system venv
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done; \
	echo "== benchmarks/table.py"; $(BIN)/python benchmarks/table.py
