# The two commands of the README's Quick start, and a few for developers.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

run: $(STAMP)
	$(BIN)/python manage.py run

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	@for b in bench/*.py; do $(BIN)/python -m bench.$$(basename $$b .py) || exit 1; done

$(STAMP): requirements.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	# The media engine's compiled passes (numba), compiled once here, not in a first call.
	$(BIN)/python -c "from media.rtp.batch import warm_up; warm_up()"
	touch $(STAMP)

clean:
	rm -rf $(VENV) var .pytest_cache
