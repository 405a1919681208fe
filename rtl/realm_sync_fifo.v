`resetall
`timescale 1ns / 1ps
`default_nettype none

// Single-clock first-word-fall-through FIFO: rd_data is valid whenever rd_valid is high.
module realm_sync_fifo #(
  // data width in bits
  parameter WIDTH = 8,
  // log2 of the number of entries (>= 1)
  parameter DEPTH_LOG2 = 2
) (
  input  wire             clk,
  input  wire             rst,
  input  wire [WIDTH-1:0] wr_data,
  input  wire             wr_valid,
  output wire             wr_ready,
  output wire [WIDTH-1:0] rd_data,
  output wire             rd_valid,
  input  wire             rd_ready
);

  generate
    if (WIDTH < 1) begin : g_bad_width
      $fatal(1, "realm_sync_fifo: WIDTH must be >= 1");
    end
    if (DEPTH_LOG2 < 1) begin : g_bad_depth
      $fatal(1, "realm_sync_fifo: DEPTH_LOG2 must be >= 1");
    end
  endgenerate

  localparam DEPTH = 1 << DEPTH_LOG2;

  reg [WIDTH-1:0] mem [0:DEPTH-1];
  // one extra wrap bit tells full from empty when the indices are equal
  reg [DEPTH_LOG2:0] wr_ptr;
  reg [DEPTH_LOG2:0] rd_ptr;

  wire empty = wr_ptr == rd_ptr;
  wire full = (wr_ptr[DEPTH_LOG2] != rd_ptr[DEPTH_LOG2]) &&
              (wr_ptr[DEPTH_LOG2-1:0] == rd_ptr[DEPTH_LOG2-1:0]);
  wire do_write = wr_valid && !full;
  wire do_read = rd_ready && !empty;

  assign wr_ready = !full;
  assign rd_valid = !empty;
  assign rd_data = mem[rd_ptr[DEPTH_LOG2-1:0]];

  always @(posedge clk) begin
    if (do_write) begin
      mem[wr_ptr[DEPTH_LOG2-1:0]] <= wr_data;
    end
  end

  always @(posedge clk) begin
    if (rst) begin
      wr_ptr <= {(DEPTH_LOG2 + 1){1'b0}};
      rd_ptr <= {(DEPTH_LOG2 + 1){1'b0}};
    end else begin
      if (do_write) begin
        wr_ptr <= wr_ptr + 1'b1;
      end
      if (do_read) begin
        rd_ptr <= rd_ptr + 1'b1;
      end
    end
  end

endmodule

`resetall
