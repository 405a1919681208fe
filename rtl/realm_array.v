`resetall
`timescale 1ns / 1ps
`default_nettype none

// N x N grid of realm_pe. Row r takes its skewed x and tag from the left edge, column c its
// skewed w from the top edge; results are read one row at a time through rd_row.
module realm_array #(
  // array rows = columns
  parameter N = 8,
  // 1: PEs emulate timing errors from l_table; 0: plain adders
  parameter TIMING_EMU = 1
) (
  input  wire               clk,
  input  wire               rst,
  input  wire [8*N-1:0]     x_rows,
  input  wire [N-1:0]       valid_rows,
  input  wire [N-1:0]       first_rows,
  input  wire [N-1:0]       last_rows,
  input  wire [8*N-1:0]     w_cols,
  input  wire               timing_en,
  // byte (r*N+c) = signed slack L of PE(r,c)
  input  wire [8*N*N-1:0]   l_table,
  input  wire [RW-1:0]      rd_row,
  output wire [32*N-1:0]    rd_data,
  // row 0 holds a new tile's results from this cycle on; row r follows r cycles later
  output wire               row0_done
);

  localparam RW = $clog2(N);

  generate
    if (N < 2) begin : g_bad_n
      $fatal(1, "realm_array: N must be >= 2");
    end
  endgenerate

  // Each PE's outputs are plain wires of its own generate block and neighbours refer to them
  // by name, so Verilator aliases them to the PE registers instead of copying through arrays.
  // The outputs of the last column and row leave the grid unused, apart from row 0's tag.
  genvar r, c;
  generate
    for (r = 0; r < N; r = r + 1) begin : g_row
      for (c = 0; c < N; c = c + 1) begin : g_col
        wire [7:0]  x_in;
        wire [7:0]  w_in;
        wire        valid_in;
        wire        first_in;
        wire        last_in;
        /* verilator lint_off UNUSEDSIGNAL */
        wire [7:0]  x_out;
        wire [7:0]  w_out;
        wire        valid_out;
        wire        first_out;
        wire        last_out;
        /* verilator lint_on UNUSEDSIGNAL */
        wire [31:0] result;

        if (c == 0) begin : g_left
          assign x_in = x_rows[8*r+7:8*r];
          assign valid_in = valid_rows[r];
          assign first_in = first_rows[r];
          assign last_in = last_rows[r];
        end else begin : g_inner
          assign x_in = g_row[r].g_col[c-1].x_out;
          assign valid_in = g_row[r].g_col[c-1].valid_out;
          assign first_in = g_row[r].g_col[c-1].first_out;
          assign last_in = g_row[r].g_col[c-1].last_out;
        end

        if (r == 0) begin : g_top
          assign w_in = w_cols[8*c+7:8*c];
        end else begin : g_below
          assign w_in = g_row[r-1].g_col[c].w_out;
        end

        realm_pe #(
          .TIMING_EMU(TIMING_EMU)
        ) u_pe (
          .clk(clk),
          .rst(rst),
          .x_in(x_in),
          .w_in(w_in),
          .valid_in(valid_in),
          .first_in(first_in),
          .last_in(last_in),
          .timing_en(timing_en),
          .slack(l_table[8*(r*N+c)+7:8*(r*N+c)]),
          .x_out(x_out),
          .w_out(w_out),
          .valid_out(valid_out),
          .first_out(first_out),
          .last_out(last_out),
          .result(result)
        );
      end
    end

    // one result column per word; only the selected row is read
    for (c = 0; c < N; c = c + 1) begin : g_read
      wire [31:0] column [0:N-1];

      for (r = 0; r < N; r = r + 1) begin : g_cell
        assign column[r] = g_row[r].g_col[c].result;
      end

      assign rd_data[32*c+31:32*c] = column[rd_row];
    end
  endgenerate

  assign row0_done = g_row[0].g_col[N-1].valid_out && g_row[0].g_col[N-1].last_out;

endmodule

`resetall
