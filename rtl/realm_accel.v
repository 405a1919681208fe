`resetall
`timescale 1ns / 1ps
`default_nettype none

// realm_accel top level (rtl/README.md): the checking datapath (ingress, ref queue, egress,
// statistics, registers) on aclk and only realm_core on array_clk, joined by two async FIFOs.
//
// Resets: aresetn or CTRL.SOFT_RESET raise rst_req for a few aclk cycles. It asserts the
// array-domain reset asynchronously at once (released two array_clk edges after rst_req
// falls), and the aclk datapath stays in reset until that release has crossed back, so both
// sides of each async FIFO are in reset together whatever the clock ratio. The register file
// sees only aresetn, so configuration survives a soft reset.
module realm_accel #(
  // array rows = columns (4..32)
  parameter N = 8,
  // 1: PEs emulate timing errors from L_TABLE when CONFIG.TIMING_EN; 0: plain adders
  parameter TIMING_EMU = 0,
  // 1: test-only INJ_TABLE XOR injection; 0 compiles it out
  parameter INJECT = 0,
  // 1: the checksum accumulators emulate timing errors from CK_L_TABLE as well (needs TIMING_EMU);
  // 0: the checking logic is exact, as on the board where it runs on the safe clock
  parameter EMU_CHECKS = 0,
  // log2 of the operand FIFO depth
  parameter FIFO_DEPTH_LOG2 = 5
) (
  input  wire              aclk,
  input  wire              aresetn,
  input  wire              array_clk,

  input  wire [13:0]       s_axil_awaddr,
  input  wire [2:0]        s_axil_awprot,
  input  wire              s_axil_awvalid,
  output wire              s_axil_awready,
  input  wire [31:0]       s_axil_wdata,
  input  wire [3:0]        s_axil_wstrb,
  input  wire              s_axil_wvalid,
  output wire              s_axil_wready,
  output wire [1:0]        s_axil_bresp,
  output wire              s_axil_bvalid,
  input  wire              s_axil_bready,
  input  wire [13:0]       s_axil_araddr,
  input  wire [2:0]        s_axil_arprot,
  input  wire              s_axil_arvalid,
  output wire              s_axil_arready,
  output wire [31:0]       s_axil_rdata,
  output wire [1:0]        s_axil_rresp,
  output wire              s_axil_rvalid,
  input  wire              s_axil_rready,

  input  wire [16*N-1:0]   s_axis_tdata,
  input  wire [2*N-1:0]    s_axis_tkeep,
  input  wire              s_axis_tvalid,
  output wire              s_axis_tready,
  input  wire              s_axis_tlast,

  output wire [32*N-1:0]   m_axis_tdata,
  output wire [4*N-1:0]    m_axis_tkeep,
  output wire              m_axis_tvalid,
  input  wire              m_axis_tready,
  output wire              m_axis_tlast
);

  generate
    if (N < 4 || N > 32) begin : g_bad_n
      $fatal(1, "realm_accel: N must be in 4..32");
    end
    if (TIMING_EMU != 0 && TIMING_EMU != 1) begin : g_bad_timing_emu
      $fatal(1, "realm_accel: TIMING_EMU must be 0 or 1");
    end
    if (INJECT != 0 && INJECT != 1) begin : g_bad_inject
      $fatal(1, "realm_accel: INJECT must be 0 or 1");
    end
    if (EMU_CHECKS != 0 && EMU_CHECKS != 1) begin : g_bad_emu_checks
      $fatal(1, "realm_accel: EMU_CHECKS must be 0 or 1");
    end
    if (EMU_CHECKS != 0 && TIMING_EMU == 0) begin : g_bad_emu_checks_alone
      $fatal(1, "realm_accel: EMU_CHECKS=1 needs TIMING_EMU=1");
    end
    if (FIFO_DEPTH_LOG2 < 2 || FIFO_DEPTH_LOG2 > 12) begin : g_bad_fifo
      $fatal(1, "realm_accel: FIFO_DEPTH_LOG2 must be in 2..12");
    end
  endgenerate

  localparam IW = $clog2(N);
  // two tiles of result rows, so the array can drain one tile while the egress reads another
  localparam RES_DEPTH_LOG2 = IW + 1;
  // tiles between header and last output beat: at K >= 3N about three are in flight (FIFOs,
  // feeder skew, drain), eight leave room for short tiles
  localparam REF_DEPTH_LOG2 = 3;
  localparam REFW = 64 * N + 17;

  /* verilator lint_off UNUSEDSIGNAL */
  wire unused_tkeep = &{1'b0, s_axis_tkeep};
  /* verilator lint_on UNUSEDSIGNAL */
  assign m_axis_tkeep = {(4 * N){1'b1}};

  // ---------------------------------------------------------------- resets
  wire rst = !aresetn;
  wire soft_reset;
  reg [2:0] rst_stretch;
  reg rst_req;
  (* ASYNC_REG = "TRUE" *) reg [1:0] arr_rst_back;
  wire arr_rst;

  always @(posedge aclk) begin
    if (rst || soft_reset) begin
      rst_stretch <= 3'b111;
      rst_req <= 1'b1;
    end else begin
      rst_stretch <= {rst_stretch[1:0], 1'b0};
      rst_req <= rst_stretch[2];
    end
  end

  realm_reset_sync u_arr_reset (
    .clk(array_clk),
    .rst_in_n(!rst_req),
    .rst_out(arr_rst)
  );

  always @(posedge aclk) begin
    arr_rst_back <= {arr_rst_back[0], arr_rst};
  end

  wire dp_rst = rst_req || arr_rst_back[1];

  // ---------------------------------------------------------------- registers
  wire timing_en;
  wire inj_en;
  wire inj_match_tag;
  wire [15:0] inj_tag;
  wire [IW-1:0] inj_row_idx;
  wire [32*N-1:0] inj_row;
  wire [1:0] policy_mode;
  wire [15:0] alpha;
  wire [15:0] beta;
  wire [15:0] freq_min;
  wire [63:0] msd_thresh;
  wire [8*N*N-1:0] l_table;
  wire [24*N-1:0] ck_l_table;
  wire busy;
  wire framing_err;
  wire tile_done;
  wire stats_done;
  wire [63:0] stats_msd;
  wire [31:0] stats_max_abs;
  wire [31:0] stats_theta;
  wire [15:0] stats_freq;
  wire [15:0] stats_freq_eff;
  wire [15:0] stats_row_freq;
  wire [8*32-1:0] stats_hist;
  wire stats_any_err;
  wire stats_recover;

  realm_axil_regs #(
    .N(N),
    .TIMING_EMU(TIMING_EMU),
    .INJECT(INJECT),
    .EMU_CHECKS(EMU_CHECKS)
  ) u_regs (
    .clk(aclk),
    .rst(rst),
    .s_axil_awaddr(s_axil_awaddr),
    .s_axil_awprot(s_axil_awprot),
    .s_axil_awvalid(s_axil_awvalid),
    .s_axil_awready(s_axil_awready),
    .s_axil_wdata(s_axil_wdata),
    .s_axil_wstrb(s_axil_wstrb),
    .s_axil_wvalid(s_axil_wvalid),
    .s_axil_wready(s_axil_wready),
    .s_axil_bresp(s_axil_bresp),
    .s_axil_bvalid(s_axil_bvalid),
    .s_axil_bready(s_axil_bready),
    .s_axil_araddr(s_axil_araddr),
    .s_axil_arprot(s_axil_arprot),
    .s_axil_arvalid(s_axil_arvalid),
    .s_axil_arready(s_axil_arready),
    .s_axil_rdata(s_axil_rdata),
    .s_axil_rresp(s_axil_rresp),
    .s_axil_rvalid(s_axil_rvalid),
    .s_axil_rready(s_axil_rready),
    .timing_en(timing_en),
    .inj_en(inj_en),
    .inj_match_tag(inj_match_tag),
    .inj_tag(inj_tag),
    .inj_row_idx(inj_row_idx),
    .inj_row(inj_row),
    .policy_mode(policy_mode),
    .alpha(alpha),
    .beta(beta),
    .freq_min(freq_min),
    .msd_thresh(msd_thresh),
    .l_table(l_table),
    .ck_l_table(ck_l_table),
    .soft_reset(soft_reset),
    .busy(busy),
    .framing_err(framing_err),
    .tile_done(tile_done),
    .tile_any_err(stats_any_err),
    .tile_recover(stats_recover),
    .tile_msd(stats_msd),
    .tile_max_abs(stats_max_abs),
    .tile_freq(stats_freq),
    .tile_freq_eff(stats_freq_eff),
    .tile_row_freq(stats_row_freq),
    .tile_hist(stats_hist)
  );

  // ---------------------------------------------------------------- aclk datapath
  wire [16*N+1:0] op_wr_data;
  wire op_wr_valid;
  wire op_wr_ready;
  wire [REFW-1:0] ref_wr_data;
  wire ref_wr_valid;
  wire [REFW-1:0] ref_rd_data;
  wire ref_rd_valid;
  wire ref_rd_ready;
  wire ingress_busy;

  realm_ingress #(
    .N(N),
    .REF_DEPTH(1 << REF_DEPTH_LOG2),
    .EMU_CHECKS(EMU_CHECKS)
  ) u_ingress (
    .clk(aclk),
    .rst(dp_rst),
    .timing_en(timing_en),
    .ck_slack(ck_l_table[16*N-1:0]),
    .s_axis_tdata(s_axis_tdata),
    .s_axis_tvalid(s_axis_tvalid),
    .s_axis_tready(s_axis_tready),
    .s_axis_tlast(s_axis_tlast),
    .op_data(op_wr_data),
    .op_valid(op_wr_valid),
    .op_ready(op_wr_ready),
    .ref_data(ref_wr_data),
    .ref_valid(ref_wr_valid),
    .ref_release(ref_rd_valid && ref_rd_ready),
    .framing_err(framing_err),
    .busy(ingress_busy)
  );

  // the ingress reserves a slot before it pushes, so wr_ready is always high here
  /* verilator lint_off PINCONNECTEMPTY */
  realm_sync_fifo #(
    .WIDTH(REFW),
    .DEPTH_LOG2(REF_DEPTH_LOG2)
  ) u_ref_queue (
    .clk(aclk),
    .rst(dp_rst),
    .wr_data(ref_wr_data),
    .wr_valid(ref_wr_valid),
    .wr_ready(),
    .rd_data(ref_rd_data),
    .rd_valid(ref_rd_valid),
    .rd_ready(ref_rd_ready)
  );
  /* verilator lint_on PINCONNECTEMPTY */

  wire [32*N-1:0] res_rd_data;
  wire res_rd_valid;
  wire res_rd_ready;
  wire stats_start;
  wire [32*N-1:0] dev_col;
  wire [32*N-1:0] dev_row;
  wire egress_busy;

  realm_egress #(
    .N(N),
    .INJECT(INJECT),
    .EMU_CHECKS(EMU_CHECKS)
  ) u_egress (
    .clk(aclk),
    .rst(dp_rst),
    .timing_en(timing_en),
    .ck_slack(ck_l_table[24*N-1:16*N]),
    .res_data(res_rd_data),
    .res_valid(res_rd_valid),
    .res_ready(res_rd_ready),
    .ref_data(ref_rd_data),
    .ref_valid(ref_rd_valid),
    .ref_ready(ref_rd_ready),
    .inj_en(inj_en),
    .inj_match_tag(inj_match_tag),
    .inj_tag(inj_tag),
    .inj_row_idx(inj_row_idx),
    .inj_row(inj_row),
    .stats_start(stats_start),
    .dev_col(dev_col),
    .dev_row(dev_row),
    .stats_done(stats_done),
    .stats_msd(stats_msd),
    .stats_max_abs(stats_max_abs),
    .stats_theta(stats_theta),
    .stats_freq(stats_freq),
    .stats_freq_eff(stats_freq_eff),
    .stats_row_freq(stats_row_freq),
    .stats_hist(stats_hist),
    .stats_any_err(stats_any_err),
    .stats_recover(stats_recover),
    .m_axis_tdata(m_axis_tdata),
    .m_axis_tvalid(m_axis_tvalid),
    .m_axis_tready(m_axis_tready),
    .m_axis_tlast(m_axis_tlast),
    .tile_done(tile_done),
    .busy(egress_busy)
  );

  realm_stats #(
    .N(N)
  ) u_stats (
    .clk(aclk),
    .rst(dp_rst),
    .start(stats_start),
    .d(dev_col),
    .e(dev_row),
    .mode(policy_mode),
    .alpha(alpha),
    .beta(beta),
    .freq_min(freq_min),
    .msd_thresh(msd_thresh),
    .done(stats_done),
    .msd(stats_msd),
    .max_abs(stats_max_abs),
    .theta(stats_theta),
    .freq(stats_freq),
    .freq_eff(stats_freq_eff),
    .row_freq(stats_row_freq),
    .hist(stats_hist),
    .any_err(stats_any_err),
    .recover(stats_recover)
  );

  // ---------------------------------------------------------------- clock crossing
  wire [16*N+1:0] op_rd_data;
  wire op_rd_valid;
  wire op_rd_ready;
  wire [32*N-1:0] res_wr_data;
  wire res_wr_valid;
  wire res_wr_ready;

  realm_async_fifo #(
    .WIDTH(16 * N + 2),
    .DEPTH_LOG2(FIFO_DEPTH_LOG2)
  ) u_op_fifo (
    .wr_clk(aclk),
    .wr_rst(dp_rst),
    .wr_data(op_wr_data),
    .wr_valid(op_wr_valid),
    .wr_ready(op_wr_ready),
    .rd_clk(array_clk),
    .rd_rst(arr_rst),
    .rd_data(op_rd_data),
    .rd_valid(op_rd_valid),
    .rd_ready(op_rd_ready)
  );

  realm_async_fifo #(
    .WIDTH(32 * N),
    .DEPTH_LOG2(RES_DEPTH_LOG2)
  ) u_res_fifo (
    .wr_clk(array_clk),
    .wr_rst(arr_rst),
    .wr_data(res_wr_data),
    .wr_valid(res_wr_valid),
    .wr_ready(res_wr_ready),
    .rd_clk(aclk),
    .rd_rst(dp_rst),
    .rd_data(res_rd_data),
    .rd_valid(res_rd_valid),
    .rd_ready(res_rd_ready)
  );

  // ---------------------------------------------------------------- array_clk domain
  wire core_busy;
  reg core_busy_q;
  (* ASYNC_REG = "TRUE" *) reg [1:0] core_busy_sync;

  realm_core #(
    .N(N),
    .TIMING_EMU(TIMING_EMU)
  ) u_core (
    .clk(array_clk),
    .rst(arr_rst),
    .op_data(op_rd_data),
    .op_valid(op_rd_valid),
    .op_ready(op_rd_ready),
    .res_data(res_wr_data),
    .res_valid(res_wr_valid),
    .res_ready(res_wr_ready),
    .timing_en(timing_en),
    .l_table(l_table),
    .busy(core_busy)
  );

  // registered in its own domain first so the synchronizer never samples a combinational glitch
  always @(posedge array_clk) begin
    core_busy_q <= core_busy;
  end

  always @(posedge aclk) begin
    core_busy_sync <= {core_busy_sync[0], core_busy_q};
  end

  assign busy = dp_rst || ingress_busy || egress_busy || core_busy_sync[1];

endmodule

`resetall
