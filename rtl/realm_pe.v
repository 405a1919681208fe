`resetall
`timescale 1ns / 1ps
`default_nettype none

// Output-stationary INT8 MAC cell. x and its valid/first/last tag move right, w moves down, one
// cycle per cell. The accumulator update follows the timing-error model of
// shared/reference/timing-model.md (see rtl/README.md "Processing element").
module realm_pe #(
  // 1: the accumulator emulates timing errors from the per-PE slack; 0: plain wrapping adder
  parameter TIMING_EMU = 1
) (
  input  wire        clk,
  input  wire        rst,
  input  wire [7:0]  x_in,
  input  wire [7:0]  w_in,
  input  wire        valid_in,
  input  wire        first_in,
  input  wire        last_in,
  // quasi-static configuration: emulation on, signed slack L
  input  wire        timing_en,
  input  wire [7:0]  slack,
  output reg  [7:0]  x_out,
  output reg  [7:0]  w_out,
  output reg         valid_out,
  output reg         first_out,
  output reg         last_out,
  output reg  [31:0] result
);

  generate
    if (TIMING_EMU != 0 && TIMING_EMU != 1) begin : g_bad_timing_emu
      $fatal(1, "realm_pe: TIMING_EMU must be 0 or 1");
    end
  endgenerate

  reg [31:0] acc;

  // sign-extended operands, so the low 16 bits of this unsigned product are the signed product
  wire [15:0] prod = {{8{x_in[7]}}, x_in} * {{8{w_in[7]}}, w_in};
  // the reset path of `first` is short and never late, so it simply replaces the old value
  wire [31:0] a = first_in ? 32'd0 : acc;
  wire [31:0] b = {{16{prod[15]}}, prod};
  wire [31:0] s = a + b;
  reg  [31:0] acc_next;

  generate
    if (TIMING_EMU != 0) begin : g_timing
      // L >= 31 can never be late in a 32-bit adder; L < 0 makes every bit late
      wire exact = !timing_en || (!slack[7] && (slack[6:5] != 2'b00 || slack[4:0] == 5'd31));
      wire frozen = timing_en && slack[7];

      reg [31:0] prop;
      reg [31:0] run1;
      reg [31:0] run2;
      reg [31:0] run4;
      reg [31:0] run8;
      reg [31:0] run16;
      reg [31:0] run_l;
      reg [31:0] late;

      // The if/else skips the mask entirely for exact and frozen PEs, also in the simulator;
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
          acc_next = a;
        end else if (exact) begin
          acc_next = s;
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
          acc_next = (s & ~late) | (a & late);
        end
      end
    end else begin : g_exact
      wire unused_timing = &{1'b0, timing_en, slack};

      always @* begin
        acc_next = s;
      end
    end
  endgenerate

  always @(posedge clk) begin
    x_out <= x_in;
    w_out <= w_in;
    first_out <= first_in;
    last_out <= last_in;
    // bubbles leave the accumulator alone, so stalls never change results
    if (valid_in) begin
      acc <= acc_next;
    end
    if (valid_in && last_in) begin
      result <= acc_next;
    end
  end

  always @(posedge clk) begin
    if (rst) begin
      valid_out <= 1'b0;
    end else begin
      valid_out <= valid_in;
    end
  end

endmodule

`resetall
