# Entry points; the README explains each. Override e.g. `make sweep GRID=params/full.yaml JOBS=4`.
PY ?= python3
GRID ?= params/quick.yaml
JOBS ?=

install:  ## torch first (a local build on these machines), the project with its test tools, chromium
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[test]'
	command -v chromium >/dev/null || { if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then \
	  SUDO=sudo; else echo "chromium missing and no root or sudo: the browser test will be skipped"; exit 0; fi; \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium; }

test:  ## unit tests, the papermill end-to-end test, and the notebooks with their tiny defaults
	$(PY) -m pytest -q --nbval-lax tests notebooks

quick:  ## trains the quick grid afresh (CPU, minutes) into build/reproduce, then compares with the published records
	$(PY) -m normlib.sweep params/quick.yaml --out build/reproduce
	$(PY) -m normlib.compare build/reproduce/quick reports/quick

full:  ## the original's grid (use a GPU) -> reports/full/report.html
	$(PY) -m normlib.sweep params/full.yaml

sweep:
	$(PY) -m normlib.sweep $(GRID) $(if $(JOBS),--jobs $(JOBS))

.PHONY: install test quick full sweep
