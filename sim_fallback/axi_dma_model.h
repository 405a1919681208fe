// Register-level model of the Xilinx AXI DMA in simple (direct register) mode, as far as
// pynq.lib.dma._SDMAChannel observes it (PG021): DMACR/DMASR/address/LENGTH per channel,
// a transfer starts when LENGTH is written, DMASR.Idle and IOC_Irq rise when it completes.
// Memory is the set of host buffers registered by physical address.
#pragma once
#include <cstdint>
#include <cstring>
#include <map>

namespace realm {

enum : uint32_t {
    DMACR_RS = 1u << 0,
    DMACR_RESET = 1u << 2,
    DMASR_HALTED = 1u << 0,
    DMASR_IDLE = 1u << 1,
    DMASR_INT_ERR = 1u << 4,
    DMASR_DEC_ERR = 1u << 6,
    DMASR_IOC_IRQ = 1u << 12,
    DMASR_ERR_IRQ = 1u << 14,
    DMASR_W1C = DMASR_IOC_IRQ | (1u << 13) | DMASR_ERR_IRQ,
};

struct DmaChannel {
    uint32_t dmacr = 0;
    uint32_t dmasr = DMASR_HALTED;
    uint64_t addr = 0;
    uint32_t length = 0;  // programmed length; S2MM reports the received byte count after completion
    uint8_t* mem = nullptr;
    uint64_t total = 0;
    uint64_t pos = 0;
    bool busy = false;

    void reset() { *this = DmaChannel(); }

    // Arm directly on host memory (the raw path, and LENGTH writes once the address resolved).
    void arm(uint8_t* host, uint64_t bytes) {
        mem = host;
        total = bytes;
        pos = 0;
        busy = true;
        dmasr &= ~DMASR_IDLE;
    }

    void complete() {
        busy = false;
        dmasr |= DMASR_IDLE | DMASR_IOC_IRQ;
    }

    void fail(uint32_t bit) {
        busy = false;
        dmasr |= bit | DMASR_ERR_IRQ | DMASR_HALTED;
        dmacr &= ~DMACR_RS;
    }
};

class AxiDmaModel {
  public:
    static constexpr uint32_t S2MM_OFFSET = 0x30;

    DmaChannel mm2s, s2mm;

    void reset() {
        mm2s.reset();
        s2mm.reset();
    }

    void map(uint64_t phys, void* host, uint64_t size) { regions_[phys] = Region{static_cast<uint8_t*>(host), size}; }
    void unmap(uint64_t phys) { regions_.erase(phys); }

    uint32_t busy_mask() const { return (mm2s.busy ? 1u : 0u) | (s2mm.busy ? 2u : 0u); }

    uint32_t read(uint32_t offset) const {
        const DmaChannel& ch = offset >= S2MM_OFFSET ? s2mm : mm2s;
        switch (offset % S2MM_OFFSET) {
            case 0x00: return ch.dmacr;
            case 0x04: return ch.dmasr;
            case 0x18: return static_cast<uint32_t>(ch.addr);
            case 0x1C: return static_cast<uint32_t>(ch.addr >> 32);
            case 0x28: return ch.length;
            default: return 0;
        }
    }

    void write(uint32_t offset, uint32_t value) {
        DmaChannel& ch = offset >= S2MM_OFFSET ? s2mm : mm2s;
        switch (offset % S2MM_OFFSET) {
            case 0x00:
                // PG021: the soft-reset bit resets both channels, whichever DMACR it is written to.
                if (value & DMACR_RESET) {
                    reset();
                    return;
                }
                ch.dmacr = value;
                if (value & DMACR_RS) {
                    ch.dmasr &= ~DMASR_HALTED;
                } else {
                    ch.dmasr |= DMASR_HALTED;
                    ch.busy = false;
                }
                return;
            case 0x04: ch.dmasr &= ~(value & DMASR_W1C); return;
            case 0x18: ch.addr = (ch.addr & ~0xFFFFFFFFull) | value; return;
            case 0x1C: ch.addr = (ch.addr & 0xFFFFFFFFull) | (static_cast<uint64_t>(value) << 32); return;
            case 0x28: start(ch, value); return;
            default: return;
        }
    }

  private:
    struct Region {
        uint8_t* host;
        uint64_t size;
    };
    std::map<uint64_t, Region> regions_;

    uint8_t* resolve(uint64_t addr, uint64_t bytes) const {
        auto it = regions_.upper_bound(addr);
        if (it == regions_.begin()) return nullptr;
        --it;
        const uint64_t off = addr - it->first;
        if (off + bytes > it->second.size) return nullptr;
        return it->second.host + off;
    }

    void start(DmaChannel& ch, uint32_t length) {
        if (ch.dmasr & DMASR_HALTED) return;  // the real core ignores LENGTH while halted
        ch.length = length;
        if (length == 0) return ch.fail(DMASR_INT_ERR);
        uint8_t* host = resolve(ch.addr, length);
        if (host == nullptr) return ch.fail(DMASR_DEC_ERR);
        ch.arm(host, length);
    }
};

}  // namespace realm
