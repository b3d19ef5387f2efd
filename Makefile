# Every target sets itself up from nothing: a fresh clone needs only python3 (>= 3.11).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# torch is pinned to the CPU build that lies on disk here; on a GPU box use TORCH_SPEC="torch"
# (or the Docker image in deploy/), which brings the CUDA build.
TORCH_SPEC ?= torch==2.13.0

.PHONY: install demo test lint format run clean toyworld-weights

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/yollava demo

run: $(STAMP)
	$(BIN)/yollava run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

# The shipped toy-world weights (personalization/toyworld/weights/README.md): the vision tower and
# main stage, saved, then the finishing stages on that model (27.3 + 13.3 minutes on the
# eighteenth session's 2 cores). The saved main stage lets a finishing recipe be tried again in
# minutes.
TOYWORLD_RUN ?= toyworld-run
toyworld-weights: $(STAMP)
	$(BIN)/yollava toyworld pretrain --seed 0 --minutes 60 --no-finishing --eval-scenes 0 --out $(TOYWORLD_RUN)/main
	$(BIN)/yollava toyworld pretrain --from $(TOYWORLD_RUN)/main --steps 0 --seed 0 --minutes 25 --eval-scenes 100 --out $(TOYWORLD_RUN)/weights
	@echo "weights in $(TOYWORLD_RUN)/weights; copy them into personalization/toyworld/weights/"

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
