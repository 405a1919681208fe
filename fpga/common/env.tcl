# Shared prologue of every script in this folder: arguments, board settings, tool version.
# Usage: vivado -mode batch -source <script>.tcl -tclargs <board.tcl> <build dir> <repo root>
# Tested with Vivado 2024.1.

if {[llength $argv] != 3} {
    error "usage: -tclargs <board.tcl> <build dir> <repo root>"
}
lassign $argv realm_board_tcl realm_build realm_repo
set realm_board_tcl [file normalize $realm_board_tcl]
set realm_build [file normalize $realm_build]
set realm_repo [file normalize $realm_repo]
set realm_common [file normalize [file dirname [info script]]]
source $realm_board_tcl

# The IP versions in build_bd.tcl (axi_dma 7.1, clk_wiz 6.0, PS) are those of 2024.1; a newer
# Vivado usually upgrades them, an older one may not have them.
set realm_tested_vivado 2024.1
if {[version -short] ne $realm_tested_vivado} {
    puts "WARNING: realm-hil: tested with Vivado $realm_tested_vivado, running [version -short]"
}

# BD cell names are host API (overlay attributes); they come from stream.bd_cells in rtl/regmap.yaml
set realm_cell_accel realm_accel
set realm_cell_dma dma
set realm_cell_clk_wiz clk_wiz
set realm_ip_vlnv realm_hil:hil:realm_accel:1.0
