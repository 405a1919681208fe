`resetall
`timescale 1ns / 1ps
`default_nettype none

`include "realm_regmap.vh"

// Operand stream parser (rtl/README.md, "Stream framing"). Operand beats go straight into the
// operand FIFO as {last, first, beat}; a copy runs through a three-stage pipeline (register,
// byte sums, multiply-accumulate) that builds the reference column and row checksums, and one
// {tag, tlast, rowref, colref} entry per tile is pushed into the ref queue. The checksums are
// kept negated (-q_r, -r_c), so the egress gets d and e from the same adders that sum results. A header is only
// accepted while the ref queue has a free slot reserved for that tile (credits returned by the
// egress), so the push at the end of the tile never has to wait.
module realm_ingress #(
  // array size: rows = columns of a tile
  parameter N = 8,
  // entries of the ref queue behind ref_data (credits available to the parser)
  parameter REF_DEPTH = 8,
  // 1: the checksum accumulators emulate timing errors from ck_slack; 0: plain wrapping adders
  parameter EMU_CHECKS = 0
) (
  input  wire              clk,
  input  wire              rst,

  // quasi-static configuration: emulation on, signed slack L of the accumulators of -r_c (byte c
  // of [8N-1:0]) and of -q_r (byte r of [16N-1:8N])
  input  wire              timing_en,
  input  wire [16*N-1:0]   ck_slack,

  input  wire [16*N-1:0]   s_axis_tdata,
  input  wire              s_axis_tvalid,
  output wire              s_axis_tready,
  input  wire              s_axis_tlast,

  output wire [16*N+1:0]   op_data,
  output wire              op_valid,
  input  wire              op_ready,

  // {tag[15:0], tlast, -q_r (word r), -r_c (word c)}; the queue always has room
  output wire [64*N+16:0]  ref_data,
  output reg               ref_valid,
  // the egress finished a tile and freed its ref queue slot
  input  wire              ref_release,

  output reg               framing_err,
  output wire              busy
);

  generate
    if (N < 4 || N > 32) begin : g_bad_n
      $fatal(1, "realm_ingress: N must be in 4..32");
    end
    if (REF_DEPTH < 1) begin : g_bad_depth
      $fatal(1, "realm_ingress: REF_DEPTH must be >= 1");
    end
    if (EMU_CHECKS != 0 && EMU_CHECKS != 1) begin : g_bad_emu_checks
      $fatal(1, "realm_ingress: EMU_CHECKS must be 0 or 1");
    end
  endgenerate

  // a sum of N signed bytes
  localparam SW = 8 + $clog2(N);
  localparam CW = $clog2(REF_DEPTH + 1);

  localparam [1:0] S_HEADER = 2'd0, S_OPERAND = 2'd1, S_DROP = 2'd2;

  reg [1:0] state;
  reg [31:0] remaining;
  reg first;
  reg [15:0] tag;
  reg tile_tlast;
  reg [CW-1:0] credits;

  wire [15:0] hdr_magic = s_axis_tdata[15:0];
  wire [31:0] hdr_k = s_axis_tdata[63:32];
  wire hdr_ok = hdr_magic == `REALM_STREAM_MAGIC && hdr_k != 32'd0;
  wire credit_free = credits != REF_DEPTH[CW-1:0];

  assign s_axis_tready = state == S_OPERAND ? op_ready :
                         state == S_HEADER ? credit_free : 1'b1;
  wire beat = s_axis_tvalid && s_axis_tready;
  wire last = remaining == 32'd0;

  assign op_valid = state == S_OPERAND && s_axis_tvalid;
  assign op_data = {last, first, s_axis_tdata};

  wire take_header = beat && state == S_HEADER && hdr_ok;
  wire take_operand = beat && state == S_OPERAND;

  always @(posedge clk) begin
    if (rst) begin
      state <= S_HEADER;
      remaining <= 32'd0;
      first <= 1'b0;
      tag <= 16'd0;
      tile_tlast <= 1'b0;
      credits <= {CW{1'b0}};
      framing_err <= 1'b0;
    end else begin
      framing_err <= 1'b0;
      credits <= credits + {{(CW - 1){1'b0}}, take_header} - {{(CW - 1){1'b0}}, ref_release};
      if (beat) begin
        case (state)
          S_HEADER: begin
            if (hdr_ok) begin
              state <= S_OPERAND;
              remaining <= hdr_k - 32'd1;
              first <= 1'b1;
              tag <= s_axis_tdata[31:16];
              tile_tlast <= s_axis_tlast;
            end else begin
              framing_err <= 1'b1;
              if (!s_axis_tlast) begin
                state <= S_DROP;
              end
            end
          end
          S_OPERAND: begin
            remaining <= remaining - 32'd1;
            first <= 1'b0;
            tile_tlast <= tile_tlast || s_axis_tlast;
            if (last) begin
              state <= S_HEADER;
            end
          end
          default: begin
            if (s_axis_tlast) begin
              state <= S_HEADER;
            end
          end
        endcase
      end
    end
  end

  // checksum pipeline: stage 1 holds the beat, stage 2 the byte sums, stage 3 the accumulators
  reg p1_valid, p1_first, p1_last, p1_tlast;
  reg [16*N-1:0] p1_beat;
  reg [15:0] p1_tag;
  reg p2_valid, p2_first, p2_last, p2_tlast;
  reg [16*N-1:0] p2_beat;
  reg [15:0] p2_tag;
  // negated byte sums: one more bit, since -(-128 N) does not fit SW bits
  reg [SW:0] p2_xneg;
  reg [SW:0] p2_wneg;
  reg [15:0] ref_tag;
  reg ref_tlast;
  reg [32*N-1:0] colref;
  reg [32*N-1:0] rowref;

  function automatic [SW-1:0] byte_sum(input [8*N-1:0] v);
    integer i;
    begin
      byte_sum = {SW{1'b0}};
      for (i = 0; i < N; i = i + 1) begin
        byte_sum = byte_sum + {{(SW - 8){v[8*i+7]}}, v[8*i +: 8]};
      end
    end
  endfunction

  always @(posedge clk) begin
    if (rst) begin
      p1_valid <= 1'b0;
      p2_valid <= 1'b0;
      ref_valid <= 1'b0;
    end else begin
      p1_valid <= take_operand;
      p2_valid <= p1_valid;
      ref_valid <= p2_valid && p2_last;
    end
  end

  wire [SW-1:0] xsum = byte_sum(p1_beat[8*N-1:0]);
  wire [SW-1:0] wsum = byte_sum(p1_beat[16*N-1:8*N]);

  always @(posedge clk) begin
    if (take_operand) begin
      p1_beat <= s_axis_tdata;
      p1_first <= first;
      p1_last <= last;
      p1_tag <= tag;
      p1_tlast <= tile_tlast || s_axis_tlast;
    end
    if (p1_valid) begin
      p2_beat <= p1_beat;
      p2_first <= p1_first;
      p2_last <= p1_last;
      p2_tag <= p1_tag;
      p2_tlast <= p1_tlast;
      p2_xneg <= -{xsum[SW-1], xsum};
      p2_wneg <= -{wsum[SW-1], wsum};
    end
    if (p2_valid && p2_last) begin
      ref_tag <= p2_tag;
      ref_tlast <= p2_tlast;
    end
  end

  // -r_c += -(sum_r X[r,k]) * W[k,c] and -q_r += X[r,k] * -(sum_c W[k,c]): negating the sums
  // rather than the products keeps these multiply-accumulates (DSP friendly); `first` restarts them.
  // With EMU_CHECKS the timing model acts on these negated sums, the values the registers hold.
  genvar i;
  generate
    for (i = 0; i < N; i = i + 1) begin : g_ref
      wire signed [SW+8:0] col_prod = $signed(p2_xneg) * $signed(p2_beat[8*N + 8*i +: 8]);
      wire signed [SW+8:0] row_prod = $signed(p2_wneg) * $signed(p2_beat[8*i +: 8]);
      wire [31:0] col_base = p2_first ? 32'd0 : colref[32*i +: 32];
      wire [31:0] row_base = p2_first ? 32'd0 : rowref[32*i +: 32];
      wire [31:0] col_add = {{(23 - SW){col_prod[SW+8]}}, col_prod};
      wire [31:0] row_add = {{(23 - SW){row_prod[SW+8]}}, row_prod};
      wire [31:0] col_next;
      wire [31:0] row_next;
      if (EMU_CHECKS != 0) begin : g_timed
        realm_timed_add u_col (
          .a(col_base),
          .b(col_add),
          .timing_en(timing_en),
          .slack(ck_slack[8*i +: 8]),
          .sum(col_next)
        );
        realm_timed_add u_row (
          .a(row_base),
          .b(row_add),
          .timing_en(timing_en),
          .slack(ck_slack[8*N + 8*i +: 8]),
          .sum(row_next)
        );
      end else begin : g_exact
        assign col_next = col_base + col_add;
        assign row_next = row_base + row_add;
      end
      always @(posedge clk) begin
        if (p2_valid) begin
          colref[32*i +: 32] <= col_next;
          rowref[32*i +: 32] <= row_next;
        end
      end
    end
    if (EMU_CHECKS == 0) begin : g_no_timing
      /* verilator lint_off UNUSEDSIGNAL */
      wire unused_timing = &{1'b0, timing_en, ck_slack};
      /* verilator lint_on UNUSEDSIGNAL */
    end
  endgenerate

  assign ref_data = {ref_tag, ref_tlast, rowref, colref};
  assign busy = state != S_HEADER || credits != {CW{1'b0}} || p1_valid || p2_valid || ref_valid;

endmodule

`resetall
