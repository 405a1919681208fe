# Synthesize, implement and write the bitstream of <build>/project; copy realm_hil.bit, the
# matching realm_hil.hwh (same basename, as PYNQ expects) and the routed checkpoint to <build>.
# Tested with Vivado 2024.1.

source [file join [file dirname [info script]] env.tcl]

open_project [file join $realm_build project realm_hil.xpr]
set jobs [expr {[info exists ::env(REALM_JOBS)] ? $::env(REALM_JOBS) : 4}]
reset_run synth_1
launch_runs impl_1 -to_step write_bitstream -jobs $jobs
wait_on_run impl_1
if {[get_property PROGRESS [get_runs impl_1]] ne "100%"} {
    error "realm-hil: implementation failed: [get_property STATUS [get_runs impl_1]]"
}

set impl_dir [get_property DIRECTORY [get_runs impl_1]]
set hwh [lindex [get_files -all -of_objects [get_files realm_hil.bd] realm_hil.hwh] 0]
if {$hwh eq ""} {
    error "realm-hil: the block design produced no realm_hil.hwh"
}
file copy -force $hwh [file join $realm_build realm_hil.hwh]
file copy -force [file join $impl_dir realm_hil_wrapper_routed.dcp] [file join $realm_build realm_hil_routed.dcp]
# The .bit is copied last: it is the make target, so it must not exist without its companions.
file copy -force [file join $impl_dir realm_hil_wrapper.bit] [file join $realm_build realm_hil.bit]
close_project
