"""A closed accelerator refuses every call with a clear error instead of crashing the process.

Cases that segfaulted before (a call reaching the freed Verilated model) run in a subprocess, so a
regression fails its test instead of killing the test run.
"""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import realm_hil
from realm_hil.accelerator import AcceleratorClosedError
from realm_hil.operating_point import OperatingPoint
from realm_hil.sim.build import build
from realm_hil.sim.overlay import SimBoardConfig, write_sim_overlay
from realm_hil.sim.pynq_remote_server import PynqRemoteServer, SimBoard
from realm_hil.stats import PolicyConfig
from realm_hil.timing.device_profile import load_profile

ISOLATED_TIMEOUT_S = 120  # the sim is built beforehand; a hang must not stall the run


@pytest.fixture(scope="module")
def sim_built():
    """Build (or find cached) the Verilated model here, so the subprocesses only load it."""
    build(8)


def run_isolated(code: str) -> str:
    """Run `code` in a fresh interpreter; its stdout, after checking it exited normally (no segfault, no hang)."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=ISOLATED_TIMEOUT_S)
    assert proc.returncode == 0, f"exit status {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


# Every call after close, on the accelerator and on the model under it; prints one line per call.
CALLS_AFTER_CLOSE = """
    import numpy as np
    import realm_hil
    from realm_hil.accelerator import AcceleratorClosedError

    acc = realm_hil.open_accelerator("sim")
    model = acc.driver.device.model
    acc.close()
    acc.close()  # closing twice is harmless
    x = np.ones((8, 8), np.int8)
    host = np.zeros(4096, np.uint8)
    calls = {
        "gemm": lambda: acc.gemm(x, x),
        "set_clock": lambda: acc.set_clock(105.0),
        "set_policy": lambda: acc.set_policy(realm_hil.PolicyConfig("classic")),
        "hard_reset": model.hard_reset,
        "soft_reset": model.soft_reset,
        "axil_read": lambda: model.axil_read(0),
        "axil_write": lambda: model.axil_write(0, 1),
        "dma_read": lambda: model.dma_read(0),
        "dma_write": lambda: model.dma_write(0, 1),
        "dma_busy": model.dma_busy,
        "map": lambda: model.map(0x2000_0000, host),
        "run": lambda: model.run(10),
        "cycles": lambda: model.cycles,
        "raw": lambda: model.raw(host, host),
    }
    for name, call in calls.items():
        try:
            call()
        except AcceleratorClosedError as exc:
            print(name, "refused:", exc)
        else:
            print(name, "ran")
    model.unmap(0x2000_0000)  # buffers freed after close unmap themselves: a no-op, not an error
    print("survived")
"""


@pytest.mark.sim
@pytest.mark.usefixtures("sim_built")
def test_every_call_after_close_on_sim_raises():
    out = run_isolated(CALLS_AFTER_CLOSE).splitlines()
    assert out[-1] == "survived"
    assert len(out) == 15
    for line in out[:-1]:
        assert " refused: " in line and line.endswith("accelerator is closed"), line


@pytest.mark.parametrize("kind", ["twin", "reference"])
def test_every_call_after_close_raises(kind):
    acc = realm_hil.open_accelerator(kind)
    x = np.ones((8, 8), np.int8)
    acc.close()
    acc.close()
    for call in (lambda: acc.gemm(x, x), lambda: acc.set_clock(105.0),
                 lambda: acc.set_policy(PolicyConfig("classic"))):
        with pytest.raises(AcceleratorClosedError, match=f"{kind} accelerator is closed"):
            call()
    assert acc.closed
    assert acc.policy == PolicyConfig()  # the refused set_policy stored nothing


RESTORE_FAILS = """
    import realm_hil
    from realm_hil.accelerator import AcceleratorClosedError

    acc = realm_hil.open_accelerator("sim")
    model = acc.driver.device.model
    acc.set_clock(120.0)

    def broken_restore():
        raise TimeoutError("clocking wizard did not lock")

    acc.clock.restore = broken_restore
    try:
        acc.close()
    except TimeoutError as exc:
        print("close raised:", exc)
    for name, call in (("set_clock", lambda: acc.set_clock(100.0)), ("axil_read", lambda: model.axil_read(0))):
        try:
            call()
        except AcceleratorClosedError as exc:
            print(name, "refused:", exc)
    print("closed:", acc.closed)
