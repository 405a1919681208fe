// Verilated realm_accel with real AXI-Lite handshakes, a simple-mode AXI DMA model on its
// streams and two clocks, driven a whole transfer per call so Python never runs per beat.
// REALM_N and the CTRL/STATUS addresses and bits come from the build (realm_hil.sim.build).
#include "realm_sim.h"

#include <cstring>
#include <memory>

#include "Vrealm_accel.h"
#include "axi_dma_model.h"
#include "verilated.h"
#ifdef REALM_TRACE
#include "verilated_fst_c.h"
#endif

namespace {

constexpr int N = REALM_N;
constexpr size_t IN_BEAT = 2 * N;
constexpr size_t OUT_BEAT = 4 * N;
constexpr int STATS_BEAT = N + 2;
constexpr int OUT_TILE_BEATS = N + 2 + (16 + N - 1) / N;
constexpr int AXIL_TIMEOUT = 1000;
constexpr int RESET_CYCLES = 16;
constexpr int SETTLE_POLLS = 64;

// Port types depend on the width (QData up to 64 bits, VlWide above); overloads cover both.
template <std::size_t W>
inline void load(VlWide<W>& sig, const uint8_t* src, size_t n) {
    std::memset(sig.data(), 0, sizeof(EData) * W);
    std::memcpy(sig.data(), src, n);
}
inline void load(QData& sig, const uint8_t* src, size_t n) {
    sig = 0;
    std::memcpy(&sig, src, n);
}
template <std::size_t W>
inline void store(const VlWide<W>& sig, uint8_t* dst, size_t n) {
    std::memcpy(dst, sig.data(), n);
}
inline void store(QData sig, uint8_t* dst, size_t n) { std::memcpy(dst, &sig, n); }
template <std::size_t W>
inline uint64_t low64(const VlWide<W>& sig) {
    return sig[0] | (static_cast<uint64_t>(sig[1]) << 32);
}
inline uint64_t low64(QData sig) { return sig; }
template <class T>
inline void all_ones(T& sig, int bits) {
    sig = static_cast<T>(bits >= 64 ? ~0ull : (1ull << bits) - 1);
}

struct AxiLite {
    bool aw = false, w = false, b = false, ar = false, r = false;
    uint32_t addr = 0, wdata = 0, rdata = 0, resp = 0;
    bool idle() const { return !(aw || w || b || ar || r); }
};

// Follows the input framing (header, K operand beats) and the output tiles so a waveform can
// be limited to one tile.
struct TileTracker {
    uint64_t in_left = 0;
    int out_beat = 0;
    void reset() { *this = TileTracker(); }
};

}  // namespace

struct RealmSim {
    std::unique_ptr<VerilatedContext> ctx;
    std::unique_ptr<Vrealm_accel> top;
    realm::AxiDmaModel dma;
    AxiLite axil;
    TileTracker tiles;
    uint64_t cycles = 0;
    uint64_t now = 0;
    uint64_t next_aclk = 0, next_array = 0;
    uint32_t aclk_half = 1, array_half = 1;
    int64_t wave_start = 0, wave_stop = 0;
    int32_t wave_tag = -1;
    bool tag_window = false;
#ifdef REALM_TRACE
    std::unique_ptr<VerilatedFstC> fst;
#endif

    bool tracing() const {
        const int64_t c = static_cast<int64_t>(cycles);
        return tag_window || (wave_tag < 0 && c >= wave_start && c < wave_stop);
    }

    void dump() {
#ifdef REALM_TRACE
        if (fst && tracing()) fst->dump(now);
#endif
    }

    // Inputs change half a period after the rising edge, as a registered master would drive them.
    void drive() {
        Vrealm_accel& t = *top;
        const realm::DmaChannel& tx = dma.mm2s;
        const bool tx_valid = tx.busy && tx.pos < tx.total;
        t.s_axis_tvalid = tx_valid;
        if (tx_valid) {
            const uint64_t left = tx.total - tx.pos;
            load(t.s_axis_tdata, tx.mem + tx.pos, left < IN_BEAT ? left : IN_BEAT);
            t.s_axis_tlast = left <= IN_BEAT;
        }
        t.m_axis_tready = dma.s2mm.busy;
        t.s_axil_awvalid = axil.aw;
        t.s_axil_awaddr = axil.addr;
        t.s_axil_wvalid = axil.w;
        t.s_axil_wdata = axil.wdata;
        t.s_axil_bready = axil.b;
        t.s_axil_arvalid = axil.ar;
        t.s_axil_araddr = axil.addr;
        t.s_axil_rready = axil.r;
    }

