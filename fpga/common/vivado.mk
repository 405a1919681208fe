# Vivado flow for one board, as file targets:
#   ip/component.xml -> project/realm_hil.xpr -> realm_hil.bit (+ .hwh, routed .dcp) -> timing.json
# timing.json exists only when the routed design meets timing at the board's rated array clock,
# so `make install` can never publish a bitstream that misses it.
# Tested with Vivado 2024.1.

FPGA_DIR := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)
REPO_DIR := $(abspath $(FPGA_DIR)/..)
COMMON := $(FPGA_DIR)/common
BOARDS := $(notdir $(patsubst %/,%,$(dir $(wildcard $(FPGA_DIR)/*/board.tcl))))

BOARD ?= pynq-z2
BOARD_TCL := $(FPGA_DIR)/$(BOARD)/board.tcl
BUILD := $(FPGA_DIR)/build/$(BOARD)
INSTALL_DIR := $(REPO_DIR)/bitstreams/$(BOARD)

# package_ip.tcl adds what rtl/realm_accel.f lists; a change to any source or list repackages the IP
RTL := $(wildcard $(REPO_DIR)/rtl/*.v $(REPO_DIR)/rtl/*.f) $(REPO_DIR)/rtl/realm_regmap.vh
PYTHON ?= $(firstword $(wildcard $(REPO_DIR)/.venv/bin/python) python3)
VIVADO ?= vivado
VIVADO_RUN = cd $(BUILD) && $(VIVADO) -mode batch -nolog -nojournal -notrace -source
ARGS = -tclargs $(BOARD_TCL) $(BUILD) $(REPO_DIR)
# parallel synthesis/implementation jobs inside Vivado
JOBS ?= 4
export REALM_JOBS := $(JOBS)
# folders (colon-separated) holding board files Vivado does not install itself (board_part.tcl);
# the environment's REALM_BOARD_REPO unless given
BOARD_REPO ?= $(REALM_BOARD_REPO)
export REALM_BOARD_REPO := $(BOARD_REPO)

ifeq ($(filter $(BOARD),$(BOARDS)),)
$(error unknown BOARD=$(BOARD); known boards: $(BOARDS))
endif

# Goals that run no Vivado; `install` only copies an existing, timing-clean build.
ifneq ($(filter-out clean install registers,$(or $(MAKECMDGOALS),all)),)
ifeq ($(shell command -v $(VIVADO)),)
$(error Vivado 2024.1 is needed: source <Xilinx>/Vivado/2024.1/settings64.sh so that `$(VIVADO)` is on PATH)
endif
endif

.DELETE_ON_ERROR:
.PHONY: all install clean registers

all: $(BUILD)/timing.json

$(BUILD)/ip/component.xml: $(COMMON)/env.tcl $(COMMON)/package_ip.tcl $(COMMON)/registers.tcl $(COMMON)/filelist.tcl \
		$(BOARD_TCL) $(RTL)
	mkdir -p $(BUILD)
	$(VIVADO_RUN) $(COMMON)/package_ip.tcl $(ARGS)

$(BUILD)/project/realm_hil.xpr: $(COMMON)/env.tcl $(COMMON)/build_bd.tcl $(COMMON)/board_part.tcl \
		$(COMMON)/constraints.tcl $(BUILD)/ip/component.xml
	$(VIVADO_RUN) $(COMMON)/build_bd.tcl $(ARGS)

$(BUILD)/realm_hil.bit: $(COMMON)/env.tcl $(COMMON)/build_bit.tcl $(BUILD)/project/realm_hil.xpr
	$(VIVADO_RUN) $(COMMON)/build_bit.tcl $(ARGS)

$(BUILD)/timing.json: $(COMMON)/env.tcl $(COMMON)/check_timing.tcl $(BUILD)/realm_hil.bit
	$(VIVADO_RUN) $(COMMON)/check_timing.tcl $(ARGS)

install:
	@test -f $(BUILD)/timing.json || { echo "no timing-clean build for $(BOARD): run make -C fpga BOARD=$(BOARD) first" >&2; exit 1; }
	mkdir -p $(INSTALL_DIR)
	cp $(BUILD)/realm_hil.bit $(BUILD)/realm_hil.hwh $(INSTALL_DIR)/
	$(PYTHON) -m realm_hil.fpga.manifest add --board $(BOARD) --board-tcl $(BOARD_TCL) --timing $(BUILD)/timing.json

registers:
	$(PYTHON) -m realm_hil.regmap_gen

clean:
	rm -rf $(BUILD)
