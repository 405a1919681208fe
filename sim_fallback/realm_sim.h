// C API of the Verilated realm_accel harness, called from Python through ctypes
// (host/realm_hil/sim/binding.py mirrors these signatures).
#pragma once
#include <cstdint>

extern "C" {

typedef struct RealmSim RealmSim;

// Waveforms (only in builds with REALM_TRACE): dump aclk cycles [wave_start, wave_stop), or,
// when wave_tag >= 0, from the header of the tile with that tag until its statistics beat.
// aclk_half_ps / array_half_ps are the half periods of the two clocks; equal values tie them.
RealmSim* realm_sim_create(const char* fst_path, int64_t wave_start, int64_t wave_stop, int32_t wave_tag,
                           uint32_t aclk_half_ps, uint32_t array_half_ps);
void realm_sim_destroy(RealmSim* sim);
int32_t realm_sim_array_n(void);
int32_t realm_sim_has_trace(void);

void realm_sim_hard_reset(RealmSim* sim);
// CTRL.SOFT_RESET through AXI-Lite, plus a reset of the DMA model; 0 on success.
int32_t realm_sim_soft_reset(RealmSim* sim);

// AXI-Lite transactions on s_axil; return the response code (0 OKAY) or -1 on a handshake timeout.
int32_t realm_sim_axil_write(RealmSim* sim, uint32_t addr, uint32_t data);
int32_t realm_sim_axil_read(RealmSim* sim, uint32_t addr, uint32_t* data);

// Xilinx AXI DMA (simple mode) register file, offsets relative to the DMA base.
uint32_t realm_sim_dma_read(RealmSim* sim, uint32_t offset);
void realm_sim_dma_write(RealmSim* sim, uint32_t offset, uint32_t value);
// Bit 0: MM2S transfer in flight, bit 1: S2MM transfer in flight.
uint32_t realm_sim_dma_busy(RealmSim* sim);
void realm_sim_map(RealmSim* sim, uint64_t phys, void* host, uint64_t size);
void realm_sim_unmap(RealmSim* sim, uint64_t phys);

// Advance until no channel in `mask` (as realm_sim_dma_busy) is busy or max_cycles pass;
// returns the aclk cycles run.
uint64_t realm_sim_run(RealmSim* sim, uint64_t max_cycles, uint32_t mask);
uint64_t realm_sim_cycles(RealmSim* sim);

// Stream in[0, in_bytes) into s_axis (TLAST on the final beat) and collect m_axis into out until
// TLAST; returns the bytes received, or -1 when max_cycles pass first (the model is then reset).
int64_t realm_sim_raw(RealmSim* sim, const void* in, uint64_t in_bytes, void* out, uint64_t out_cap,
                      uint64_t max_cycles);
}
