# The README's two commands: `make book` and `make test`. Both set up .venv first.
VENV     := .venv
PY       := $(VENV)/bin/python
ADVBOOK  := $(VENV)/bin/advbook
STAMP    := $(VENV)/.installed
CHAPTERS := $(basename $(notdir $(wildcard notebooks/*.py)))

# the offline datasets: $ADVBOOK_DATA, else ../shared/data beside the clone where it exists (as in
# CI), else data/datasets/; What holds plans its costs from them, so a build without them says less
ifeq ($(strip $(ADVBOOK_DATA)),)
ifneq ($(wildcard ../shared/data),)
export ADVBOOK_DATA := $(abspath ../shared/data)
endif
endif

# MathJax, shipped with the book so that formulas render with no network: the npm package,
# fetched from the registry once and checked against its published sha256
MATHJAX_VERSION := 3.2.2
MATHJAX_SHA256  := 1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09
MATHJAX         := book/_mathjax/mathjax/tex-svg.js

.PHONY: setup chromium book html test clean window

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

$(MATHJAX):
	@set -e; tmp=$$(mktemp -d); cd $$tmp; \
	if command -v npm >/dev/null; then npm pack --silent mathjax@$(MATHJAX_VERSION) >/dev/null; \
	else curl -sSfLo mathjax-$(MATHJAX_VERSION).tgz https://registry.npmjs.org/mathjax/-/mathjax-$(MATHJAX_VERSION).tgz; fi; \
	echo "$(MATHJAX_SHA256)  mathjax-$(MATHJAX_VERSION).tgz" | sha256sum -c --quiet; \
	tar xzf mathjax-$(MATHJAX_VERSION).tgz package/es5/tex-svg.js package/es5/input/tex/extensions; \
	cd - >/dev/null; mkdir -p book/_mathjax/mathjax; cp -r $$tmp/package/es5/. book/_mathjax/mathjax/; rm -rf $$tmp
	@echo "MathJax $(MATHJAX_VERSION) in book/_mathjax/mathjax"

# the browser test's Chromium, from the distribution's packages where the set-up may install them
# (the test skips, saying why, where it cannot)
CHROMIUM := $(shell command -v chromium || command -v chromium-browser)
chromium:
	@if [ -z "$(CHROMIUM)" ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		echo "installing chromium for the browser test"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null \
		|| echo "could not install chromium: the browser test will skip"; fi

setup: $(STAMP) $(MATHJAX) chromium

# Execute (smoke profile) only the chapters whose executed notebook is missing, then render.
book: setup
	@for c in $(CHAPTERS); do $(ADVBOOK) run $$c --profile smoke --if-missing || exit 1; done
	$(MAKE) --no-print-directory html

# Render the executed notebooks as they are (no execution): the verdicts page, then the HTML.
html: setup
	$(ADVBOOK) verdicts
	$(VENV)/bin/jupyter-book build book/ --config _config.yml --path-output . -W -n --keep-going
	@echo "book: _build/html/index.html"

# Unit tests, then every chapter executed in the smoke profile into a temporary folder (never
# book/, with its own results store) and checked by nbval, and the book built as `make book`
# builds it (committed chapters as they are, missing ones smoke-executed) and opened page by
# page in headless Chromium (tests/test_browser.py), all in one pytest run.
test: setup
	$(MAKE) --no-print-directory book
	@set -e; tmp=$$(mktemp -d); export ADVBOOK_RESULTS=$$tmp/results; \
	for c in $(CHAPTERS); do start=$$(date +%s); $(ADVBOOK) run $$c --profile smoke --output $$tmp/$$c.ipynb; \
	  echo "smoke-executed $$c in $$(( $$(date +%s) - start )) s"; done; \
	$(PY) -m pytest tests $$tmp/*.ipynb --nbval-lax --nbval-current-env -p no:cacheprovider; \
	rm -rf $$tmp

# One GPU window (advbook/window.py): the environment, a short bench if data/bench has none of this
# device and commit, every chapter's queue (claims first) within BUDGET seconds, all exported into
# OUT. Any Python with the requirements: `make window BUDGET=480 OUT=out PY=python3`.
BUDGET ?= 480
window:
	@test -n "$(OUT)" || { echo "usage: make window BUDGET=480 OUT=folder [PY=python]"; exit 2; }
	PYTHONPATH=lib$${PYTHONPATH:+:$$PYTHONPATH} $(PY) -m advbook.window --budget $(BUDGET) --output $(OUT)

clean:
	rm -rf _build $(VENV)
