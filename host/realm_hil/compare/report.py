"""Report of a comparison: CSV data, PNG figures, one self-contained HTML page and a terminal table."""

from __future__ import annotations

import base64
import csv
import html
import io
from pathlib import Path

import numpy as np

from ..results import atomic_write_text
from ..sweep import BITS
from .run import HARDWARE, MODELS, Comparison

COLORS = {HARDWARE: "black", "realm": "tab:red", "per-bit": "tab:orange", "twin": "tab:blue"}
LOG2_BINS = np.arange(0, 33)


def _csv(path: Path, header: list[str], rows) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def _g(value: float) -> str:
    return f"{value:.6g}"


def write_csvs(comparison: Comparison, out: Path) -> list[Path]:
    names = ["summary.csv", "bit_rates.csv", "log2_error_hist.csv", "sites.csv", "tiles.csv"]
    summary, bits, hist, sites, tiles = [], [], [], [], []
    for clock in comparison.clocks:
        for name, prof in clock.profiles.items():
            d = clock.distances.get(name)
            summary.append([_g(clock.mhz), name, prof.elements, _g(prof.element_error_rate),
                            *([_g(d.element_rate_ratio), _g(d.wasserstein_log2), _g(d.ks_log2), _g(d.js_bits)]
                              if d else [""] * 4)])
            bits.append([_g(clock.mhz), name, *[_g(r) for r in prof.bit_error_rates]])
            counts, _ = np.histogram(prof.log2_error, LOG2_BINS)
            hist.extend([_g(clock.mhz), name, int(lo), int(c)] for lo, c in zip(LOG2_BINS, counts, strict=False))
            sites.extend([_g(clock.mhz), name, s.label, "" if s.layer is None else s.layer, s.component,
                          s.elements, s.errors] for s in prof.sites)
            tiles.extend([_g(clock.mhz), name, i, int(m), int(f)]
                         for i, (m, f) in enumerate(zip(prof.tile_msd, prof.tile_freq, strict=True)))
    _csv(out / names[0], ["mhz", "model", "elements", "element_error_rate", "rate_ratio_vs_hardware",
                          "wasserstein_log2", "ks_log2", "js_bits"], summary)
    _csv(out / names[1], ["mhz", "model", *[f"bit{b}" for b in range(BITS)]], bits)
    _csv(out / names[2], ["mhz", "model", "log2_error_bin_low", "count"], hist)
    _csv(out / names[3], ["mhz", "model", "gemm", "layer", "component", "elements", "errors"], sites)
    _csv(out / names[4], ["mhz", "model", "tile", "msd", "freq"], tiles)
    return [out / n for n in names]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    _pyplot().close(fig)
    return path


def plot_clock(comparison: Comparison, index: int, path: Path) -> Path:
    """Per-bit rates, log2|error| distribution, tile (MSD, freq) scatter and error sites at one clock."""
    plt = _pyplot()
    clock = comparison.clocks[index]
    names = [HARDWARE, *MODELS]
    fig, axes = plt.subplots(2, 2, figsize=(13, 8.5))
    ax = axes[0, 0]
    for name in names:
        rates = clock.profiles[name].bit_error_rates
        ax.plot(np.arange(BITS), np.where(rates > 0, rates, np.nan), "o-" if name == HARDWARE else ".--",
                color=COLORS[name], label=name, lw=2.5 if name == HARDWARE else 1.2, ms=4)
    ax.set_yscale("log")
    ax.set_xlabel("bit position (0 = LSB)")
    ax.set_ylabel("bit error rate")
    ax.set_title("which bits go wrong")
    ax.legend()
    ax.grid(alpha=0.3)
    ax = axes[0, 1]
    for name in names:
        ax.hist(clock.profiles[name].log2_error, LOG2_BINS, histtype="step", color=COLORS[name],
                lw=2.5 if name == HARDWARE else 1.2, label=name, density=True)
    ax.set_xlabel("log2 |error| of a wrong element")
    ax.set_ylabel("density")
    ax.set_title("how large errors are")
    ax.legend()
    ax = axes[1, 0]
    for name in names:
        prof = clock.profiles[name]
        hit = prof.tile_freq > 0
        ax.scatter(prof.tile_freq[hit], np.log2(prof.tile_msd[hit] + 1), s=8, alpha=0.5, color=COLORS[name],
                   label=name, marker="o" if name == HARDWARE else "x")
    ax.set_xlabel("wrong columns per tile (freq)")
    ax.set_ylabel("log2(MSD + 1)")
    ax.set_title("per-tile statistics the ABFT unit sees")
    ax.legend()
    ax = axes[1, 1]
    labels = [s.label for s in clock.profiles[HARDWARE].sites]
    pos = np.arange(len(labels))
    width = 0.8 / len(names)
    for k, name in enumerate(names):
        ax.bar(pos + (k - (len(names) - 1) / 2) * width, [s.rate for s in clock.profiles[name].sites], width,
               color=COLORS[name], label=name)
    ax.set_xticks(pos, labels, rotation=70, fontsize=7)
    ax.set_ylabel("element error rate")
    ax.set_title("where errors hit (GEMM = layer.component)")
    fig.suptitle(f"{comparison.hardware_backend} at {clock.mhz:.1f} MHz against software error models")
    return _save(fig, path)