    // Handshakes as seen just before the rising edge; the model state follows them.
    void sample() {
        Vrealm_accel& t = *top;
        realm::DmaChannel& tx = dma.mm2s;
        if (t.s_axis_tvalid && t.s_axis_tready) {
            track_input(low64(t.s_axis_tdata));
            tx.pos += IN_BEAT;
            if (tx.pos >= tx.total) tx.complete();
        }
        realm::DmaChannel& rx = dma.s2mm;
        if (t.m_axis_tvalid && t.m_axis_tready) {
            const uint64_t room = rx.total - rx.pos;
            const size_t n = room < OUT_BEAT ? room : OUT_BEAT;
            store(t.m_axis_tdata, rx.mem + rx.pos, n);
            rx.pos += n;
            track_output(static_cast<uint32_t>(low64(t.m_axis_tdata)));
            if (t.m_axis_tlast || rx.pos >= rx.total) {
                rx.length = static_cast<uint32_t>(rx.pos);
                rx.complete();
            }
        }
        if (axil.aw && t.s_axil_awready) axil.aw = false;
        if (axil.w && t.s_axil_wready) axil.w = false;
        if (axil.b && t.s_axil_bvalid) {
            axil.b = false;
            axil.resp = t.s_axil_bresp;
        }
        if (axil.ar && t.s_axil_arready) axil.ar = false;
        if (axil.r && t.s_axil_rvalid) {
            axil.r = false;
            axil.rdata = t.s_axil_rdata;
            axil.resp = t.s_axil_rresp;
        }
    }

    void track_input(uint64_t beat) {
        if (tiles.in_left > 0) {
            --tiles.in_left;
            return;
        }
        tiles.in_left = beat >> 32;
        if (wave_tag >= 0 && static_cast<int32_t>((beat >> 16) & 0xFFFF) == wave_tag) tag_window = true;
    }

    void track_output(uint32_t word0) {
        if (tiles.out_beat == STATS_BEAT && wave_tag >= 0 && static_cast<int32_t>(word0 & 0xFFFF) == wave_tag)
            tag_window = false;
        tiles.out_beat = (tiles.out_beat + 1) % OUT_TILE_BEATS;
    }

    // One aclk period; array_clk edges falling inside it are interleaved in time order.
    void cycle() {
        for (;;) {
            now = next_aclk < next_array ? next_aclk : next_array;
            const bool aclk_edge = now == next_aclk;
            const bool rising = aclk_edge && !top->aclk;
            if (aclk_edge) {
                if (rising) {
                    sample();
                    top->aclk = 1;
                } else {
                    top->aclk = 0;
                    drive();
                }
                next_aclk += aclk_half;
            }
            if (now == next_array) {
                top->array_clk = !top->array_clk;
                next_array += array_half;
            }
            top->eval();
            dump();
            if (rising) {
                ++cycles;
                return;
            }
        }
    }

    void hard_reset() {
        dma.reset();
        axil = AxiLite();
        tiles.reset();
        tag_window = false;
        top->aresetn = 0;
        for (int i = 0; i < RESET_CYCLES; ++i) cycle();
        top->aresetn = 1;
        for (int i = 0; i < RESET_CYCLES; ++i) cycle();
    }

    int32_t axil_wait() {
        for (int i = 0; i < AXIL_TIMEOUT && !axil.idle(); ++i) cycle();
        if (axil.idle()) return static_cast<int32_t>(axil.resp);
        axil = AxiLite();
        return -1;
    }

    int32_t axil_write(uint32_t addr, uint32_t data) {
        axil.aw = axil.w = axil.b = true;
        axil.addr = addr;
        axil.wdata = data;
        return axil_wait();
    }

    int32_t axil_read(uint32_t addr, uint32_t* data) {
        axil.ar = axil.r = true;
        axil.addr = addr;
        const int32_t resp = axil_wait();
        *data = axil.rdata;
        return resp;
    }

    uint64_t run(uint64_t max_cycles, uint32_t mask) {
        uint64_t done = 0;
        while (done < max_cycles && (dma.busy_mask() & mask)) {
            cycle();
            ++done;
        }
        return done;
    }
};