"""


@pytest.mark.sim
@pytest.mark.usefixtures("sim_built")
def test_close_frees_the_sim_and_reports_a_failed_restore():
    assert run_isolated(RESTORE_FAILS).splitlines() == [
        "close raised: clocking wizard did not lock",
        "set_clock refused: sim accelerator is closed",
        "axil_read refused: simulated accelerator is closed",
        "closed: True",
    ]


# The model is freed only after a call already running in C on another thread has returned.
CLOSE_DURING_RAW = """
    import threading, time
    import numpy as np
    from realm_hil.accelerator import AcceleratorClosedError
    from realm_hil.sim.binding import SimModel
    from realm_hil.tiling import int32_gemm, pack_tiles, plan_for, tile_operands, unpack_output, assemble

    rng = np.random.default_rng(5)
    x = rng.integers(-128, 128, (256, 2048), dtype=np.int8)
    w = rng.integers(-128, 128, (2048, 64), dtype=np.int8)
    model = SimModel(8)
    plan = plan_for(x, w, 8)
    stream = np.empty(plan.count * plan.in_tile_bytes, np.uint8)
    pack_tiles(stream, tile_operands(x, w, plan), plan, 0, plan.count)
    out = np.zeros(plan.count * plan.out_tile_bytes, np.uint8)
    started, result = threading.Event(), {}

    def stream_all():
        started.set()
        try:
            result["bytes"] = model.raw(stream, out)
        except AcceleratorClosedError as exc:
            result["refused"] = str(exc)

    worker = threading.Thread(target=stream_all)
    worker.start()
    started.wait()
    time.sleep(0.2)  # the worker is inside the C call by now (ctypes released the GIL)
    model.close()
    worker.join()
    if "bytes" in result:
        y = assemble(unpack_output(out, plan, plan.count).y, plan)
        print("completed", result["bytes"] == out.nbytes and bool((y == int32_gemm(x, w)).all()))
    else:
        print("refused before it started:", result["refused"])
"""


@pytest.mark.sim
@pytest.mark.usefixtures("sim_built")
def test_close_waits_for_a_call_in_flight_on_another_thread():
    out = run_isolated(CLOSE_DURING_RAW).strip()
    # which one happens depends on scheduling; both are safe, a crash or a wrong result is not
    assert out in ("completed True", "refused before it started: simulated accelerator is closed"), out


CLOSE_DURING_GEMM = """
    import threading, time
    import numpy as np
    import realm_hil
    from realm_hil.accelerator import AcceleratorClosedError

    rng = np.random.default_rng(6)
    x = rng.integers(-128, 128, (128, 1024), dtype=np.int8)
    w = rng.integers(-128, 128, (1024, 128), dtype=np.int8)
    acc = realm_hil.open_accelerator("sim")
    started, result = threading.Event(), {}

    def gemm():
        started.set()
        try:
            result["y"] = acc.gemm(x, w).y
        except AcceleratorClosedError as exc:
            result["refused"] = str(exc)

    worker = threading.Thread(target=gemm)
    worker.start()
    started.wait()
    time.sleep(0.2)
    acc.close()
    worker.join()
    if "y" in result:
        exact = (x.astype(np.int64) @ w.astype(np.int64)).astype(np.int32)
        print("completed", bool((result["y"] == exact).all()))
    else:
        print("refused before it started:", result["refused"])
"""


@pytest.mark.sim
@pytest.mark.usefixtures("sim_built")
def test_close_waits_for_a_gemm_in_flight_on_another_thread():
    out = run_isolated(CLOSE_DURING_GEMM).strip()
    assert out in ("completed True", "refused before it started: sim accelerator is closed"), out


@pytest.mark.parametrize("kind", ["twin", pytest.param("sim", marks=pytest.mark.sim)])
def test_a_bad_voltage_leaves_the_clock_as_it_was(kind):
    profile = load_profile("pynq-z2")
    with realm_hil.open_accelerator(kind, profile="pynq-z2", voltage_v=0.95) as acc:
        array = acc.array if kind == "twin" else acc.clock.array
        acc.set_clock(112.0)
        before = (array.point, array.slack.copy())
        for bad in (profile.v_th, 0.1, float("nan"), "0.9", True):
            with pytest.raises(ValueError, match="voltage"):
                acc.set_operating_point(OperatingPoint(118.0, bad))
            assert array.point == before[0] == OperatingPoint(112.0, 0.95)
            assert np.array_equal(array.slack, before[1])
        # the stored voltage still works: a clock change keeps it
        assert acc.set_clock(112.0) == 112.0
        assert acc.operating_point.voltage_v == 0.95 and np.array_equal(array.slack, before[1])


def test_reference_refuses_a_clock_that_is_not_a_finite_positive_number():
    with realm_hil.open_accelerator("reference") as acc:
        for bad in (float("inf"), float("nan"), 0.0, -5.0):
            with pytest.raises(ValueError, match="positive frequency"):
                acc.set_clock(bad)
            assert acc.clock_mhz == 100.0


@pytest.fixture(scope="module")
def pynq_remote(tmp_path_factory):
    config = SimBoardConfig("zcu104", array_n=8, seed=1)
    manifest = write_sim_overlay(tmp_path_factory.mktemp("overlay"), config)
    board = SimBoard(config)
    server = PynqRemoteServer(board, "127.0.0.1:0")
    yield server, manifest
    server.close()
    board.close()


@pytest.mark.sim
def test_remote_board_close_ends_the_session_when_the_restore_fails(pynq_remote):
    server, manifest = pynq_remote
    address = f"pynq://{server.address}"
    acc = realm_hil.open_accelerator("board", address=address, board_name="zcu104", manifest=manifest)
    acc.set_clock(230.0)

    def broken_restore():
        raise TimeoutError("clocking wizard did not lock")

    acc.clock.restore = broken_restore
    with pytest.raises(TimeoutError, match="did not lock"):
        acc.close()
    assert acc.closed
    with pytest.raises(AcceleratorClosedError, match="board accelerator is closed"):
        acc.set_clock(200.0)
    # the gRPC channel was closed too: nothing of this session reaches the board any more
    with pytest.raises(ValueError, match="closed channel"):
        acc.driver.mmio.read(0)
