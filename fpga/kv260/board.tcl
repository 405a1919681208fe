# Kria KV260 (K26 SOM, XCK26-2LV): Zynq UltraScale+ MPSoC. Read by every script in ../common.
# Tested with Vivado 2024.1.
set realm_part        xck26-sfvc784-2LV-c
# the K26 SOM's board files come from the Vivado board store, not with Vivado (common/board_part.tcl)
set realm_board_part  *:kv260_som:part0:*
set realm_board_store_item *:xilinx_board_store:kv260_som:*
# PS: IP, automation (the board preset is added when the board files are there), extra settings, and
# the pins build_bd.tcl connects
set realm_ps_vlnv     xilinx.com:ip:zynq_ultra_ps_e:3.5
set realm_ps_rule     xilinx.com:bd_rule:zynq_ultra_ps_e
set realm_ps_automation {}
# HPM1 is off: enabled but unused it would leave its clock pin unconnected
set realm_ps_config   {CONFIG.PSU__USE__S_AXI_GP2 1 CONFIG.PSU__USE__M_AXI_GP0 1 CONFIG.PSU__USE__M_AXI_GP1 0}
# no PS settings without the board files: the board's DDR4 and MIO setup comes only from its preset
set realm_ps_part_preset {}
set realm_ps_clk_param CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ
set realm_ps_master   M_AXI_HPM0_FPD
set realm_hp_port     S_AXI_HP0_FPD
set realm_safe_clk    pl_clk0
# array size: 256 DSP48E2 of 1,248
set realm_n           16
# aclk (checking logic, AXI, DMA) in MHz; fixed PS clock
set realm_safe_mhz    100
# array_clk in MHz at which implementation must close timing; the -2LV part runs at 0.72 V, so
# it is rated below the ZCU104
set realm_rated_mhz   170
# PYNQ on ZynqMP may hand out buffers above 4 GiB
set realm_dma_addr_width 64
