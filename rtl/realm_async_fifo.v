`resetall
`timescale 1ns / 1ps
`default_nettype none

// Dual-clock first-word-fall-through FIFO for any clock ratio. Pointers cross the domains
// Gray-coded through two-flop synchronizers, so a sampled pointer is always either the old or
// the new value and full/empty are only ever pessimistic. The storage is read asynchronously
// (LUT RAM): an entry becomes visible to the reader only after its pointer update has crossed,
// long after the write settled. Both resets must overlap (the top asserts them together).
module realm_async_fifo #(
  // data width in bits
  parameter WIDTH = 8,
  // log2 of the number of entries (>= 2)
  parameter DEPTH_LOG2 = 4
) (
  input  wire             wr_clk,
  input  wire             wr_rst,
  input  wire [WIDTH-1:0] wr_data,
  input  wire             wr_valid,
  output wire             wr_ready,
  input  wire             rd_clk,
  input  wire             rd_rst,
  output wire [WIDTH-1:0] rd_data,
  output wire             rd_valid,
  input  wire             rd_ready
);

  generate
    if (WIDTH < 1) begin : g_bad_width
      $fatal(1, "realm_async_fifo: WIDTH must be >= 1");
    end
    if (DEPTH_LOG2 < 2) begin : g_bad_depth
      $fatal(1, "realm_async_fifo: DEPTH_LOG2 must be >= 2");
    end
  endgenerate

  localparam DEPTH = 1 << DEPTH_LOG2;
  localparam PW = DEPTH_LOG2 + 1;

  reg [WIDTH-1:0] mem [0:DEPTH-1];

  // write domain
  reg [PW-1:0] wr_bin;
  reg [PW-1:0] wr_gray;
  (* ASYNC_REG = "TRUE" *) reg [PW-1:0] rd_gray_meta;
  (* ASYNC_REG = "TRUE" *) reg [PW-1:0] rd_gray_sync;

  // full: the writer is exactly one lap ahead, i.e. the two top Gray bits differ and the rest match
  wire full = wr_gray == {~rd_gray_sync[PW-1:PW-2], rd_gray_sync[PW-3:0]};
  wire do_write = wr_valid && !full;
  wire [PW-1:0] wr_bin_next = wr_bin + 1'b1;

  assign wr_ready = !full;

  always @(posedge wr_clk) begin
    if (do_write) begin
      mem[wr_bin[DEPTH_LOG2-1:0]] <= wr_data;
    end
  end

  always @(posedge wr_clk) begin
    if (wr_rst) begin
      wr_bin <= {PW{1'b0}};
      wr_gray <= {PW{1'b0}};
      rd_gray_meta <= {PW{1'b0}};
      rd_gray_sync <= {PW{1'b0}};
    end else begin
      rd_gray_meta <= rd_gray;
      rd_gray_sync <= rd_gray_meta;
      if (do_write) begin
        wr_bin <= wr_bin_next;
        wr_gray <= wr_bin_next ^ (wr_bin_next >> 1);
      end
    end
  end

  // read domain
  reg [PW-1:0] rd_bin;
  reg [PW-1:0] rd_gray;
  (* ASYNC_REG = "TRUE" *) reg [PW-1:0] wr_gray_meta;
  (* ASYNC_REG = "TRUE" *) reg [PW-1:0] wr_gray_sync;

  wire empty = rd_gray == wr_gray_sync;
  wire do_read = rd_ready && !empty;
  wire [PW-1:0] rd_bin_next = rd_bin + 1'b1;

  assign rd_valid = !empty;
  assign rd_data = mem[rd_bin[DEPTH_LOG2-1:0]];

  always @(posedge rd_clk) begin
    if (rd_rst) begin
      rd_bin <= {PW{1'b0}};
      rd_gray <= {PW{1'b0}};
      wr_gray_meta <= {PW{1'b0}};
      wr_gray_sync <= {PW{1'b0}};
    end else begin
      wr_gray_meta <= wr_gray;
      wr_gray_sync <= wr_gray_meta;
      if (do_read) begin
        rd_bin <= rd_bin_next;
        rd_gray <= rd_bin_next ^ (rd_bin_next >> 1);
      end
    end
  end

endmodule

`resetall
