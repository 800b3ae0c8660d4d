# The README's two commands: `make book` and `make test`. Both set up .venv first.
VENV     := .venv
PY       := $(VENV)/bin/python
ADVBOOK  := $(VENV)/bin/advbook
STAMP    := $(VENV)/.installed
CHAPTERS := $(basename $(notdir $(wildcard notebooks/*.py)))

.PHONY: setup book test clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

setup: $(STAMP)

# Execute (smoke profile) only the chapters whose executed notebook is missing, then render.
book: setup
	@for c in $(CHAPTERS); do $(ADVBOOK) run $$c --profile smoke --if-missing || exit 1; done
	$(VENV)/bin/jupyter-book build book/ --config _config.yml --path-output . -W -n --keep-going
	@echo "book: _build/html/index.html"

# Unit tests, then every chapter executed in the smoke profile into a temporary folder (never
# book/, with its own results store) and checked by nbval, all in one pytest run.
test: setup
	@set -e; tmp=$$(mktemp -d); export ADVBOOK_RESULTS=$$tmp/results; \
	for c in $(CHAPTERS); do echo "smoke-executing $$c"; $(ADVBOOK) run $$c --profile smoke --output $$tmp/$$c.ipynb; done; \
	$(PY) -m pytest tests $$tmp/*.ipynb --nbval-lax --nbval-current-env -p no:cacheprovider; \
	rm -rf $$tmp

clean:
	rm -rf _build $(VENV)
