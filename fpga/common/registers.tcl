# generated from rtl/regmap.yaml by realm_hil.regmap_gen; do not edit
# Tested with Vivado 2024.1.

set realm_regmap_version 0x00010001
set realm_regmap_addr_width 14

# One 32-bit register; `fields` is a flat list of name msb lsb. PYNQ's register_map needs at
# least one field per register, so a register without fields gets one spanning the word.
proc realm_reg {block name offset access doc fields} {
    set reg [ipx::add_register $name $block]
    set_property address_offset $offset $reg
    set_property size 32 $reg
    set_property access $access $reg
    set_property description $doc $reg
    if {[llength $fields] == 0} {
        set fields [list $name 31 0]
    }
    foreach {field msb lsb} $fields {
        set f [ipx::add_field $field $reg]
        set_property bit_offset $lsb $f
        set_property bit_width [expr {$msb - $lsb + 1}] $f
        set_property access $access $f
    }
}

# Every register of the map into address block `block`; `n` is the array size N of this build.
proc realm_add_registers {block n} {
    realm_reg $block ID 0x0000 read-only {constant 0x5245414C} {}
    realm_reg $block VERSION 0x0004 read-only {register-map version} {}
    realm_reg $block PARAMS 0x0008 read-only {build parameters} {N 7 0 TIMING_EMU 8 8 INJECT 9 9 EMU_CHECKS 10 10}
    realm_reg $block CTRL 0x000C write-only {self-clearing command bits} {SOFT_RESET 0 0 CLEAR_STATS 1 1}
    realm_reg $block STATUS 0x0010 read-only {datapath status} {BUSY 0 0 FRAMING_ERR 1 1}
    realm_reg $block CONFIG 0x0014 read-write {datapath options} {TIMING_EN 0 0 INJ_EN 1 1 INJ_MATCH_TAG 2 2}
    realm_reg $block POLICY 0x0018 read-write {recover policy: 0 off, 1 classic, 2 approx, 3 statistical} {MODE 1 0}
    realm_reg $block ALPHA 0x001C read-write {theta_mag slope, signed Q8.8 in [15:0]} {}
    realm_reg $block BETA 0x0020 read-write {theta_mag offset, signed Q8.8 in [15:0]} {}
    realm_reg $block FREQ_MIN 0x0024 read-write {statistical: recover when freq_eff >= FREQ_MIN [15:0]} {}
    realm_reg $block MSD_THRESH_LO 0x0028 read-write {approx: recover when msd > MSD_THRESH (low word)} {}
    realm_reg $block MSD_THRESH_HI 0x002C read-write {approx threshold, high word} {}
    realm_reg $block INJ_TAG 0x0030 read-write {test-only: tile tag to inject into when INJ_MATCH_TAG [15:0]} {}
    realm_reg $block TILES_DONE 0x0040 read-only {tiles completed since clear} {}
    realm_reg $block TILES_ERR 0x0044 read-only {tiles with a nonzero row or column deviation} {}
    realm_reg $block TILES_RECOVER 0x0048 read-only {tiles whose recover flag was set} {}
    realm_reg $block FREQ_TOTAL 0x004C read-only {sum of per-tile freq} {}
    realm_reg $block FREQ_EFF_TOTAL 0x0050 read-only {sum of per-tile freq_eff} {}
    realm_reg $block MAX_ABS 0x0054 read-only {max |d_j| over all tiles} {}
    realm_reg $block MSD_TOTAL_LO 0x0058 read-only {sum of per-tile msd, low word} {}
    realm_reg $block MSD_TOTAL_HI 0x005C read-only {sum of per-tile msd, high word} {}
    realm_reg $block ROW_FREQ_TOTAL 0x0060 read-only {sum of per-tile row_freq} {}
    realm_reg $block BUSY_CYCLES_LO 0x0064 read-only {aclk cycles with BUSY set since clear, low word} {}
    realm_reg $block BUSY_CYCLES_HI 0x0068 read-only {busy cycles, high word} {}
    for {set i 0} {$i < 32} {incr i} {
        realm_reg $block HIST_$i [format 0x%04X [expr {0x0080 + 4 * $i}]] read-only {sum of per-tile log2|d_j| histogram bins, bin b = floor(log2|d_j|)} {}
    }
    for {set i 0} {$i < $n*$n} {incr i} {
        realm_reg $block L_TABLE_$i [format 0x%04X [expr {0x1000 + 4 * $i}]] read-write {per-PE timing slack L (signed 8-bit in [7:0]; PE r,c at index r*N+c; >= 31 exact, < 0 every bit late); reset 31} {}
    }
    for {set i 0} {$i < $n*$n} {incr i} {
        realm_reg $block INJ_TABLE_$i [format 0x%04X [expr {0x2000 + 4 * $i}]] read-write {test-only XOR masks applied to result (r,c) when CONFIG.INJ_EN; only with INJECT=1} {}
    }
    for {set i 0} {$i < 3*$n} {incr i} {
        realm_reg $block CK_L_TABLE_$i [format 0x%04X [expr {0x3000 + 4 * $i}]] read-write {checksum accumulator timing slack L (signed 8-bit in [7:0]; index c: -r_c, N + r: -q_r, 2N + c: d_c; as L_TABLE); only with EMU_CHECKS=1; reset 31} {}
    }
}
