# Package the sources rtl/realm_accel.f lists as the IP realm_hil:hil:realm_accel:1.0 into <build>/ip, with the
# register map from registers.tcl so that the .hwh (and PYNQ's register_map) carries it.
# Tested with Vivado 2024.1.

source [file join [file dirname [info script]] env.tcl]
source [file join $realm_common registers.tcl]
source [file join $realm_common filelist.tcl]

set ip_dir [file join $realm_build ip]
file delete -force $ip_dir
create_project realm_accel_ip [file join $realm_build ip_project] -part $realm_part -force

set rtl [file join $realm_repo rtl]
add_files -norecurse [realm_filelist [file join $rtl realm_accel.f]]
add_files -norecurse [file join $rtl realm_regmap.vh]
set_property file_type {Verilog Header} [get_files realm_regmap.vh]
set_property top realm_accel [current_fileset]
update_compile_order -fileset sources_1

lassign [split $realm_ip_vlnv :] vendor library name version
ipx::package_project -root_dir $ip_dir -vendor $vendor -library $library -taxonomy /UserIP \
    -import_files -set_current true
set core [ipx::current_core]
set_property name $name $core
set_property version $version $core
set_property display_name "realm_accel INT8 systolic GEMM with ABFT statistics" $core
set_property description "N x N INT8 systolic array on array_clk; checksums and error statistics on aclk" $core
set_property supported_families {zynq Production zynquplus Production} $core

# aclk carries every bus; array_clk only clocks the feeder, array and drain inside the IP
foreach busif {s_axil s_axis m_axis} {
    ipx::associate_bus_interfaces -busif $busif -clock aclk $core
}
ipx::associate_bus_interfaces -clock aclk -reset aresetn $core
if {[llength [ipx::get_bus_interfaces array_clk -of_objects $core]] == 0} {
    ipx::infer_bus_interface array_clk xilinx.com:signal:clock_rtl:1.0 $core
}

set mmap [ipx::get_memory_maps s_axil -of_objects $core]
set block [ipx::get_address_blocks -of_objects $mmap]
if {[llength $block] != 1} {
    error "realm-hil: expected one inferred address block on s_axil, found [llength $block]"
}
set_property name reg0 $block
set_property range [expr {1 << $realm_regmap_addr_width}] $block
realm_add_registers $block $realm_n

ipx::create_xgui_files $core
ipx::update_checksums $core
ipx::check_integrity $core
ipx::save_core $core
close_project
