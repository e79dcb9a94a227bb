# `make run` serves the API on the embedded SQLite default; `make test` runs every check. Both set up .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# Two pytest-xdist workers, each test file (with its module fixtures) on one; PYTEST_ARGS="-n 0" runs in one process.
PYTEST_ARGS ?= -n 2 --dist loadfile

.PHONY: run test install lint security migrate serve bench load clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the pinned requirements change.
$(VENV)/.installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

migrate: install
	$(BIN)/alembic upgrade head

run: migrate
	$(BIN)/uvicorn main:app --host $(HOST) --port $(PORT) --loop uvloop --http httptools --no-access-log --no-proxy-headers

# Production serving, as in the Docker image: migrate, then gunicorn with WEB_CONCURRENCY uvicorn workers.
serve: install
	PYTHON=$(BIN)/python HOST=$(HOST) PORT=$(PORT) scripts/start.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

security: install
	$(BIN)/bandit -c pyproject.toml -r . --severity-level medium --quiet

test: install lint security
	$(BIN)/pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m bench.run

load: install
	$(BIN)/locust -f tests/load_test.py --headless -u 50 -r 10 -t 60s --host http://$(HOST):$(PORT)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache htmlcov .coverage .hypothesis
