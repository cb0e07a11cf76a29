# The two commands: `make reproduce` (it also writes each executed notebook as a static page,
# reports/NN_slug.html) and `make test`. Both bootstrap a fresh Debian/Ubuntu
# machine: system packages through apt-get (as root; otherwise the exact line to run),
# a virtual environment in .venv, and the package installed editable from the lock file
# (constraints.txt). A second run with everything present installs nothing. Elsewhere (macOS,
# conda) the system packages are yours to install: README, "Install".

SHELL := /bin/bash
PYTHON ?= python3
# the Pythons instclf supports: requires-python in pyproject.toml says the same (a test checks)
SUPPORTED_PYTHONS := 3.11 3.12
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.instclf-installed
# the lock file (`make lock` rewrites it); `make CONSTRAINTS=` installs without it
CONSTRAINTS ?= constraints.txt
# its pretrained weights; installed with --no-deps: its own pins (numpy<1.17) are obsolete
MUSICNN := musicnn==0.1.0
# Debian/Ubuntu packages, by what needs them: rendering (every target that renders or trains)
SYSTEM_PACKAGES := python3-venv fluidsynth libsndfile1 fluid-soundfont-gm \
	musescore-general-soundfont-lossless timgm6mb-soundfont csound-soundfont opl3-soundfont \
	libcsound64-6.0
# and the headless browser of tests/test_app.py, the page screenshot and the page benchmark
BROWSER_PACKAGES := chromium fonts-liberation
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
REPORTS := reports
APP_PORT ?= 8866

.PHONY: test reproduce experiments comparisons lab app bench system browser venv samples data lock

# $(call apt_packages,PACKAGES,WHAT,IF_MISSING): install the missing ones through apt-get as
# root; otherwise print the line to run and stop, or go on when IF_MISSING is `skip`. Without
# dpkg (macOS, other Linux) it checks nothing and says where the README lists the equivalents.
define apt_packages
@if ! command -v dpkg-query >/dev/null; then \
	echo "not a Debian/Ubuntu system: install $(2) yourself (README, \"Install\")"; \
	exit 0; \
fi; \
missing=$$(for p in $(1); do \
	dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; \
done | xargs); \
if [ -n "$$missing" ]; then \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing system packages: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -q --no-install-recommends $$missing; \
	else \
		echo "missing system packages; run: sudo apt-get install -y $$missing" >&2; \
		if [ "$(3)" = skip ]; then echo "(going on without them: $(4))" >&2; \
		else exit 1; fi; \
	fi; \
fi
endef

system:
	$(call apt_packages,$(SYSTEM_PACKAGES),FluidSynth and the soundfonts)

# Strict for make reproduce and make bench; make test goes on without Chromium where it cannot
# install it, and its browser test skips saying why (.ci/run makes that a failure instead).
browser:
	$(call apt_packages,$(BROWSER_PACKAGES),Chromium,$(BROWSER_MISSING),the browser test skips)

test: BROWSER_MISSING = skip

# The Python that makes the venv (or the venv's own) must be one of SUPPORTED_PYTHONS.
define check_python
@py=$$(test -x $(BIN)/python && echo $(BIN)/python || echo $(PYTHON)); \
version=$$($$py -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null); \
case " $(SUPPORTED_PYTHONS) " in *" $$version "*) ;; *) \
	echo "instclf needs one of Python $(SUPPORTED_PYTHONS); $$py is $${version:-not found}." >&2; \
	echo "Get one (Debian/Ubuntu: sudo apt-get install python3.11-venv; macOS: brew install" \
		"python@3.12; conda: environment.yml) and run: make PYTHON=python3.12 $(MAKECMDGOALS)" >&2; \
	test -x $(BIN)/python && echo "(the existing $(VENV) uses it: remove $(VENV) first)" >&2; \
	exit 1;; \
esac
endef