extern "C" {

RealmSim* realm_sim_create(const char* fst_path, int64_t wave_start, int64_t wave_stop, int32_t wave_tag,
                           uint32_t aclk_half_ps, uint32_t array_half_ps) {
    auto* sim = new RealmSim();
    sim->ctx = std::make_unique<VerilatedContext>();
    sim->ctx->randReset(0);
#ifdef REALM_TRACE
    if (fst_path && *fst_path) {
        sim->ctx->traceEverOn(true);
    }
#endif
    sim->top = std::make_unique<Vrealm_accel>(sim->ctx.get(), "realm_accel");
#ifdef REALM_TRACE
    if (fst_path && *fst_path) {
        sim->fst = std::make_unique<VerilatedFstC>();
        sim->top->trace(sim->fst.get(), 99);
        sim->fst->open(fst_path);
    }
#else
    (void)fst_path;
#endif
    sim->wave_start = wave_start;
    sim->wave_stop = wave_stop;
    sim->wave_tag = wave_tag;
    sim->aclk_half = aclk_half_ps ? aclk_half_ps : 1;
    sim->array_half = array_half_ps ? array_half_ps : sim->aclk_half;
    sim->next_aclk = sim->aclk_half;
    sim->next_array = sim->array_half;
    all_ones(sim->top->s_axis_tkeep, 2 * N);
    sim->top->s_axil_wstrb = 0xF;
    sim->top->aclk = 0;
    sim->top->array_clk = 0;
    sim->top->aresetn = 0;
    sim->drive();
    sim->top->eval();
    sim->hard_reset();
    return sim;
}

void realm_sim_destroy(RealmSim* sim) {
    if (!sim) return;
#ifdef REALM_TRACE
    if (sim->fst) sim->fst->close();
#endif
    sim->top->final();
    delete sim;
}

int32_t realm_sim_array_n(void) { return N; }

int32_t realm_sim_has_trace(void) {
#ifdef REALM_TRACE
    return 1;
#else
    return 0;
#endif
}

void realm_sim_hard_reset(RealmSim* sim) { sim->hard_reset(); }

int32_t realm_sim_soft_reset(RealmSim* sim) {
    sim->dma.reset();
    sim->tiles.reset();
    sim->tag_window = false;
    int32_t resp = sim->axil_write(REALM_CTRL_ADDR, 1u << REALM_SOFT_RESET_BIT);
    // Beats offered while the datapath is still in reset would be lost: wait for STATUS.BUSY to fall.
    uint32_t status = 1u << REALM_STATUS_BUSY_BIT;
    for (int i = 0; resp == 0 && i < SETTLE_POLLS && (status >> REALM_STATUS_BUSY_BIT) & 1u; ++i)
        resp = sim->axil_read(REALM_STATUS_ADDR, &status);
    return resp;
}

int32_t realm_sim_axil_write(RealmSim* sim, uint32_t addr, uint32_t data) { return sim->axil_write(addr, data); }

int32_t realm_sim_axil_read(RealmSim* sim, uint32_t addr, uint32_t* data) { return sim->axil_read(addr, data); }

uint32_t realm_sim_dma_read(RealmSim* sim, uint32_t offset) { return sim->dma.read(offset); }

void realm_sim_dma_write(RealmSim* sim, uint32_t offset, uint32_t value) {
    sim->dma.write(offset, value);
    if (offset == 0 && (value & realm::DMACR_RESET)) sim->tiles.reset();
}

uint32_t realm_sim_dma_busy(RealmSim* sim) { return sim->dma.busy_mask(); }

void realm_sim_map(RealmSim* sim, uint64_t phys, void* host, uint64_t size) { sim->dma.map(phys, host, size); }

void realm_sim_unmap(RealmSim* sim, uint64_t phys) { sim->dma.unmap(phys); }

uint64_t realm_sim_run(RealmSim* sim, uint64_t max_cycles, uint32_t mask) { return sim->run(max_cycles, mask); }

uint64_t realm_sim_cycles(RealmSim* sim) { return sim->cycles; }

int64_t realm_sim_raw(RealmSim* sim, const void* in, uint64_t in_bytes, void* out, uint64_t out_cap,
                      uint64_t max_cycles) {
    realm::AxiDmaModel& dma = sim->dma;
    dma.reset();
    dma.mm2s.arm(const_cast<uint8_t*>(static_cast<const uint8_t*>(in)), in_bytes);
    dma.s2mm.arm(static_cast<uint8_t*>(out), out_cap);
    sim->run(max_cycles, 2u);
    if (dma.s2mm.busy) {
        realm_sim_soft_reset(sim);
        return -1;
    }
    const int64_t received = static_cast<int64_t>(dma.s2mm.pos);
    dma.reset();
    return received;
}
}
