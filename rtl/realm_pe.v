`resetall
`timescale 1ns / 1ps
`default_nettype none

// Output-stationary INT8 MAC cell. x and its valid/first/last tag move right, w moves down, one
// cycle per cell. The accumulator update follows the timing-error model of
// docs/timing-error-model.md through realm_timed_add (see rtl/README.md "Processing element").
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
  wire [31:0] acc_next;

  generate
    if (TIMING_EMU != 0) begin : g_timing
      realm_timed_add u_add (
        .a(a),
        .b(b),
        .timing_en(timing_en),
        .slack(slack),
        .sum(acc_next)
      );
    end else begin : g_exact
      wire unused_timing = &{1'b0, timing_en, slack};

      assign acc_next = a + b;
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
