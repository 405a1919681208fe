# The board files a build uses. A stock Vivado 2024.1 installs those of AMD's own evaluation kits
# (ZCU104) but not those of the Vivado board store (TUL's PYNQ-Z2, the Kria KV260 SOM), so
# `set_property board_part` alone fails there. As the vendors' own designs do, the board store's
# local folder and the folders in $REALM_BOARD_REPO (make BOARD_REPO=...) are added to
# board.repoPaths and the newest installed version is looked up; failing that the board is
# installed from the store; failing that a PS7 board is built from its part alone, its PS set up
# from board.tcl's realm_ps_part_preset; otherwise the build stops with a one-line instruction.
# Plain Tcl around Vivado's commands, so the tests run it in tclsh with stand-ins for them.
# Tested with Vivado 2024.1.

# The board part for board.tcl's settings, or "" to build from the part alone.
proc realm_board_part {board pattern store_item part_preset} {
    set repos {}
    if {[info exists ::env(REALM_BOARD_REPO)]} {
        foreach dir [split $::env(REALM_BOARD_REPO) :] {
            if {$dir ne ""} {
                lappend repos [file normalize $dir]
            }
        }
    }
    if {![catch {get_property LOCAL_ROOT_DIR [xhub::get_xstores xilinx_board_store]} store_dir]} {
        lappend repos $store_dir
    }
    set_param board.repoPaths [concat [get_param board.repoPaths] $repos]

    set found [get_board_parts -quiet -latest_file_version $pattern]
    if {$found eq ""} {
        if {[catch {
            xhub::refresh_catalog [xhub::get_xstores xilinx_board_store]
            xhub::install [xhub::get_xitems $store_item]
        } why]} {
            set why [lindex [split $why \n] 0]
        } else {
            set found [get_board_parts -quiet -latest_file_version $pattern]
            set why "the store has no $store_item"
        }
    }
    if {$found ne ""} {
        return [lindex $found end]
    }
    if {$part_preset ne ""} {
        puts "WARNING: realm-hil: no board files $pattern ($why); building from the part alone with the PS settings of fpga/$board/board.tcl"
        return ""
    }
    puts "ERROR: realm-hil: no board files $pattern for $board, and the Vivado board store could not install them ($why): install them from Vivado (Tools > Vivado Store > Boards) or unpack them into a folder and run make -C fpga BOARD=$board BOARD_REPO=<folder>"
    exit 1
}
