# `make run` and `make test` do every missing set-up step themselves (see README.md).
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
PORT ?= 5000

.PHONY: setup system run test test-walk lint bench soak translations migrate clean

setup: system $(VENV)/.installed $(VENV)/.development translations

system:
	@bash scripts/system-packages.sh

$(VENV)/.installed: requirements.txt
	@test -x $(BIN)/python || { echo "Creating .venv"; python3 -m venv $(VENV); }
	@echo "Installing the pinned Python packages into .venv (the first time takes a few minutes)"
	@$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -m pip install -q -r requirements.txt
	@touch $@

# This .venv is a development one: activating it sets PORTAL_ENV=development unless it is already
# set, so `flask --app wsgi ...` works from it. Deployments set PORTAL_ENV themselves (deploy/).
$(VENV)/.development: $(VENV)/.installed
	@grep -q 'PORTAL_ENV' $(BIN)/activate || \
	  printf '\n# portal: a development environment unless told otherwise\nexport PORTAL_ENV="$${PORTAL_ENV:-development}"\n' >> $(BIN)/activate
	@touch $@

translations: $(VENV)/.installed
	@$(BIN)/pybabel -q compile -d translations -D messages

migrate: setup
	@echo "Bringing the database up to date"
	@PORTAL_ENV=$${PORTAL_ENV:-development} $(FLASK) db upgrade

run: migrate
	@PORTAL_ENV=$${PORTAL_ENV:-development} $(FLASK) demo seed --if-empty
	@echo "Serving on http://127.0.0.1:$(PORT)  (demo password: demo-pass-2026)"
	@PORTAL_ENV=$${PORTAL_ENV:-development} PORT=$(PORT) bash scripts/serve.sh

test: setup
	@PORTAL_ENV=testing $(BIN)/pytest -q -m "not walk"

# About nine minutes: every main page of every role in Chromium, in English and Chinese, checked
# with axe-core and at phone and laptop widths (tests/test_browser_a11y.py), and the end-to-end
# journeys through those pages (tests/test_journeys.py); .ci/run runs it.
test-walk: setup
	@PORTAL_ENV=testing $(BIN)/pytest -q -m walk

# bandit: findings are fixed, or marked `# nosec BXXX  # reason` on the line (none skipped wholesale).
lint: setup
	@$(BIN)/ruff check .
	@$(BIN)/bandit -q -r portal blueprints models

bench: setup
	@PORTAL_ENV=testing $(BIN)/python -m bench

# About five minutes: the production topology on 127.0.0.1 (its own PostgreSQL cluster and
# Redis, two gunicorn instances behind nginx, the worker) under load, through a database restart
# and a killed instance; fails if anything acknowledged is lost or duplicated (docs/deploy.md).
soak: setup
	@bash scripts/soak/system-packages.sh
	@$(BIN)/python scripts/soak/run.py

# Refresh the message catalogs after changing user-visible strings.
messages: $(VENV)/.installed
	@$(BIN)/pybabel -q extract -F babel.cfg -k _l -o translations/messages.pot .
	@$(BIN)/pybabel -q update -i translations/messages.pot -d translations -D messages --no-fuzzy-matching

clean:
	rm -rf $(VENV) instance/portal.db
