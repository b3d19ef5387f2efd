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

# The shipped toy-world weights: the default pretraining run, then three short lessons on it
# (personalization/toyworld/weights/README.md). ~44 minutes on 2 cores with native bf16.
TOYWORLD_RUN ?= toyworld-run
LESSON := --set reading_steps=0 --set binding_steps=0 --set binding_ideal_share=0.5 \
	--set ideal_share=0 --set warmup_steps=20
toyworld-weights: $(STAMP)
	$(BIN)/yollava toyworld pretrain --seed 0 --minutes 30 --eval-scenes 100 --out $(TOYWORLD_RUN)/base
	$(BIN)/yollava toyworld pretrain --from $(TOYWORLD_RUN)/base --seed 7 --out $(TOYWORLD_RUN)/spotting \
		--eval-scenes 0 $(LESSON) --set steps=300 --set spotting_steps=300 --set binding_every=0
	$(BIN)/yollava toyworld pretrain --from $(TOYWORLD_RUN)/spotting --seed 8 --out $(TOYWORLD_RUN)/checking \
		--eval-scenes 0 $(LESSON) --set steps=300 --set checking_steps=300 --set binding_every=0
	$(BIN)/yollava toyworld pretrain --from $(TOYWORLD_RUN)/checking --seed 9 --out $(TOYWORLD_RUN)/final \
		$(LESSON) --set steps=201 --set checking_steps=1 --set comparison_every=4 --set binding_every=3 \
		--eval-scenes 100 --eval-seed 1000
	@echo "weights in $(TOYWORLD_RUN)/final; copy them into personalization/toyworld/weights/"

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
