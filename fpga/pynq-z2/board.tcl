# PYNQ-Z2 (XC7Z020-1): the reference board. Read by every script in ../common.
# Tested with Vivado 2024.1.
set realm_part        xc7z020clg400-1
set realm_board_part  tul.com.tw:pynq-z2:part0:1.0
# PS: IP, board-preset automation, extra settings, and the pins build_bd.tcl connects
set realm_ps_vlnv     xilinx.com:ip:processing_system7:5.5
set realm_ps_rule     xilinx.com:bd_rule:processing_system7
set realm_ps_preset   {make_external "FIXED_IO, DDR" apply_board_preset "1" Master "Disable" Slave "Disable"}
set realm_ps_config   {CONFIG.PCW_USE_S_AXI_HP0 1 CONFIG.PCW_USE_M_AXI_GP0 1}
set realm_ps_clk_param CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ
set realm_ps_master   M_AXI_GP0
set realm_hp_port     S_AXI_HP0
set realm_safe_clk    FCLK_CLK0
# array size: 64 DSP48E1 of 220, leaving room for the checking logic
set realm_n           8
# aclk (checking logic, AXI, DMA) in MHz; fixed PS clock
set realm_safe_mhz    100
# array_clk in MHz at which implementation must close timing; overclocking starts above it
set realm_rated_mhz   100
# HP0 is 64 bits wide and the PS7 address space 32 bits
set realm_dma_addr_width 32
