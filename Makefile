# The two commands of a fresh machine: `make demo` and `make test`. Both set up .venv themselves.
PY := .venv/bin/python
export PYTHONUNBUFFERED := 1

.PHONY: setup test lint format demo bench gpu-check dashboard notebooks clean

setup:
	@bash scripts/setup_env.sh

lint: setup
	@$(PY) -m ruff check .
	@$(PY) -m ruff format --check .

format: setup
	@$(PY) -m ruff format .
	@$(PY) -m ruff check --fix .
	@$(PY) -m jupytext --quiet --update --to ipynb notebooks/*.py  # the notebooks from their sources

test: lint
	@$(PY) -m pytest -q --nbmake tests notebooks

demo: setup
	@$(PY) -m dmlviz demo

# JupyterLab on the teaching notebooks, on this machine only, with .venv's Python as the kernel.
notebooks: setup
	@$(PY) -m jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.root_dir=notebooks \
		$(if $(filter 0,$(shell id -u)),--ServerApp.allow_root=True)  # root: containers, CI

bench: setup
	@$(PY) benchmarks/run_all.py

# On a GPU machine: CUDA tests, losses on CUDA vs CPU, ResNet-50 step time, torchrun (< 8 min).
# Without CUDA it says so and exits 0.
gpu-check: setup
	@$(PY) benchmarks/gpu_check.py

clean:
	rm -rf .venv .pytest_cache .ruff_cache
