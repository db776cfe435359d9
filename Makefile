# Set-up is part of every target: a fresh clone needs only `make run` or `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.nmhpo-installed

.PHONY: run test lint format bench clean

# torch comes from requirements-torch.txt (2.13.0, the CPU build) before nmhpo, so pip never
# resolves nmhpo's open torch range to a multi-GB CUDA build.
$(STAMP): pyproject.toml requirements-torch.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-torch.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/nmhpo run studies/quickstart.toml

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check nmhpo tests benchmarks
	$(VENV)/bin/ruff format --check nmhpo tests benchmarks
	$(VENV)/bin/mypy nmhpo

format: $(STAMP)
	$(VENV)/bin/ruff format nmhpo tests benchmarks
	$(VENV)/bin/ruff check --fix nmhpo tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/bench_crossbar.py

clean:
	rm -rf $(VENV) studies/nmhpo-studies.db studies/nmhpo-report
