# Create <build>/project with the block design realm_hil: PS (its board preset, or without the
# board files board.tcl's realm_ps_part_preset; see board_part.tcl) with one HP port,
# AXI DMA in simple mode, the realm_accel IP and a Clocking Wizard whose AXI4-Lite dynamic
# reconfiguration port lets the host move array_clk while aclk stays at the fixed PS clock.
# Interconnect, clocks and resets come from apply_bd_automation, not from a write_bd_tcl dump.
# Tested with Vivado 2024.1.

source [file join [file dirname [info script]] env.tcl]
source [file join $realm_common board_part.tcl]

set board_part [realm_board_part [file tail [file dirname $realm_board_tcl]] $realm_board_part \
    $realm_board_store_item $realm_ps_part_preset]
create_project realm_hil [file join $realm_build project] -part $realm_part -force
if {$board_part ne ""} {
    set_property board_part $board_part [current_project]
}
set_property ip_repo_paths [file join $realm_build ip] [current_project]
update_ip_catalog

create_bd_design realm_hil

set ps [create_bd_cell -type ip -vlnv $realm_ps_vlnv ps]
apply_bd_automation -rule $realm_ps_rule \
    -config [concat $realm_ps_automation [list apply_board_preset [expr {$board_part ne ""}]]] $ps
if {$board_part eq ""} {
    set_property -dict $realm_ps_part_preset $ps
}
set_property -dict $realm_ps_config $ps
set_property $realm_ps_clk_param $realm_safe_mhz $ps
# The PS makes the safe clock from its own PLL: 100 MHz on the PS7 (from the PYNQ-Z2's 50 MHz
# crystal), 99.999 MHz on ZynqMP boards (33.333 MHz reference). The automation names clocks by the
# label Vivado gives them, whole MHz cut off ("/ps/pl_clk0 (99 MHz)"), and the wizard's input is
# what the pin really carries, so both come from the pin's FREQ_HZ.
set safe_hz [get_property CONFIG.FREQ_HZ [get_bd_pins ps/$realm_safe_clk]]
set safe_clk [format "/ps/%s (%d MHz)" $realm_safe_clk [expr {int($safe_hz / 1000000.0)}]]

# Stream widths follow the accelerator: 16N-bit operand beats in, 32N-bit result beats out. The
# memory side is as wide as the stream (the DMA requires it); the interconnect converts to the
# HP port width.
set dma [create_bd_cell -type ip -vlnv xilinx.com:ip:axi_dma:7.1 $realm_cell_dma]
set_property -dict [list \
    CONFIG.c_include_sg 0 \
    CONFIG.c_sg_length_width 26 \
    CONFIG.c_addr_width $realm_dma_addr_width \
    CONFIG.c_m_axis_mm2s_tdata_width [expr {16 * $realm_n}] \
    CONFIG.c_m_axi_mm2s_data_width [expr {16 * $realm_n}] \
    CONFIG.c_s_axis_s2mm_tdata_width [expr {32 * $realm_n}] \
    CONFIG.c_m_axi_s2mm_data_width [expr {32 * $realm_n}] \
    CONFIG.c_mm2s_burst_size 16 \
    CONFIG.c_s2mm_burst_size 16 \
] $dma

# TIMING_EMU=0: the FPGA's own adders make the timing errors; INJECT=0: no test-only XOR table
set accel [create_bd_cell -type ip -vlnv $realm_ip_vlnv $realm_cell_accel]
set_property -dict [list CONFIG.N $realm_n CONFIG.TIMING_EMU 0 CONFIG.INJECT 0] $accel

# The wizard starts at the rated clock; the host reprograms it through s_axi_lite. Its input is
# the PS clock already on a global buffer. Safe clock start-up gates array_clk off (BUFGCE) until
# the MMCM has locked, at power-up and after every reconfiguration, so the array sees a stopped
# clock rather than a glitching one; the host waits for LOCKED in the wizard's status register
# and then resets the array side (CTRL.SOFT_RESET), see host/realm_hil/backends/board_clock.py.
set wiz [create_bd_cell -type ip -vlnv xilinx.com:ip:clk_wiz:6.0 $realm_cell_clk_wiz]
set_property -dict [list \
    CONFIG.USE_DYN_RECONFIG true \
    CONFIG.INTERFACE_SELECTION Enable_AXI \
    CONFIG.PRIM_SOURCE No_buffer \
    CONFIG.PRIM_IN_FREQ [format %.3f [expr {$safe_hz / 1000000.0}]] \
    CONFIG.CLKOUT1_REQUESTED_OUT_FREQ $realm_rated_mhz \
    CONFIG.USE_SAFE_CLOCK_STARTUP true \
    CONFIG.USE_LOCKED true \
    CONFIG.USE_RESET false \
] $wiz
connect_bd_net [get_bd_pins ps/$realm_safe_clk] [get_bd_pins $realm_cell_clk_wiz/clk_in1]
connect_bd_net [get_bd_pins $realm_cell_clk_wiz/clk_out1] [get_bd_pins $realm_cell_accel/array_clk]

foreach slave [list $realm_cell_dma/S_AXI_LITE $realm_cell_accel/s_axil $realm_cell_clk_wiz/s_axi_lite] {
    apply_bd_automation -rule xilinx.com:bd_rule:axi4 -config [list \
        Clk_master $safe_clk Clk_slave $safe_clk Clk_xbar $safe_clk \
        Master /ps/$realm_ps_master Slave /$slave ddr_seg Auto intc_ip Auto master_apm 0 \
    ] [get_bd_intf_pins $slave]
}
foreach master [list $realm_cell_dma/M_AXI_MM2S $realm_cell_dma/M_AXI_S2MM] {
    apply_bd_automation -rule xilinx.com:bd_rule:axi4 -config [list \
        Clk_master $safe_clk Clk_slave $safe_clk Clk_xbar $safe_clk \
        Master /$master Slave /ps/$realm_hp_port ddr_seg Auto intc_ip Auto master_apm 0 \
    ] [get_bd_intf_pins $master]
}

connect_bd_intf_net [get_bd_intf_pins $realm_cell_dma/M_AXIS_MM2S] [get_bd_intf_pins $realm_cell_accel/s_axis]
connect_bd_intf_net [get_bd_intf_pins $realm_cell_accel/m_axis] [get_bd_intf_pins $realm_cell_dma/S_AXIS_S2MM]

assign_bd_address
validate_bd_design
save_bd_design

set bd [get_files realm_hil.bd]
# One global synthesis run: the CDC constraints then see the accelerator's cells by name
set_property synth_checkpoint_mode None $bd
generate_target all $bd
add_files -norecurse [make_wrapper -files $bd -top]
set_property top realm_hil_wrapper [current_fileset]

add_files -fileset constrs_1 -norecurse [file join $realm_common constraints.tcl]
set_property used_in_synthesis false [get_files constraints.tcl]
update_compile_order -fileset sources_1
close_project
