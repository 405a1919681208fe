`resetall
`timescale 1ns / 1ps
`default_nettype none

// Operand feeder of the output-stationary array: pops one beat per cycle when it can, delays
// row r of X by r cycles and column c of W by c cycles (plus one register stage for all), and
// starts a valid/first/last tag down the rows with x. A cycle without a pop feeds a bubble.
// Hazard rule: the capture registers hold one tile, so a tile's last beat waits while the
// previous tile is still in the array or not fully drained; other beats never wait.
module realm_feeder #(
  // array rows = columns
  parameter N = 8
) (
  input  wire             clk,
  input  wire             rst,
  // {last, first, beat}: beat[8N-1:0] byte r = X[r,k]; beat[16N-1:8N] byte c = W[k,c]
  input  wire [16*N+1:0]  op_data,
  input  wire             op_valid,
  output wire             op_ready,
  // the drain took the final result row of the pending tile
  input  wire             tile_drained,
  output wire [8*N-1:0]   x_rows,
  output wire [N-1:0]     valid_rows,
  output wire [N-1:0]     first_rows,
  output wire [N-1:0]     last_rows,
  output wire [8*N-1:0]   w_cols,
  output wire             busy
);

  generate
    if (N < 2) begin : g_bad_n
      $fatal(1, "realm_feeder: N must be >= 2");
    end
  endgenerate

  wire op_last = op_data[16*N+1];
  wire op_first = op_data[16*N];

  // a tile whose last beat entered the array and whose results are not fully drained
  reg pending;
  // a tile whose first beat entered but whose last has not
  reg in_tile;

  assign op_ready = !rst && !(pending && op_last);
  wire pop = op_valid && op_ready;

  always @(posedge clk) begin
    if (rst) begin
      pending <= 1'b0;
      in_tile <= 1'b0;
    end else begin
      if (pop) begin
        in_tile <= !op_last;
      end
      if (pop && op_last) begin
        pending <= 1'b1;
      end else if (tile_drained) begin
        pending <= 1'b0;
      end
    end
  end

  assign busy = pending || in_tile;

  // row r reads tap r of one shared tag delay line
  reg [N-1:0] valid_d;
  reg [N-1:0] first_d;
  reg [N-1:0] last_d;

  always @(posedge clk) begin
    first_d <= {first_d[N-2:0], op_first};
    last_d <= {last_d[N-2:0], op_last};
    if (rst) begin
      valid_d <= {N{1'b0}};
    end else begin
      valid_d <= {valid_d[N-2:0], pop};
    end
  end

  assign valid_rows = valid_d;
  assign first_rows = first_d;
  assign last_rows = last_d;

  // Operand bytes enter the skew lines whether popped or not: the tag alone marks them valid.
  genvar i;
  generate
    for (i = 0; i < N; i = i + 1) begin : g_skew
      reg [8*(i+1)-1:0] x_line;
      reg [8*(i+1)-1:0] w_line;

      if (i == 0) begin : g_head
        always @(posedge clk) begin
          x_line <= op_data[7:0];
          w_line <= op_data[8*N+7:8*N];
        end
      end else begin : g_tail
        always @(posedge clk) begin
          x_line <= {x_line[8*i-1:0], op_data[8*i+7:8*i]};
          w_line <= {w_line[8*i-1:0], op_data[8*(N+i)+7:8*(N+i)]};
        end
      end

      assign x_rows[8*i+7:8*i] = x_line[8*i+7:8*i];
      assign w_cols[8*i+7:8*i] = w_line[8*i+7:8*i];
    end
  endgenerate

endmodule

`resetall
