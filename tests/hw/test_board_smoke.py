"""Board smoke tests: the first thing to run on a real board.

On the board (a PYNQ image), in the checkout installed as fpga/README.md shows plus the dev extra
for pytest (`sudo pip install -e '.[board,dev]'`), with the board's overlay in bitstreams/ (`make -C
fpga BOARD=pynq-z2 install` on the build host, or the release asset), as root since pynq maps /dev/mem:

    board$ python -m realm_hil.fpga.manifest verify pynq-z2
    board$ sudo -E pytest -m hw --board pynq-z2

--board takes the board's name (pynq-z2, zcu104, kv260): its overlay, manifest entry and timing
profile. Run them without -n: they take turns on the one board. They load the overlay and check
it against the manifest, run GEMMs against numpy, set the array clock and read it back, raise it
until timing errors appear (below the profile's ceiling, which the clock never passes), check
that the flagged tiles are exactly the wrong ones, and check that the rated clock is back after
close. The board is left at its rated clock.

Without --board (`make test`) the same tests run against a simulated ZCU104 behind pynq's
PYNQ.remote protocol (tests/hw/conftest.py), through the same board backend and pynq client.
"""

import contextlib

import numpy as np
import pytest

from realm_hil import PolicyConfig, regmap
from realm_hil.clock_generators import CLKWIZ_CFG0, CLKWIZ_CLKOUT0_DIV, WIZARD_INPUT_MHZ, setting_from_registers
from realm_hil.fpga.manifest import verify_overlay
from realm_hil.timing.device_profile import load_profile

pytestmark = pytest.mark.hw

SWEEP_STEP = 0.01  # of the nominal clock: fine enough to stop at the first errors, when only the slowest PE errs
CLOCK_TOLERANCE = 0.01  # how far the wizard's nearest setting may be from a requested clock


def wrapped(values: np.ndarray) -> np.ndarray:
    """int64 values modulo 2^32, as int32: what a 32-bit accumulator holds."""
    return (values & 0xFFFFFFFF).astype(np.uint32).view(np.int32)


