`resetall
`timescale 1ns / 1ps
`default_nettype none

// The accumulator update acc <- a + b under the timing-error model of
// docs/timing-error-model.md (rtl/README.md, "Processing element and timing-error
// emulation"): bits whose carry chain is longer than the slack L keep their old value from a.
// Combinational; the PEs and, with EMU_CHECKS, the checksum accumulators share it so that every
// emulated accumulator follows one rule.
module realm_timed_add (
  input  wire [31:0] a,
  input  wire [31:0] b,
  // quasi-static configuration: emulation on, signed slack L
  input  wire        timing_en,
  input  wire [7:0]  slack,
  output reg  [31:0] sum
);

  // L >= 31 can never be late in a 32-bit adder; L < 0 makes every bit late
  wire exact = !timing_en || (!slack[7] && (slack[6:5] != 2'b00 || slack[4:0] == 5'd31));
  wire frozen = timing_en && slack[7];
  wire [31:0] s = a + b;

  reg [31:0] prop;
  reg [31:0] run1;
  reg [31:0] run2;
  reg [31:0] run4;
  reg [31:0] run8;
  reg [31:0] run16;
  reg [31:0] run_l;
  reg [31:0] late;

  // The if/else skips the mask entirely for exact and frozen adders, also in the simulator;
  // the defaults keep the block free of latches.
  always @* begin
    prop = a ^ b;
    run1 = 32'd0;
    run2 = 32'd0;
    run4 = 32'd0;
    run8 = 32'd0;
    run16 = 32'd0;
    run_l = 32'd0;
    late = 32'd0;
    if (frozen) begin
      sum = a;
    end else if (exact) begin
      sum = s;
    end else begin
      // run_k[i] = &prop[i-1:i-k] (zeros shifted in), built by doubling in log2 steps
      run1 = prop << 1;
      run2 = run1 & (run1 << 1);
      run4 = run2 & (run2 << 2);
      run8 = run4 & (run4 << 4);
      run16 = run8 & (run8 << 8);
      // run_L from the set bits of L, using run_(2^j + m) = run_(2^j) & (run_m << 2^j):
      // fixed shifts only, no barrel shifter for the variable L
      run_l = slack[0] ? run1 : 32'hFFFFFFFF;
      if (slack[1]) run_l = run2 & (run_l << 2);
      if (slack[2]) run_l = run4 & (run_l << 4);
      if (slack[3]) run_l = run8 & (run_l << 8);
      if (slack[4]) run_l = run16 & (run_l << 16);
      // (s ^ prop) is the carry-in vector
      late = (s ^ prop) & run_l;
      sum = (s & ~late) | (a & late);
    end
  end

endmodule

`resetall
