`resetall
`timescale 1ns / 1ps
`default_nettype none

// Reset synchronizer: asserts asynchronously (works without a running clock) and deasserts
// on a clock edge two flops after rst_in_n rises, so downstream flops never see a release
// close to their clock edge.
module realm_reset_sync (
  input  wire clk,
  input  wire rst_in_n,
  output wire rst_out
);

  (* ASYNC_REG = "TRUE" *) reg [1:0] sync;

  always @(posedge clk or negedge rst_in_n) begin
    if (!rst_in_n) begin
      sync <= 2'b11;
    end else begin
      sync <= {sync[0], 1'b0};
    end
  end

  assign rst_out = sync[1];

endmodule

`resetall
