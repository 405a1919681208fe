# Verilog source lists (.f files), expanded by the rules of realm_hil/filelist.py: one path per entry,
# relative to the list's folder; an entry ending in .f is expanded in place; of entries with the same
# file name the last one wins, at its place. Plain Tcl, so the tests run it in tclsh.
# Tested with Vivado 2024.1.

# The source files `path` lists, nested lists expanded, one per file name.
proc realm_filelist {path} {
    set kept {}
    set names {}
    foreach file [lreverse [realm_filelist_flat [file normalize $path] {}]] {
        if {[file tail $file] ni $names} {
            lappend names [file tail $file]
            lappend kept $file
        }
    }
    return [lreverse $kept]
}

proc realm_filelist_flat {path including} {
    if {$path in $including} {
        error "realm-hil: source list $path includes itself"
    }
    if {![file isfile $path]} {
        error "realm-hil: source list $path does not exist"
    }
    set fh [open $path]
    set text [read $fh]
    close $fh
    set found {}
    foreach entry [regexp -all -inline {\S+} $text] {
        set file [file normalize [file join [file dirname $path] $entry]]
        if {[file extension $file] eq ".f"} {
            lappend found {*}[realm_filelist_flat $file [linsert $including end $path]]
        } elseif {[file isfile $file]} {
            lappend found $file
        } else {
            error "realm-hil: $path lists $entry, which does not exist"
        }
    }
    return $found
}
