# Clock-crossing constraints between aclk (safe, checking logic) and array_clk (scalable, array).
# Unmanaged Tcl constraints (loops over instances), read in implementation only.
# Tested with Vivado 2024.1.
#
# The two clocks are asynchronous: the host moves array_clk at run time, so the phase relation
# Vivado derives from the MMCM means nothing. set_clock_groups -asynchronous would say so, but
# clock groups take precedence over set_max_delay (UG903) and would leave the FIFO RAM and Gray
# pointer paths unbounded. Datapath-only max delays between the two clocks drop the clock
# relation just the same and keep every crossing bounded. Configuration that crosses (L table,
# CONFIG.TIMING_EN) is quasi-static and falls under the same bound.

proc realm_clock_on {pin} {
    set clk [get_clocks -quiet -of_objects [get_pins -hierarchical -filter "NAME =~ */realm_accel/$pin"]]
    if {[llength $clk] != 1} {
        error "realm-hil: expected one clock on realm_accel/$pin, found {$clk}"
    }
    return $clk
}

set aclk [realm_clock_on aclk]
set array_clk [realm_clock_on array_clk]
set cdc_ns [expr {min([get_property PERIOD $aclk], [get_property PERIOD $array_clk])}]

set_max_delay -datapath_only -from $aclk -to $array_clk $cdc_ns
set_max_delay -datapath_only -from $array_clk -to $aclk $cdc_ns

# A Gray pointer is only safe if all its bits arrive within one destination period of each other.
foreach fifo [get_cells -hierarchical -filter {ORIG_REF_NAME == realm_async_fifo || REF_NAME == realm_async_fifo}] {
    foreach ptr {wr_gray rd_gray} {
        set_bus_skew -from [get_cells $fifo/${ptr}_reg[*]] -to [get_cells $fifo/${ptr}_meta_reg[*]] $cdc_ns
    }
}

# Reset synchronizers assert asynchronously by design; only their release is timed (in their
# own clock domain, through the flop chain).
foreach sync [get_cells -hierarchical -filter {ORIG_REF_NAME == realm_reset_sync || REF_NAME == realm_reset_sync}] {
    set_false_path -to [get_pins -of_objects [get_cells $sync/sync_reg[*]] -filter {REF_PIN_NAME == PRE || REF_PIN_NAME == CLR}]
}
