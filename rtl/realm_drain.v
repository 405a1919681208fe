`resetall
`timescale 1ns / 1ps
`default_nettype none

// Result drain: sends a tile's N result rows in order, one row per accepted beat, straight from
// the PEs' capture registers. The last beat's tag completes row r exactly r cycles after row 0
// and the drain sends at most one row per cycle, so it starts as soon as row 0 is complete and
// never overtakes the capture wavefront; this keeps the hazard window at about 2N cycles.
module realm_drain #(
  // array rows = columns
  parameter N = 8
) (
  input  wire                 clk,
  input  wire                 rst,
  // row 0 holds a new tile's results from this cycle on; row r follows r cycles later
  input  wire                 row0_done,
  output wire [RW-1:0]        rd_row,
  input  wire [32*N-1:0]      rd_data,
  output wire [32*N-1:0]      res_data,
  output wire                 res_valid,
  input  wire                 res_ready,
  // the final row was accepted: the capture registers are free again
  output wire                 tile_drained
);

  localparam RW = $clog2(N);
  localparam integer LAST_ROW_INT = N - 1;
  localparam [RW-1:0] LAST_ROW = LAST_ROW_INT[RW-1:0];

  generate
    if (N < 2) begin : g_bad_n
      $fatal(1, "realm_drain: N must be >= 2");
    end
  endgenerate

  reg active;
  reg [RW-1:0] row;

  wire take = active && res_ready;

  assign rd_row = row;
  assign res_data = rd_data;
  assign res_valid = active;
  assign tile_drained = take && row == LAST_ROW;

  always @(posedge clk) begin
    if (rst) begin
      active <= 1'b0;
      row <= {RW{1'b0}};
    end else if (take) begin
      active <= row != LAST_ROW;
      row <= row == LAST_ROW ? {RW{1'b0}} : row + 1'b1;
    end else if (row0_done) begin
      active <= 1'b1;
    end
  end

endmodule

`resetall
