# Entry points; README.md says which to use when. Override e.g. `make sweep GRID=params/full.yaml JOBS=4`.
PY ?= python3
GRID ?= params/quick.yaml
JOBS ?=

install:  ## pip-installs torch, then normlib with its test tools, into $(PY)'s environment (use a virtual environment)
	@echo "installing into $$($(PY) -c 'import sys; print(sys.prefix)'): torch 2.14.1, torchvision 0.29.1, normlib (editable) with pytest, pytest-xdist, nbval, playwright"
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[test]'

browser:  ## installs chromium with apt (a system package: needs root or sudo) for the report's browser test
	@command -v chromium >/dev/null && echo "chromium is installed: $$(command -v chromium)" || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; \
	  else echo "chromium missing and no root or sudo: the browser test will be skipped"; exit 0; fi; \
	  echo "apt-get install chromium (a system package)"; $$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium; }

slurm:  ## installs Debian's slurm-wlm and munge with apt (system packages: need root or sudo, and Debian enables their services at boot) for the Slurm tests
	@command -v slurmctld >/dev/null && command -v munged >/dev/null && echo "slurm is installed: $$(command -v slurmctld)" || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; \
	  else echo "slurm missing and no root or sudo: the Slurm tests will be skipped"; exit 0; fi; \
	  echo "apt-get install slurm-wlm munge (system packages)"; \
	  $$SUDO apt-get update -q && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge && \
	  echo "note: Debian enables the munge, slurmctld and slurmd services at boot; the tests start their own cluster and" \
	       "need none of them: \`systemctl disable munge slurmctld slurmd\` turns that off"; }

slurm-up:  ## starts the single-node Slurm cluster the tests use (root; `make slurm` installs it) in build/slurm, and says how to run a sweep inside it
	$(PY) tests/helpers/slurmcluster.py up build/slurm

slurm-down:  ## stops the cluster of make slurm-up, by the PIDs it recorded, and removes build/slurm
	$(PY) tests/helpers/slurmcluster.py down build/slurm

test-fast:  ## every module's logic, in minutes: no kernels, papermill, browser, Dask workers, Slurm, torch subprocesses or torch.compile; one pytest worker per core
	$(PY) -m pytest -q -rs -n auto -m "not slow" tests

test:  ## everything (what CI runs): the fast tests, the slow ones, and the notebooks with their tiny defaults; two pytest workers, each test file (a notebook's cells, a module's fixtures) in one
	$(PY) -m pytest -q -n 2 --dist loadfile --durations=15 --nbval-lax tests notebooks

quick:  ## trains the quick grid (CPU) into build/reproduce, then compares with the published records (-> build/reproduce/quick/compare.md)
	@test ! -d build/reproduce/quick/runs || echo "build/reproduce/quick holds an earlier rerun: its complete runs are kept, not trained again (make clean starts afresh)"
	$(PY) -m normlib.sweep params/quick.yaml --out build/reproduce
	$(PY) -m normlib.compare build/reproduce/quick reports/quick --write build/reproduce/quick/compare.md

clean:  ## removes build/ (make quick's rerun and its comparison); never touches reports/
	rm -rf build

full:  ## the original's grid (use a GPU) -> reports/full/report.html
	$(PY) -m normlib.sweep params/full.yaml

sweep:
	$(PY) -m normlib.sweep $(GRID) $(if $(JOBS),--jobs $(JOBS))

.PHONY: install browser slurm slurm-up slurm-down test-fast test quick clean full sweep
