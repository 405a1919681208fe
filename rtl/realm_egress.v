`resetall
`timescale 1ns / 1ps
`default_nettype none

`include "realm_regmap.vh"

// Result stream writer (rtl/README.md, "Stream framing" and "Checksums"). Per tile it sends the
// N result rows (after the test-only injection XOR) and folds each sent row into the column
// deviations d_c = o_c - r_c (seeded with the negated reference -r_c from the ref queue) and,
// through a shift register, into the row deviations e_r = p_r - q_r; it then sends d and e,
// lets realm_stats work on them and sends the statistics beats. The tile's ref queue entry
// (tag, tlast, negated checksums) stays at the queue head until the tile is finished.
module realm_egress #(
  // array size: rows = columns of a tile
  parameter N = 8,
  // 1: XOR inj_row into each result row while injection is active for the tile
  parameter INJECT = 0,
  // 1: the observed column checksums emulate timing errors from ck_slack; 0: plain wrapping adders
  parameter EMU_CHECKS = 0
) (
  input  wire              clk,
  input  wire              rst,

  // quasi-static configuration: emulation on, signed slack L of the accumulator of d_c (byte c)
  input  wire              timing_en,
  input  wire [8*N-1:0]    ck_slack,

  input  wire [32*N-1:0]   res_data,
  input  wire              res_valid,
  output wire              res_ready,

  // head of the ref queue: {tag, tlast, -q_r, -r_c}
  input  wire [64*N+16:0]  ref_data,
  input  wire              ref_valid,
  output wire              ref_ready,

  input  wire              inj_en,
  input  wire              inj_match_tag,
  input  wire [15:0]       inj_tag,
  output wire [$clog2(N)-1:0] inj_row_idx,
  input  wire [32*N-1:0]   inj_row,

  // statistics unit: d and e stay stable from stats_start until the tile is finished
  output reg               stats_start,
  output wire [32*N-1:0]   dev_col,
  output wire [32*N-1:0]   dev_row,
  input  wire              stats_done,
  input  wire [63:0]       stats_msd,
  input  wire [31:0]       stats_max_abs,
  input  wire [31:0]       stats_theta,
  input  wire [15:0]       stats_freq,
  input  wire [15:0]       stats_freq_eff,
  input  wire [15:0]       stats_row_freq,
  input  wire [8*32-1:0]   stats_hist,
  input  wire              stats_any_err,
  input  wire              stats_recover,

  output reg  [32*N-1:0]   m_axis_tdata,
  output reg               m_axis_tvalid,
  input  wire              m_axis_tready,
  output reg               m_axis_tlast,

  // one-cycle pulse when a tile's last beat is queued; the stats outputs then hold its values
  output reg               tile_done,
  output wire              busy
);

  generate
    if (N < 4 || N > 32) begin : g_bad_n
      $fatal(1, "realm_egress: N must be in 4..32");
    end
    if (EMU_CHECKS != 0 && EMU_CHECKS != 1) begin : g_bad_emu_checks
      $fatal(1, "realm_egress: EMU_CHECKS must be 0 or 1");
    end
  endgenerate

  localparam IW = $clog2(N);
  localparam SB = (`REALM_STATS_WORDS + N - 1) / N;
  localparam SBW = SB > 1 ? $clog2(SB) : 1;

  localparam [2:0] S_ROWS = 3'd0, S_ACC = 3'd1, S_DEV_COL = 3'd2, S_DEV_ROW = 3'd3, S_STATS = 3'd4;

  reg [2:0] state;
  reg [IW-1:0] row;
  reg [SBW-1:0] sbeat;
  reg acc_en;
  reg acc_first;
  reg [IW-1:0] acc_row;
  reg [32*N-1:0] obs_col;
  reg [32*N-1:0] obs_row;

  wire [15:0] tag = ref_data[64*N+16:64*N+1];
  wire tlast = ref_data[64*N];
  wire [32*N-1:0] row_neg = ref_data[64*N-1:32*N];
  wire [32*N-1:0] col_neg = ref_data[32*N-1:0];

  wire out_ready = !m_axis_tvalid || m_axis_tready;
  wire load_row = state == S_ROWS && ref_valid && res_valid && out_ready;
  wire last_row = row == N[IW-1:0] - 1'b1;
  wire load_stats = state == S_STATS && stats_done && out_ready;
  wire last_sbeat = sbeat == SB[SBW-1:0] - 1'b1;

  assign res_ready = load_row;
  assign inj_row_idx = row;
  assign dev_col = obs_col;
  assign dev_row = obs_row;

  wire [32*N-1:0] y_row;
  generate
    if (INJECT != 0) begin : g_inject
      wire active = inj_en && (!inj_match_tag || tag == inj_tag);
      assign y_row = active ? res_data ^ inj_row : res_data;
    end else begin : g_no_inject
      assign y_row = res_data;
      /* verilator lint_off UNUSEDSIGNAL */
      wire unused_inj = &{1'b0, inj_en, inj_match_tag, inj_tag, inj_row};
      /* verilator lint_on UNUSEDSIGNAL */
    end
  endgenerate

  wire [511:0] stats_vec = {stats_hist, 32'd0, 16'd0, stats_row_freq, stats_freq_eff, stats_freq,
                            stats_theta, stats_max_abs, stats_msd,
                            14'd0, stats_any_err, stats_recover, tag};
  wire [32*N-1:0] stats_beat;
  generate
    if (SB * 32 * N == 512) begin : g_exact
      assign stats_beat = stats_vec[sbeat*32*N +: 32*N];
    end else begin : g_padded
      wire [SB*32*N-1:0] padded = {{(SB * 32 * N - 512){1'b0}}, stats_vec};
      assign stats_beat = padded[sbeat*32*N +: 32*N];
    end
  endgenerate

  function automatic [31:0] word_sum(input [32*N-1:0] v);
    integer i;
    begin
      word_sum = 32'd0;
      for (i = 0; i < N; i = i + 1) begin
        word_sum = word_sum + v[32*i +: 32];
      end
    end
  endfunction

  // The row in m_axis_tdata was loaded on the previous edge; fold it into the deviations. The
  // column deviations accumulate over the N rows (the loaded -r_c takes the place of the reset
  // value, a short path), so with EMU_CHECKS they follow the timing model; each row deviation is
  // one adder tree over a single row, not an accumulator, and stays exact.
  genvar c;
  generate
    for (c = 0; c < N; c = c + 1) begin : g_obs
      wire [31:0] col_base = acc_first ? col_neg[32*c +: 32] : obs_col[32*c +: 32];
      wire [31:0] col_next;
      if (EMU_CHECKS != 0) begin : g_timed
        realm_timed_add u_col (
          .a(col_base),
          .b(m_axis_tdata[32*c +: 32]),
          .timing_en(timing_en),
          .slack(ck_slack[8*c +: 8]),
          .sum(col_next)
        );
      end else begin : g_exact
        assign col_next = col_base + m_axis_tdata[32*c +: 32];
      end
      always @(posedge clk) begin
        if (acc_en) begin
          obs_col[32*c +: 32] <= col_next;
        end
      end
    end
    if (EMU_CHECKS == 0) begin : g_no_timing
      /* verilator lint_off UNUSEDSIGNAL */
      wire unused_timing = &{1'b0, timing_en, ck_slack};
      /* verilator lint_on UNUSEDSIGNAL */
    end
  endgenerate

  always @(posedge clk) begin
    if (acc_en) begin
      obs_row <= {word_sum(m_axis_tdata) + row_neg[acc_row*32 +: 32], obs_row[32*N-1:32]};
    end
  end

  always @(posedge clk) begin
    if (rst) begin
      state <= S_ROWS;
      row <= {IW{1'b0}};
      sbeat <= {SBW{1'b0}};
      acc_en <= 1'b0;
      acc_first <= 1'b0;
      acc_row <= {IW{1'b0}};
      stats_start <= 1'b0;
      tile_done <= 1'b0;
      m_axis_tvalid <= 1'b0;
      m_axis_tlast <= 1'b0;
    end else begin
      acc_en <= load_row;
      stats_start <= 1'b0;
      tile_done <= 1'b0;
      if (m_axis_tready) begin
        m_axis_tvalid <= 1'b0;
      end
      case (state)
        S_ROWS: begin
          if (load_row) begin
            m_axis_tdata <= y_row;
            m_axis_tvalid <= 1'b1;
            m_axis_tlast <= 1'b0;
            acc_first <= row == {IW{1'b0}};
            acc_row <= row;
            row <= last_row ? {IW{1'b0}} : row + 1'b1;
            if (last_row) begin
              state <= S_ACC;
            end
          end
        end
        S_ACC: begin
          stats_start <= 1'b1;
          state <= S_DEV_COL;
        end
        S_DEV_COL: begin
          if (out_ready) begin
            m_axis_tdata <= obs_col;
            m_axis_tvalid <= 1'b1;
            state <= S_DEV_ROW;
          end
        end
        S_DEV_ROW: begin
          if (out_ready) begin
            m_axis_tdata <= obs_row;
            m_axis_tvalid <= 1'b1;
            state <= S_STATS;
          end
        end
        default: begin
          // stats_done fell on the edge that sampled stats_start, two states ago
          if (load_stats) begin
            m_axis_tdata <= stats_beat;
            m_axis_tvalid <= 1'b1;
            m_axis_tlast <= last_sbeat && tlast;
            sbeat <= last_sbeat ? {SBW{1'b0}} : sbeat + 1'b1;
            if (last_sbeat) begin
              tile_done <= 1'b1;
              state <= S_ROWS;
            end
          end
        end
      endcase
    end
  end

  assign ref_ready = load_stats && last_sbeat;
  assign busy = state != S_ROWS || row != {IW{1'b0}} || m_axis_tvalid;

endmodule

`resetall
