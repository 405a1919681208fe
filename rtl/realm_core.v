`resetall
`timescale 1ns / 1ps
`default_nettype none

// Array clock domain of realm_accel: feeder -> N x N output-stationary array -> drain.
// Accepts one operand beat per cycle across tile boundaries as long as each tile has
// K >= 2N + 2 beats (a tile's last beat waits until the previous tile is drained).
module realm_core #(
  // array rows = columns
  parameter N = 8,
  // 1: PEs emulate timing errors from l_table when timing_en; 0: plain adders
  parameter TIMING_EMU = 1
) (
  input  wire               clk,
  input  wire               rst,
  // {last, first, beat}: beat[8N-1:0] byte r = X[r,k]; beat[16N-1:8N] byte c = W[k,c]
  input  wire [16*N+1:0]    op_data,
  input  wire               op_valid,
  output wire               op_ready,
  // one result row r: word c = Y[r][c]; rows r = 0..N-1 per tile, tiles in order
  output wire [32*N-1:0]    res_data,
  output wire               res_valid,
  input  wire               res_ready,
  input  wire               timing_en,
  // byte (r*N+c) = signed 8-bit slack L of PE(r,c) (quasi-static)
  input  wire [8*N*N-1:0]   l_table,
  output wire               busy
);

  localparam RW = $clog2(N);

  generate
    if (N < 2 || N > 32) begin : g_bad_n
      $fatal(1, "realm_core: N must be in 2..32");
    end
    if (TIMING_EMU != 0 && TIMING_EMU != 1) begin : g_bad_timing_emu
      $fatal(1, "realm_core: TIMING_EMU must be 0 or 1");
    end
  endgenerate

  // The configuration is retimed into this clock domain once (it comes from aclk registers and
  // only changes while idle). It also keeps the PE datapath off Verilator's input-combinational
  // pass, which would otherwise re-evaluate every PE on each eval() call, not once per clock edge.
  reg             timing_en_q;
  reg [8*N*N-1:0] l_table_q;

  always @(posedge clk) begin
    timing_en_q <= timing_en;
    l_table_q <= l_table;
  end

  wire [8*N-1:0]  x_rows;
  wire [N-1:0]    valid_rows;
  wire [N-1:0]    first_rows;
  wire [N-1:0]    last_rows;
  wire [8*N-1:0]  w_cols;
  wire            row0_done;
  wire            tile_drained;
  wire [RW-1:0]   rd_row;
  wire [32*N-1:0] rd_data;

  realm_feeder #(
    .N(N)
  ) u_feeder (
    .clk(clk),
    .rst(rst),
    .op_data(op_data),
    .op_valid(op_valid),
    .op_ready(op_ready),
    .tile_drained(tile_drained),
    .x_rows(x_rows),
    .valid_rows(valid_rows),
    .first_rows(first_rows),
    .last_rows(last_rows),
    .w_cols(w_cols),
    .busy(busy)
  );

  realm_array #(
    .N(N),
    .TIMING_EMU(TIMING_EMU)
  ) u_array (
    .clk(clk),
    .rst(rst),
    .x_rows(x_rows),
    .valid_rows(valid_rows),
    .first_rows(first_rows),
    .last_rows(last_rows),
    .w_cols(w_cols),
    .timing_en(timing_en_q),
    .l_table(l_table_q),
    .rd_row(rd_row),
    .rd_data(rd_data),
    .row0_done(row0_done)
  );

  realm_drain #(
    .N(N)
  ) u_drain (
    .clk(clk),
    .rst(rst),
    .row0_done(row0_done),
    .rd_row(rd_row),
    .rd_data(rd_data),
    .res_data(res_data),
    .res_valid(res_valid),
    .res_ready(res_ready),
    .tile_drained(tile_drained)
  );

endmodule

`resetall
