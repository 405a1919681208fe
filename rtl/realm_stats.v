`resetall
`timescale 1ns / 1ps
`default_nettype none

// Per-tile error statistics (rtl/README.md, "Statistics words"). One pass over the columns,
// one column per cycle, builds msd, freq, max_abs and the histogram through a single
// leading-one detector; a short pipeline then turns msd into lg, t and theta, and the
// freq_eff comparisons run over all columns at once so the whole tile takes N + 5 cycles.
// The caller must hold d and e stable from start until done.
module realm_stats #(
  // array size: number of columns (d words) and rows (e words)
  parameter N = 8
) (
  input  wire          clk,
  input  wire          rst,
  // one-cycle pulse; d and e are sampled from this cycle on
  input  wire          start,
  input  wire [32*N-1:0] d,
  input  wire [32*N-1:0] e,
  input  wire [1:0]    mode,
  input  wire [15:0]   alpha,
  input  wire [15:0]   beta,
  input  wire [15:0]   freq_min,
  input  wire [63:0]   msd_thresh,
  // high from the end of a tile's computation until the next start; outputs hold meanwhile
  output reg           done,
  output reg  [63:0]   msd,
  output reg  [31:0]   max_abs,
  output reg  [31:0]   theta,
  output reg  [15:0]   freq,
  output reg  [15:0]   freq_eff,
  output reg  [15:0]   row_freq,
  output wire [8*32-1:0] hist,
  output wire          any_err,
  output reg           recover
);

  generate
    if (N < 4 || N > 32) begin : g_bad_n
      $fatal(1, "realm_stats: N must be in 4..32");
    end
  endgenerate

  localparam IW = $clog2(N);
  // msd <= N * 2^31 needs 32 + log2(N) bits; the register keeps all 64 for the word layout
  localparam MSDW = 32 + IW;
  // a histogram bin counts at most N columns
  localparam HW = $clog2(N + 1);

  localparam [2:0] S_IDLE = 3'd0, S_SCAN = 3'd1, S_LG = 3'd2, S_T = 3'd3, S_THETA = 3'd4,
                   S_EFF = 3'd5;

  reg [2:0] state;
  reg [IW-1:0] idx;
  reg [13:0] lg;
  reg [23:0] t;
  reg [32*HW-1:0] bin_count;

  // floor(log2 v) for v != 0 by halving the search window: six levels of muxes, no loop
  function automatic [5:0] lead_one(input [63:0] v);
    reg [63:0] x;
    begin
      x = v;
      lead_one = 6'd0;
      if (x[63:32] != 32'd0) begin lead_one[5] = 1'b1; x = x >> 32; end
      if (x[31:16] != 16'd0) begin lead_one[4] = 1'b1; x = x >> 16; end
      if (x[15:8] != 8'd0) begin lead_one[3] = 1'b1; x = x >> 8; end
      if (x[7:4] != 4'd0) begin lead_one[2] = 1'b1; x = x >> 4; end
      if (x[3:2] != 2'd0) begin lead_one[1] = 1'b1; x = x >> 2; end
      if (x[1]) begin lead_one[0] = 1'b1; end
    end
  endfunction

  function automatic [31:0] abs32(input [31:0] v);
    begin
      abs32 = v[31] ? (~v + 32'd1) : v;
    end
  endfunction

  // Mitchell log2 in unsigned Q6.8: exponent from the leading one, the 8 bits below it as fraction
  function automatic [13:0] mitchell(input [MSDW-1:0] v);
    reg [5:0] lead;
    /* verilator lint_off UNUSEDSIGNAL */
    reg [MSDW+7:0] norm;
    /* verilator lint_on UNUSEDSIGNAL */
    begin
      lead = lead_one({{(64 - MSDW){1'b0}}, v});
      norm = {v, 8'd0} >> lead;
      mitchell = v == {MSDW{1'b0}} ? 14'd0 : {lead, norm[7:0]};
    end
  endfunction

  // (ALPHA * lg) >>> 8 + BETA; |ALPHA * lg| < 2^29, so 31 bits hold it and 24 hold the sum
  function automatic [23:0] threshold_exp(input [15:0] a, input [15:0] b, input [13:0] l);
    reg signed [30:0] prod;
    /* verilator lint_off UNUSEDSIGNAL */
    reg signed [30:0] sum;
    /* verilator lint_on UNUSEDSIGNAL */
    begin
      prod = $signed({{15{a[15]}}, a}) * $signed({17'd0, l});
      sum = (prod >>> 8) + $signed({{15{b[15]}}, b});
      threshold_exp = sum[23:0];
    end
  endfunction

  function automatic [31:0] theta_of(input [23:0] tt);
    /* verilator lint_off UNUSEDSIGNAL */
    reg [39:0] wide;
    /* verilator lint_on UNUSEDSIGNAL */
    begin
      wide = {31'd0, 1'b1, tt[7:0]} << tt[12:8];
      if (tt[23]) begin
        theta_of = 32'd0;
      end else if (tt[22:13] != 10'd0) begin
        theta_of = 32'hFFFFFFFF;
      end else begin
        theta_of = wide[39:8];
      end
    end
  endfunction

  function automatic [15:0] count_above(input [32*N-1:0] dv, input [31:0] th);
    integer i;
    begin
      count_above = 16'd0;
      for (i = 0; i < N; i = i + 1) begin
        count_above = count_above + {15'd0, abs32(dv[i*32 +: 32]) > th};
      end
    end
  endfunction

  function automatic [15:0] count_nonzero(input [32*N-1:0] ev);
    integer i;
    begin
      count_nonzero = 16'd0;
      for (i = 0; i < N; i = i + 1) begin
        count_nonzero = count_nonzero + {15'd0, |ev[i*32 +: 32]};
      end
    end
  endfunction

  wire [31:0] col_abs = abs32(d[idx*32 +: 32]);
  /* verilator lint_off UNUSEDSIGNAL */
  wire [5:0] col_bin = lead_one({32'd0, col_abs});
  /* verilator lint_on UNUSEDSIGNAL */
  wire [15:0] eff_count = count_above(d, theta);

  assign any_err = freq != 16'd0 || row_freq != 16'd0;

  genvar g;
  generate
    for (g = 0; g < 32; g = g + 1) begin : g_hist
      assign hist[8*g +: 8] = {{(8 - HW){1'b0}}, bin_count[HW*g +: HW]};
    end
  endgenerate

  always @(posedge clk) begin
    if (rst) begin
      state <= S_IDLE;
      done <= 1'b0;
      idx <= {IW{1'b0}};
      msd <= 64'd0;
      max_abs <= 32'd0;
      theta <= 32'd0;
      freq <= 16'd0;
      freq_eff <= 16'd0;
      row_freq <= 16'd0;
      bin_count <= {(HW * 32){1'b0}};
      recover <= 1'b0;
      lg <= 14'd0;
      t <= 24'd0;
    end else begin
      case (state)
        S_IDLE: begin
          if (start) begin
            state <= S_SCAN;
            done <= 1'b0;
            idx <= {IW{1'b0}};
            msd <= 64'd0;
            max_abs <= 32'd0;
            freq <= 16'd0;
            bin_count <= {(HW * 32){1'b0}};
            row_freq <= count_nonzero(e);
          end
        end
        S_SCAN: begin
          msd[MSDW-1:0] <= msd[MSDW-1:0] + {{(MSDW - 32){1'b0}}, col_abs};
          if (col_abs > max_abs) begin
            max_abs <= col_abs;
          end
          if (col_abs != 32'd0) begin
            freq <= freq + 16'd1;
            bin_count[col_bin[4:0]*HW +: HW] <= bin_count[col_bin[4:0]*HW +: HW] + 1'b1;
          end
          idx <= idx + 1'b1;
          if (idx == N[IW-1:0] - 1'b1) begin
            state <= S_LG;
          end
        end
        S_LG: begin
          lg <= mitchell(msd[MSDW-1:0]);
          state <= S_T;
        end
        S_T: begin
          t <= threshold_exp(alpha, beta, lg);
          state <= S_THETA;
        end
        S_THETA: begin
          theta <= theta_of(t);
          state <= S_EFF;
        end
        default: begin
          freq_eff <= eff_count;
          case (mode)
            2'd0: recover <= 1'b0;
            2'd1: recover <= any_err;
            2'd2: recover <= msd > msd_thresh;
            default: recover <= eff_count >= freq_min;
          endcase
          done <= 1'b1;
          state <= S_IDLE;
        end
      endcase
    end
  end

endmodule

`resetall
