`resetall
`timescale 1ns / 1ps
`default_nettype none

`include "realm_regmap.vh"

// AXI4-Lite register file of realm_accel (rtl/regmap.yaml): configuration, per-PE and checksum L
// tables, test-only injection table, status and the GEMM totals. A write is taken when address
// and data are both present and no response is pending; reads answer one cycle after the
// address. Unmapped addresses read 0 and ignore writes, always with OKAY. Signed fields (ALPHA,
// BETA, L_TABLE, CK_L_TABLE) read back sign-extended so that a signed 32-bit write reads back
// unchanged.
module realm_axil_regs #(
  // array size: rows = columns
  parameter N = 8,
  // reported in PARAMS: the array emulates timing errors
  parameter TIMING_EMU = 1,
  // 1: implement INJ_TABLE and the injection controls; 0: they read 0
  parameter INJECT = 0,
  // 1: implement CK_L_TABLE (reported in PARAMS); 0: it reads 0 and ck_l_table stays exact
  parameter EMU_CHECKS = 0
) (
  input  wire              clk,
  input  wire              rst,

  input  wire [13:0]       s_axil_awaddr,
  input  wire [2:0]        s_axil_awprot,
  input  wire              s_axil_awvalid,
  output wire              s_axil_awready,
  input  wire [31:0]       s_axil_wdata,
  input  wire [3:0]        s_axil_wstrb,
  input  wire              s_axil_wvalid,
  output wire              s_axil_wready,
  output wire [1:0]        s_axil_bresp,
  output reg               s_axil_bvalid,
  input  wire              s_axil_bready,
  input  wire [13:0]       s_axil_araddr,
  input  wire [2:0]        s_axil_arprot,
  input  wire              s_axil_arvalid,
  output wire              s_axil_arready,
  output reg  [31:0]       s_axil_rdata,
  output wire [1:0]        s_axil_rresp,
  output reg               s_axil_rvalid,
  input  wire              s_axil_rready,

  output reg               timing_en,
  output wire              inj_en,
  output wire              inj_match_tag,
  output wire [15:0]       inj_tag,
  input  wire [$clog2(N)-1:0] inj_row_idx,
  output wire [32*N-1:0]   inj_row,
  output reg  [1:0]        policy_mode,
  output reg  [15:0]       alpha,
  output reg  [15:0]       beta,
  output reg  [15:0]       freq_min,
  output reg  [63:0]       msd_thresh,
  output reg  [8*N*N-1:0]  l_table,
  // CK_L_TABLE: -r_c accumulators, then -q_r, then d_c, one signed byte each
  output reg  [24*N-1:0]   ck_l_table,
  // one-cycle pulse from CTRL.SOFT_RESET
  output reg               soft_reset,

  input  wire              busy,
  input  wire              framing_err,

  // per-tile statistics, valid with tile_done
  input  wire              tile_done,
  input  wire              tile_any_err,
  input  wire              tile_recover,
  input  wire [63:0]       tile_msd,
  input  wire [31:0]       tile_max_abs,
  input  wire [15:0]       tile_freq,
  input  wire [15:0]       tile_freq_eff,
  input  wire [15:0]       tile_row_freq,
  input  wire [8*32-1:0]   tile_hist
);

  generate
    if (N < 4 || N > 32) begin : g_bad_n
      $fatal(1, "realm_axil_regs: N must be in 4..32");
    end
  endgenerate

  localparam CELLS = N * N;
  localparam [10:0] CELLS_W = CELLS[10:0];
  localparam CHECKS = 3 * N;
  localparam [10:0] CHECKS_W = CHECKS[10:0];

  reg clear_stats;
  reg cfg_inj_en;
  reg cfg_inj_match_tag;
  reg [15:0] cfg_inj_tag;
  reg [32*CELLS-1:0] inj_table;
  reg framing_err_seen;
  reg [31:0] tiles_done;
  reg [31:0] tiles_err;
  reg [31:0] tiles_recover;
  reg [31:0] freq_total;
  reg [31:0] freq_eff_total;
  reg [31:0] row_freq_total;
  reg [31:0] max_abs;
  reg [63:0] msd_total;
  reg [63:0] busy_cycles;
  reg [32*32-1:0] hist_total;

  wire [13:0] params = {3'd0, EMU_CHECKS != 0, INJECT != 0, TIMING_EMU != 0, N[7:0]};

  generate
    if (INJECT != 0) begin : g_inject
      assign inj_en = cfg_inj_en;
      assign inj_match_tag = cfg_inj_match_tag;
      assign inj_tag = cfg_inj_tag;
      assign inj_row = inj_table[inj_row_idx*32*N +: 32*N];
    end else begin : g_no_inject
      assign inj_en = 1'b0;
      assign inj_match_tag = 1'b0;
      assign inj_tag = 16'd0;
      assign inj_row = {(32 * N){1'b0}};
      /* verilator lint_off UNUSEDSIGNAL */
      wire unused_inj = &{1'b0, inj_row_idx, cfg_inj_en, cfg_inj_match_tag, cfg_inj_tag, inj_table};
      /* verilator lint_on UNUSEDSIGNAL */
    end
  endgenerate

  /* verilator lint_off UNUSEDSIGNAL */
  wire unused_prot = &{1'b0, s_axil_awprot, s_axil_arprot, s_axil_awaddr[1:0], s_axil_araddr[1:0]};
  /* verilator lint_on UNUSEDSIGNAL */

  // word index inside each window: HIST 0x080-0x0FF, L_TABLE 0x1000-, INJ_TABLE 0x2000-,
  // CK_L_TABLE 0x3000-
  /* verilator lint_off UNUSEDSIGNAL */
  function automatic is_hist(input [13:0] a);
    is_hist = a[13:7] == 7'd1;
  endfunction
  function automatic is_l(input [13:0] a);
    is_l = a[13:12] == 2'b01 && {1'b0, a[11:2]} < CELLS_W;
  endfunction
  function automatic is_inj(input [13:0] a);
    is_inj = INJECT != 0 && a[13:12] == 2'b10 && {1'b0, a[11:2]} < CELLS_W;
  endfunction
  function automatic is_ck(input [13:0] a);
    is_ck = EMU_CHECKS != 0 && a[13:12] == 2'b11 && {1'b0, a[11:2]} < CHECKS_W;
  endfunction
  /* verilator lint_on UNUSEDSIGNAL */

  function automatic [31:0] merge(input [31:0] old, input [31:0] data, input [3:0] strb);
    integer b;
    begin
      for (b = 0; b < 4; b = b + 1) begin
        merge[8*b +: 8] = strb[b] ? data[8*b +: 8] : old[8*b +: 8];
      end
    end
  endfunction

  function automatic [15:0] merge16(input [15:0] old, input [15:0] data, input [1:0] strb);
    begin
      merge16 = {strb[1] ? data[15:8] : old[15:8], strb[0] ? data[7:0] : old[7:0]};
    end
  endfunction

  // write channel: address and data are taken together. Registers are decoded by word: a byte or
  // half-word access carries its byte offset in the address (AXI unaligned address), the strobes
  // say which bytes it writes.
  wire wr_take = s_axil_awvalid && s_axil_wvalid && !s_axil_bvalid;
  wire [13:0] wa = {s_axil_awaddr[13:2], 2'b00};
  wire [31:0] wd = s_axil_wdata;
  wire [3:0] ws = s_axil_wstrb;
  assign s_axil_awready = wr_take;
  assign s_axil_wready = wr_take;
  assign s_axil_bresp = 2'b00;

  wire rd_take = s_axil_arvalid && !s_axil_rvalid;
  assign s_axil_arready = !s_axil_rvalid;
  assign s_axil_rresp = 2'b00;

  always @(posedge clk) begin
    if (rst) begin
      s_axil_bvalid <= 1'b0;
      soft_reset <= 1'b0;
      clear_stats <= 1'b0;
      timing_en <= 1'b0;
      cfg_inj_en <= 1'b0;
      cfg_inj_match_tag <= 1'b0;
      cfg_inj_tag <= 16'd0;
      policy_mode <= 2'd0;
      alpha <= 16'd0;
      beta <= 16'd0;
      freq_min <= 16'd0;
      msd_thresh <= 64'd0;
      l_table <= {CELLS{8'd31}};
      ck_l_table <= {CHECKS{8'd31}};
      inj_table <= {CELLS{32'd0}};
    end else begin
      soft_reset <= 1'b0;
      clear_stats <= 1'b0;
      if (s_axil_bready) begin
        s_axil_bvalid <= 1'b0;
      end
      if (wr_take) begin
        s_axil_bvalid <= 1'b1;
        if (is_l(wa)) begin
          if (ws[0]) begin
            l_table[wa[11:2]*8 +: 8] <= wd[7:0];
          end
        end else if (is_inj(wa)) begin
          inj_table[wa[11:2]*32 +: 32] <= merge(inj_table[wa[11:2]*32 +: 32], wd, ws);
        end else if (is_ck(wa)) begin
          if (ws[0]) begin
            ck_l_table[wa[11:2]*8 +: 8] <= wd[7:0];
          end
        end else begin
          case (wa)
            `REALM_REG_CTRL: begin
              if (ws[0]) begin
                soft_reset <= wd[`REALM_CTRL_SOFT_RESET_LSB];
                clear_stats <= wd[`REALM_CTRL_CLEAR_STATS_LSB];
              end
            end
            `REALM_REG_CONFIG: begin
              if (ws[0]) begin
                timing_en <= wd[`REALM_CONFIG_TIMING_EN_LSB];
                cfg_inj_en <= wd[`REALM_CONFIG_INJ_EN_LSB];
                cfg_inj_match_tag <= wd[`REALM_CONFIG_INJ_MATCH_TAG_LSB];
              end
            end
            `REALM_REG_POLICY: begin
              if (ws[0]) begin
                policy_mode <= wd[`REALM_POLICY_MODE_MSB:`REALM_POLICY_MODE_LSB];
              end
            end
            `REALM_REG_ALPHA: alpha <= merge16(alpha, wd[15:0], ws[1:0]);
            `REALM_REG_BETA: beta <= merge16(beta, wd[15:0], ws[1:0]);
            `REALM_REG_FREQ_MIN: freq_min <= merge16(freq_min, wd[15:0], ws[1:0]);
            `REALM_REG_MSD_THRESH_LO: msd_thresh[31:0] <= merge(msd_thresh[31:0], wd, ws);
            `REALM_REG_MSD_THRESH_HI: msd_thresh[63:32] <= merge(msd_thresh[63:32], wd, ws);
            `REALM_REG_INJ_TAG: cfg_inj_tag <= merge16(cfg_inj_tag, wd[15:0], ws[1:0]);
            default: begin
            end
          endcase
        end
      end
    end
  end

  // status and totals; SOFT_RESET clears them as well as CLEAR_STATS
  wire clear = clear_stats || soft_reset;
  integer b;
  always @(posedge clk) begin
    if (rst || clear) begin
      tiles_done <= 32'd0;
      tiles_err <= 32'd0;
      tiles_recover <= 32'd0;
      freq_total <= 32'd0;
      freq_eff_total <= 32'd0;
      row_freq_total <= 32'd0;
      max_abs <= 32'd0;
      msd_total <= 64'd0;
      busy_cycles <= 64'd0;
      hist_total <= {(32 * 32){1'b0}};
    end else begin
      busy_cycles <= busy_cycles + {63'd0, busy};
      if (tile_done) begin
        tiles_done <= tiles_done + 32'd1;
        tiles_err <= tiles_err + {31'd0, tile_any_err};
        tiles_recover <= tiles_recover + {31'd0, tile_recover};
        freq_total <= freq_total + {16'd0, tile_freq};
        freq_eff_total <= freq_eff_total + {16'd0, tile_freq_eff};
        row_freq_total <= row_freq_total + {16'd0, tile_row_freq};
        msd_total <= msd_total + tile_msd;
        if (tile_max_abs > max_abs) begin
          max_abs <= tile_max_abs;
        end
        for (b = 0; b < 32; b = b + 1) begin
          hist_total[32*b +: 32] <= hist_total[32*b +: 32] + {24'd0, tile_hist[8*b +: 8]};
        end
      end
    end
  end

  always @(posedge clk) begin
    if (rst || soft_reset) begin
      framing_err_seen <= 1'b0;
    end else if (framing_err) begin
      framing_err_seen <= 1'b1;
    end
  end

  function automatic [31:0] read_word(input [13:0] a);
    begin
      if (is_hist(a)) begin
        read_word = hist_total[a[6:2]*32 +: 32];
      end else if (is_l(a)) begin
        read_word = {{24{l_table[a[11:2]*8 + 7]}}, l_table[a[11:2]*8 +: 8]};
      end else if (is_inj(a)) begin
        read_word = inj_table[a[11:2]*32 +: 32];
      end else if (is_ck(a)) begin
        read_word = {{24{ck_l_table[a[11:2]*8 + 7]}}, ck_l_table[a[11:2]*8 +: 8]};
      end else begin
        case (a)
          `REALM_REG_ID: read_word = `REALM_ID_VALUE;
          `REALM_REG_VERSION: read_word = `REALM_VERSION_VALUE;
          `REALM_REG_PARAMS: read_word = {18'd0, params};
          `REALM_REG_STATUS: read_word = {30'd0, framing_err_seen, busy};
          `REALM_REG_CONFIG: read_word = {29'd0, inj_match_tag, inj_en, timing_en};
          `REALM_REG_POLICY: read_word = {30'd0, policy_mode};
          `REALM_REG_ALPHA: read_word = {{16{alpha[15]}}, alpha};
          `REALM_REG_BETA: read_word = {{16{beta[15]}}, beta};
          `REALM_REG_FREQ_MIN: read_word = {16'd0, freq_min};
          `REALM_REG_MSD_THRESH_LO: read_word = msd_thresh[31:0];
          `REALM_REG_MSD_THRESH_HI: read_word = msd_thresh[63:32];
          `REALM_REG_INJ_TAG: read_word = {16'd0, inj_tag};
          `REALM_REG_TILES_DONE: read_word = tiles_done;
          `REALM_REG_TILES_ERR: read_word = tiles_err;
          `REALM_REG_TILES_RECOVER: read_word = tiles_recover;
          `REALM_REG_FREQ_TOTAL: read_word = freq_total;
          `REALM_REG_FREQ_EFF_TOTAL: read_word = freq_eff_total;
          `REALM_REG_MAX_ABS: read_word = max_abs;
          `REALM_REG_MSD_TOTAL_LO: read_word = msd_total[31:0];
          `REALM_REG_MSD_TOTAL_HI: read_word = msd_total[63:32];
          `REALM_REG_ROW_FREQ_TOTAL: read_word = row_freq_total;
          `REALM_REG_BUSY_CYCLES_LO: read_word = busy_cycles[31:0];
          `REALM_REG_BUSY_CYCLES_HI: read_word = busy_cycles[63:32];
          default: read_word = 32'd0;
        endcase
      end
    end
  endfunction

  always @(posedge clk) begin
    if (rst) begin
      s_axil_rvalid <= 1'b0;
      s_axil_rdata <= 32'd0;
    end else begin
      if (s_axil_rready) begin
        s_axil_rvalid <= 1'b0;
      end
      if (rd_take) begin
        s_axil_rvalid <= 1'b1;
        s_axil_rdata <= read_word({s_axil_araddr[13:2], 2'b00});
      end
    end
  end

endmodule

`resetall