def oracle(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The accelerator's contract computed independently: int64 products summed, wrapped to int32."""
    return wrapped(x.astype(np.int64) @ w.astype(np.int64))


def operands(rng, m, k, n):
    return (rng.integers(-128, 128, size=(m, k), dtype=np.int8),
            rng.integers(-128, 128, size=(k, n), dtype=np.int8))


def tile_errors(y: np.ndarray, expected: np.ndarray, n: int) -> np.ndarray:
    """The error matrix of each n x n output tile, (tiles, n, n) int64, tiles row-major over (M, N)."""
    m, cols = y.shape
    tm, tn = -(-m // n), -(-cols // n)
    err = np.zeros((tm * n, tn * n), dtype=np.int64)
    err[:m, :cols] = y.astype(np.int64) - expected.astype(np.int64)
    return err.reshape(tm, n, tn, n).transpose(0, 2, 1, 3).reshape(tm * tn, n, n)


def wizard_registers(board) -> tuple[int, int]:
    """The Clocking Wizard's CFG0 and CLKOUT0 divide registers, read through pynq past realm-hil.

    The overlay is parsed for its addresses but not downloaded, so nothing on the board changes
    (opening the board backend would set the nominal clock itself).
    """
    from pynq import MMIO, Overlay

    entry = verify_overlay(board.name, board.manifest)
    with board.pynq_device() as device:
        overlay = Overlay(str(entry.bit_path(board.manifest.parent)), download=False, device=device)
        ip = overlay.ip_dict[regmap.BD_CELLS["clock_wizard"]]
        mmio = MMIO(ip["phys_addr"], ip["addr_range"], device=device)
        return mmio.read(CLKWIZ_CFG0), mmio.read(CLKWIZ_CLKOUT0_DIV)


def wizard_mhz(registers: tuple[int, int]) -> float:
    return setting_from_registers(*registers, WIZARD_INPUT_MHZ).output_mhz


def test_overlay_loads_and_is_the_one_in_the_manifest(board):
    entry = verify_overlay(board.name, board.manifest)  # files present, sha256 and register map as listed
    profile = load_profile(board.name)
    with board.open() as acc:
        info = acc.info()
        assert (info["backend"], info["array_n"]) == ("board", entry.array_n)
        # what the programmed PL says about itself, read from its registers
        assert acc.driver.mmio.read(regmap.ID) == regmap.ID_VALUE
        assert acc.driver.mmio.read(regmap.VERSION) == entry.regmap_version
        assert acc.driver.mmio.read(regmap.PARAMS) & 0xFF == entry.array_n
        assert acc.clock_mhz == pytest.approx(profile.nominal_clock_mhz, rel=1e-6)


def test_gemms_are_exact(board):
    rng = np.random.default_rng(2026)
    with board.open() as acc:
        n = acc.array_n
        shapes = [(1, 1, 1), (n, n, n), (n + 1, 2 * n - 1, n - 1), (3, 300, 5), (64, 576, 64)]
        shapes += [tuple(int(v) for v in rng.integers(1, 200, 3)) for _ in range(5)]
        for m, k, cols in shapes:
            x, w = operands(rng, m, k, cols)
            y = acc.gemm(x, w).y
            assert y.dtype == np.int32 and y.shape == (m, cols)
            np.testing.assert_array_equal(y, oracle(x, w), err_msg=f"{m}x{k}x{cols}")
            assert acc.last_stats.n_tiles == -(-m // n) * -(-cols // n)
            assert acc.last_stats.tiles_err == 0
        # the longest K a GEMM may have fills the 32-bit accumulator to 2^31 - 2^14, every bit but the sign
        k = (1 << 31) // (128 * 128) - 1
        x, w = np.full((3, k), -128, np.int8), np.full((k, 5), -128, np.int8)
        y = acc.gemm(x, w).y
        assert (y == (1 << 31) - (1 << 14)).all()
        np.testing.assert_array_equal(y, oracle(x, w))


def test_clock_is_set_and_read_back(board):
    profile = load_profile(board.name)
    nominal = profile.nominal_clock_mhz
    with board.open() as acc:
        # off the round numbers, where the wizard can only come near: the read-back must say where
        for target in (nominal * 1.0537, nominal * 0.8123, nominal * 1.1371):
            applied = acc.set_clock(target)
            assert applied == pytest.approx(target, rel=CLOCK_TOLERANCE)
            assert acc.clock_mhz == applied
            assert wizard_mhz(wizard_registers(board)) == pytest.approx(applied, rel=1e-9)
        before = wizard_registers(board)
        with pytest.raises(ValueError, match="safety ceiling"):
            acc.set_clock(profile.clock_ceiling_mhz * 1.01)
        assert wizard_registers(board) == before and acc.clock_mhz == applied


def test_errors_and_recover_flags_appear_as_the_clock_rises(board):
    profile = load_profile(board.name)
    nominal = profile.nominal_clock_mhz
    x, w = operands(np.random.default_rng(7), 64, 256, 64)
    expected = oracle(x, w)
    with board.open() as acc:
        acc.set_policy(PolicyConfig("classic"))  # recover every tile whose checksums deviate
        n = acc.array_n
        first_error = None
        for target in np.arange(nominal, profile.clock_ceiling_mhz, SWEEP_STEP * nominal):
            clock = acc.set_clock(float(target))
            y = acc.gemm(x, w).y
            stats = acc.last_stats
            errors = tile_errors(y, expected, n)
            wrong = errors.any(axis=(1, 2))
            # the checking logic runs on the safe clock: flags name exactly the wrong tiles
            assert np.array_equal(stats.tiles.any_err, wrong), f"{clock:.2f} MHz"
            assert np.array_equal(stats.tiles.recover, wrong), f"{clock:.2f} MHz"
            if stats.tiles_err and first_error is None:
                first_error = clock
            # on a little further than the first errors, so more than the slowest PE is seen failing
            if stats.tiles_err >= stats.n_tiles // 4:
                break
        assert first_error is not None, (f"no timing errors up to {clock:.2f} MHz, "
                                         f"below the {profile.name} ceiling of {profile.clock_ceiling_mhz} MHz")
        assert nominal < first_error < profile.clock_ceiling_mhz
        # and what they report: the column and row sums of each tile's errors
        np.testing.assert_array_equal(stats.col_dev, wrapped(errors.sum(axis=1)))
        np.testing.assert_array_equal(stats.row_dev, wrapped(errors.sum(axis=2)))
        # back at the rated clock the board computes exactly again
        acc.set_clock(nominal)
        np.testing.assert_array_equal(acc.gemm(x, w).y, expected)
        assert acc.last_stats.tiles_err == 0 and acc.last_stats.tiles_recover == 0


class LeftEarly(Exception):
    pass


@pytest.mark.parametrize("exit_by", ["close", "exception"])
def test_nominal_clock_is_back_after_close(board, exit_by):
    profile = load_profile(board.name)
    with pytest.raises(LeftEarly) if exit_by == "exception" else contextlib.nullcontext():
        with board.open() as acc:
            at_nominal = wizard_registers(board)
            overclock = acc.set_clock(profile.nominal_clock_mhz * 1.1)
            assert wizard_registers(board) != at_nominal
            assert wizard_mhz(wizard_registers(board)) == pytest.approx(overclock, rel=1e-9)
            if exit_by == "exception":
                raise LeftEarly
    # closed: the wizard reads as it did at the rated clock, before anything opens the board again
    assert wizard_registers(board) == at_nominal
    assert wizard_mhz(at_nominal) == pytest.approx(profile.nominal_clock_mhz, rel=1e-6)
    with board.open() as acc:
        x, w = operands(np.random.default_rng(9), 40, 100, 30)
        np.testing.assert_array_equal(acc.gemm(x, w).y, oracle(x, w))