$(STAMP): pyproject.toml $(CONSTRAINTS) Makefile
	$(check_python)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) -e '.[dev]'
	$(BIN)/python -m pip install -q --no-deps $(MUSICNN)
	@# numba compiles librosa's onset detection once and caches it, here without TensorFlow
	$(BIN)/python -c "from instclf import phrases; phrases.compile_onset_detection()"
	@touch $@

# the Python packages, and the sampled source's recordings (npm packages, about 50 MB, once):
# every target that renders or tests needs them, like the soundfonts
venv: $(STAMP) samples

samples: $(STAMP)
	@$(BIN)/instclf data samples --quiet

data: system venv
	$(BIN)/instclf data render

test: system browser venv
	@start=$$(date +%s); \
	INSTCLF_PROFILE=smoke $(BIN)/python -m pytest tests && \
	INSTCLF_PROFILE=smoke $(BIN)/python -m pytest --nbval-lax -p no:cacheprovider $(NOTEBOOKS) && \
	echo "make test: $$(( $$(date +%s) - start )) s for the tests and notebooks"

# A second run with nothing changed reuses the dataset, the caches and the trained models; it
# is recorded as such (benchmarks/results/reproduce.json) when the models already existed.
reproduce: system browser venv
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
		$(BIN)/python -m instclf.pages $(REPORTS)/$$(basename $$nb) || exit 1; \
	done; \
	echo "   static pages: $(REPORTS)/NN_slug.html (committed; open them in a browser)"; \
	echo "== the web page (figures/07_prediction_page.png)"; t0=$$(date +%s); \
	INSTCLF_PROFILE=default $(BIN)/python -m instclf.app screenshot --if-stale figures/07_prediction_page.png \
		|| exit 1; \
	echo "   $$(( $$(date +%s) - t0 )) s"; \
	INSTCLF_PROFILE=default $(BIN)/instclf data info && \
	INSTCLF_PROFILE=default $(BIN)/instclf results --readme README.md || exit 1; \
	seconds=$$(( $$(date +%s) - start )); \
	$(BIN)/python benchmarks/table.py --record-reproduce $$seconds --run $$run >/dev/null; \
	echo "make reproduce: $$seconds s in all ($$run run)"

# Comparisons too long for `make reproduce`: leave-one-lineage-out on LINEAGE_PROFILE (default:
# the default profile, every lineage: the soundfonts, Csound, Faust, pyo, the sampled real
# instruments and their recorded copies; `lineages` is a larger one without pyo and the
# samples), each recipe from SEEDS seeds; their last results go to figures/lineages.json and
# the README (with the date and the profile).
LINEAGE_EXPERIMENTS ?= musicnn_vgg_msd_whole musicnn_vgg_msd_whole_statistics musicnn_msd \
	ensemble_vgg_statistics_musicnn_msd musicnn_vgg_msd_whole_block_statistics \
	musicnn_vgg_msd_whole_statistics_with_blocks musicnn_vgg_msd_whole_with_mtt_block_statistics
LINEAGE_PROFILE ?= default
SEEDS ?= 3
# notebook 04's comparison of training sources at equal size (the default profile, tested on
# the real instruments left out): the network notebook 04 fine-tunes (models.NOTEBOOK_04_NETWORK)
SOURCES_EXPERIMENT ?= musicnn_vgg_msd_whole_statistics
experiments: system venv
	@start=$$(date +%s); \
	INSTCLF_PROFILE=$(LINEAGE_PROFILE) $(BIN)/instclf data render && \
	for e in $(LINEAGE_EXPERIMENTS); do \
		INSTCLF_PROFILE=$(LINEAGE_PROFILE) $(BIN)/instclf train $$e --lineages --seeds $(SEEDS) \
			|| exit 1; \
	done; \
	INSTCLF_PROFILE=$(LINEAGE_PROFILE) $(BIN)/instclf results --lineages && \
	INSTCLF_PROFILE=default $(BIN)/instclf train $(SOURCES_EXPERIMENT) --sources --seeds $(SEEDS) && \
	INSTCLF_PROFILE=default $(BIN)/instclf results --sources && \
	INSTCLF_PROFILE=default $(BIN)/instclf results --readme README.md >/dev/null && \
	echo "make experiments: $$(( $$(date +%s) - start )) s in all"

