# Check the routed design: every setup and hold slack >= 0 with array_clk at the board's rated
# frequency. On success write <build>/timing.json (read by `make install`); otherwise exit 1.
# The full report is <build>/timing_summary.rpt either way.
# Tested with Vivado 2024.1.

source [file join [file dirname [info script]] env.tcl]

open_checkpoint [file join $realm_build realm_hil_routed.dcp]
report_timing_summary -max_paths 10 -report_unconstrained -file [file join $realm_build timing_summary.rpt]

proc realm_worst {kind} {
    set path [get_timing_paths -$kind -max_paths 1 -nworst 1]
    if {$path eq ""} {
        error "realm-hil: no $kind timing paths; the design is unconstrained"
    }
    return [get_property SLACK $path]
}
set wns [realm_worst setup]
set whs [realm_worst hold]

set clk [get_clocks -of_objects [get_pins -hierarchical -filter {NAME =~ */realm_accel/array_clk}]]
set array_mhz [expr {1000.0 / [get_property PERIOD $clk]}]
set problems {}
if {$wns < 0} { lappend problems "setup WNS $wns ns" }
if {$whs < 0} { lappend problems "hold WHS $whs ns" }
# The wizard rounds the requested frequency to what its MMCM dividers can make.
if {$array_mhz < $realm_rated_mhz * 0.999} {
    lappend problems [format "array_clk constrained at %.3f MHz, below the rated %s MHz" $array_mhz $realm_rated_mhz]
}
if {[llength $problems] > 0} {
    puts "ERROR: realm-hil: timing not met at the rated array clock: [join $problems {; }] (see timing_summary.rpt)"
    exit 1
}

set fh [open [file join $realm_build timing.json] w]
puts $fh [format {{"vivado_version": "%s", "part": "%s", "wns_ns": %.3f, "whs_ns": %.3f, "array_clk_mhz": %.3f, "rated_mhz": %s, "safe_mhz": %s}} \
    [version -short] $realm_part $wns $whs $array_mhz $realm_rated_mhz $realm_safe_mhz]
close $fh
puts [format "realm-hil: timing met, WNS %.3f ns, WHS %.3f ns, array_clk %.3f MHz" $wns $whs $array_mhz]