def plot_summary(comparison: Comparison, path: Path) -> Path:
    plt = _pyplot()
    mhz = [c.mhz for c in comparison.clocks]
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.8))
    for name in [HARDWARE, *MODELS]:
        axes[0].plot(mhz, [c.profiles[name].element_error_rate for c in comparison.clocks], "o-",
                     color=COLORS[name], label=name)
    axes[0].set_ylabel("element error rate")
    axes[0].legend()
    for ax, field, title in zip(axes[1:], ("wasserstein_log2", "ks_log2", "js_bits"),
                                ("Wasserstein on log2|error|", "KS on log2|error|", "JS on per-bit rates"),
                                strict=True):
        for name in MODELS:
            ax.plot(mhz, [getattr(c.distances[name], field) for c in comparison.clocks], "o-",
                    color=COLORS[name], label=name)
        ax.set_title(title)
        ax.legend()
    for ax in axes:
        ax.set_xlabel("array clock (MHz)")
        ax.grid(alpha=0.3)
    return _save(fig, path)


def summary_table(comparison: Comparison) -> str:
    lines = [f"{'MHz':>7} {'model':<9} {'elem err':>9} {'rate x':>7} {'W log2':>7} {'KS':>6} {'JS bits':>8}"]
    for clock in comparison.clocks:
        hw = clock.profiles[HARDWARE]
        lines.append(f"{clock.mhz:7.1f} {HARDWARE:<9} {hw.element_error_rate:9.4g}")
        for name in MODELS:
            d = clock.distances[name]
            lines.append(f"{'':7} {name:<9} {clock.profiles[name].element_error_rate:9.4g} "
                         f"{d.element_rate_ratio:7.3g} {d.wasserstein_log2:7.3f} {d.ks_log2:6.3f} {d.js_bits:8.3f}")
    return "\n".join(lines)


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{data}">'


def _html_table(comparison: Comparison) -> str:
    head = ("<tr><th>MHz</th><th>model</th><th>element error rate</th><th>rate / hardware</th>"
            "<th>Wasserstein log2|err|</th><th>KS log2|err|</th><th>JS per-bit</th></tr>")
    rows = []
    for clock in comparison.clocks:
        hw = clock.profiles[HARDWARE]
        rows.append(f"<tr class=hw><td>{clock.mhz:.1f}</td><td>{HARDWARE}</td>"
                    f"<td>{hw.element_error_rate:.4g}</td><td colspan=4></td></tr>")
        for name in MODELS:
            d = clock.distances[name]
            rows.append(f"<tr><td></td><td>{name}</td><td>{clock.profiles[name].element_error_rate:.4g}</td>"
                        f"<td>{d.element_rate_ratio:.3g}</td><td>{d.wasserstein_log2:.3f}</td>"
                        f"<td>{d.ks_log2:.3f}</td><td>{d.js_bits:.3f}</td></tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def write_report(comparison: Comparison, out: Path) -> Path:
    """CSV, PNG and index.html (images embedded, so the page is one file) under `out`."""
    out = Path(out)
    csvs = write_csvs(comparison, out)
    summary_png = plot_summary(comparison, out / "summary.png")
    clock_pngs = [plot_clock(comparison, i, out / f"clock_{c.mhz:.1f}MHz.png")
                  for i, c in enumerate(comparison.clocks)]
    sites = sorted({g.label for g in comparison.workload})
    sections = "".join(f"<h2>{c.mhz:.1f} MHz</h2>{_img(p)}"
                       for c, p in zip(comparison.clocks, clock_pngs, strict=True))
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>realm-hil: error models against {comparison.hardware_backend}</title>
<style>body{{font-family:sans-serif;max-width:1400px;margin:2em auto}} img{{max-width:100%}}
table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}
tr.hw{{background:#eee}}</style></head><body>
<h1>Software error models against the {html.escape(comparison.hardware_backend)} backend</h1>
<p>{len(comparison.workload)} GEMMs captured from the model ({html.escape(", ".join(sites))}).
<b>realm</b>: i.i.d. per element at the hardware's element error rate, bit {comparison.bit} flipped.
<b>per-bit</b>: independent flips per bit at the hardware's per-bit rates.
<b>twin</b>: the data-dependent timing model in software. Distances are to the hardware at the same clock
(0 = indistinguishable; JS base 2 in [0, 1]). Seed {comparison.seed}.</p>
{_html_table(comparison)}
<h2>Across clocks</h2>{_img(summary_png)}
{sections}
<p>Data: {", ".join(html.escape(p.name) for p in csvs)}.</p>
</body></html>
"""
    atomic_write_text(out / "index.html", page)
    return out / "index.html"