# The other comparisons too long for `make reproduce`, run first by make experiments: every
# recipe of notebooks 03 and 04, and the page's, on the default profile from SEEDS seeds; their
# last results go to figures/comparisons.json and the README (with the date and the seeds).
# musicnn_vgg before musicnn_vgg_head: the head alone is then the first stage of its run; an
# experiment whose weights are absent (vgg19) is left out, saying why
COMPARISON_EXPERIMENTS ?= musicnn_vgg musicnn_vgg_head scratch_cnn musicnn_vgg_msd \
	musicnn_vgg_msd_whole musicnn_vgg_msd_whole_statistics musicnn_vgg_msd_clipnorm \
	musicnn_vgg_msd_augmented vgg19
comparisons: system venv
	@start=$$(date +%s); \
	INSTCLF_PROFILE=default $(BIN)/instclf data render && \
	for e in $(COMPARISON_EXPERIMENTS); do \
		reason=$$($(BIN)/python -c "from instclf import experiments as x; print(x.unavailable_reason(x.get_experiment('$$e')) or '')") \
			|| exit 1; \
		if [ -n "$$reason" ]; then echo "$$e left out: $$reason"; continue; fi; \
		INSTCLF_PROFILE=default $(BIN)/instclf train $$e --seeds $(SEEDS) || exit 1; \
	done; \
	INSTCLF_PROFILE=default $(BIN)/instclf results --comparisons && \
	INSTCLF_PROFILE=default $(BIN)/instclf results --readme README.md >/dev/null && \
	echo "make comparisons: $$(( $$(date +%s) - start )) s in all"

experiments: comparisons

lab: system venv
	$(BIN)/jupyter lab notebooks $$([ "$$(id -u)" = 0 ] && echo --allow-root)

# The upload page (instclf/page/app.ipynb through Voila, code hidden) on
# http://127.0.0.1:$(APP_PORT)/, predicting with MODEL=path.keras (or $$INSTCLF_MODEL), else the
# best trained model of INSTCLF_PROFILE (default: default), trained first only if it has none.
app: system venv
	$(BIN)/python -m instclf.app serve --port $(APP_PORT) $(if $(MODEL),--model "$(MODEL)")

bench: system browser venv
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done; \
	echo "== benchmarks/table.py"; $(BIN)/python benchmarks/table.py

# Rewrite the lock file: a fresh venv in a temporary folder gets the newest versions that
# pyproject.toml allows (plus musicnn), and its `pip list` becomes $(CONSTRAINTS). Commit the
# result once `make test` passes with it. LOCK_PYTHON picks the Python it is made with.
LOCK_PYTHON ?= $(PYTHON)
lock:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && py="$$tmp/venv/bin/python" && \
	$(LOCK_PYTHON) -m venv "$$tmp/venv" && \
	$$py -m pip install -q --upgrade pip && \
	$$py -m pip install -q -e '.[dev]' && \
	$$py -m pip install -q --no-deps $(MUSICNN) && \
	made=$$($$py -c 'import platform as p; print(p.python_version(), "on", p.system(), p.machine())') && \
	{ echo "# The lock file: the exact versions make installs (pip install -c $(CONSTRAINTS) ...)."; \
	  echo "# Written by make lock (Python $$made); do not edit by hand."; \
	  $$py -m pip list --format=freeze --exclude-editable | grep -viE '^(pip|setuptools|wheel)=='; \
	} > "$$tmp/lock.txt" && \
	mv "$$tmp/lock.txt" $(CONSTRAINTS) && \
	echo "$(CONSTRAINTS): $$(grep -vc '^#' $(CONSTRAINTS)) packages pinned (Python $$made)"
