# Supporters: the two commands are `make run` and `make test`.
# Everything else here is what they are made of.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
FLASK  := $(BIN)/flask --app wsgi
PORT   ?= 5000
STAMP  := $(VENV)/.installed
PO     := $(wildcard supporters/translations/*/LC_MESSAGES/messages.po)
MO     := $(PO:.po=.mo)

.PHONY: run test lint install translations messages serve clean help

help:
	@echo "make run    set up everything and serve the app on http://127.0.0.1:$(PORT)"
	@echo "make test   set up everything and run the whole test suite"

# The virtualenv is rebuilt only when the dependencies change.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

install: $(STAMP) translations

%.mo: %.po $(STAMP)
	$(BIN)/pybabel compile --use-fuzzy -i $< -o $@

translations: $(MO)

# Re-extract translatable strings after changing templates or Python strings.
messages: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k _l -k MoneyError --no-location --project=Supporters \
		-o supporters/translations/messages.pot .
	$(BIN)/pybabel update -i supporters/translations/messages.pot -d supporters/translations

run: install
	$(FLASK) db upgrade
	$(FLASK) demo seed --if-empty
	$(FLASK) demo admin
	$(FLASK) dev serve --port $(PORT)

# Lint, format check, types, then the whole suite on as many processes as there are
# cores (PYTEST_JOBS=0 runs it in one).
PYTEST_JOBS ?= auto

test: install lint
	$(BIN)/python -m pytest -n $(PYTEST_JOBS) $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis $(MO)
