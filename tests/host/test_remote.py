"""Remote accelerator over loopback: exactness, pipelining, authentication, hostile clients, clock restore."""

import copy
import dataclasses
import functools
import json
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from click.testing import CliRunner

import realm_hil
from realm_hil.abft.abft_profile import profile_from_dict
from realm_hil.abft.recovery import ProtectedGemm
from realm_hil.backends.reference import ReferenceAccelerator
from realm_hil.cli.main import cli
from realm_hil.cli.serve import serve
from realm_hil.errors import BackendUnavailable, InputError
from realm_hil.gemm_call import GemmSite
from realm_hil.operating_point import OperatingPoint
from realm_hil.remote import RemoteServer, ServerConfig, open_remote
from realm_hil.remote.auth import TAG_BYTES, FrameAuth
from realm_hil.remote.client import login
from realm_hil.remote.protocol import (
    MAGIC,
    PREFIX,
    SEALED,
    VERSION,
    encode_frame,
    normalize_token,
    parse_address,
    recv_exact,
    recv_frame,
    stats_from_wire,
    stats_to_wire,
)
from realm_hil.stats import GemmStats, PolicyConfig, TileStats
from realm_hil.tiling import int32_gemm

# A test run started as a background job hands its children SIGINT ignored; a terminal's Ctrl-C
# reaches a foreground server with the default handler, which is what these tests play.
SERVE_WITH_CTRL_C = (
    "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from realm_hil.cli.serve import serve; serve()"
)

TOKEN = "loopback-test-token"
NOMINAL = 100.0
LIMIT = 1 << 20
CONFIG = ServerConfig(max_elements=LIMIT, handshake_timeout_s=3, io_timeout_s=3)
OVERCLOCK = 126.0  # pynq-z2 (the twin's and the sim's default profile): some tiles err, not all
# a threshold at work: it flags some erring tiles, not all
STATISTICAL = PolicyConfig.from_floats("statistical", alpha=0.5, beta=2.0, freq_min=2)


def operands(rng, m, k, n):
    return (rng.integers(-128, 128, size=(m, k), dtype=np.int8),
            rng.integers(-128, 128, size=(k, n), dtype=np.int8))


class Served:
    def __init__(self, backend, config=CONFIG):
        self.backend = backend
        self.server = RemoteServer(backend, TOKEN, "127.0.0.1:0", config)
        self.address = self.server.address
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.close()
        self.thread.join(5)
        assert not self.thread.is_alive()


@pytest.fixture
def served():
    with realm_hil.open_accelerator("reference", nominal_mhz=NOMINAL) as backend:
        s = Served(backend)
        yield s
        s.close()


def connect(address, **kwargs):
    return open_remote(address, kwargs.pop("token", TOKEN), timeout=kwargs.pop("timeout", 5), **kwargs)


def connect_when_free(address, deadline_s=5.0):
    """The server notices a vanished client asynchronously; until then it is rightly busy."""
    end = time.monotonic() + deadline_s
    while True:
        try:
            return connect(address)
        except BackendUnavailable as exc:
            if "busy" not in str(exc) or time.monotonic() > end:
                raise
            time.sleep(0.02)


class RawSession:
    """A logged-in connection whose frames the test writes by hand, as a buggy or hostile client would."""

    def __init__(self, address, token=TOKEN):
        self.sock = socket.create_connection(parse_address(address), timeout=5)
        self.ready, self.send_auth, self.recv_auth = login(self.sock, normalize_token(token), time.monotonic() + 5)
        assert self.ready["op"] == "ready"

    def frame(self, header, arrays=()):
        return encode_frame(header, arrays, self.send_auth)

    def raw_frame(self, head, payload=b"", payload_len=None, version=VERSION):
        """A sealed frame of any bytes, claiming any payload length."""
        head = head if isinstance(head, bytes) else json.dumps(head).encode()
        prefix = PREFIX.pack(MAGIC, version, SEALED, len(head), len(payload) if payload_len is None else payload_len)
        tag = self.send_auth.header_tag(prefix, head)
        mac = self.send_auth.payload_mac(tag)
        mac.update(payload)
        self.send_auth.advance()
        return prefix + head + tag + payload + mac.digest()

    def reply(self):
        return recv_frame(self.sock, 1 << 24, self.recv_auth)[0]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.sock.close()


def assert_same_stats(remote, local):
    """Every field of GemmStats and of its TileStats, dtypes and shapes included."""
    assert isinstance(remote, GemmStats)
    for field in dataclasses.fields(GemmStats):
        if field.name == "tiles":
            for tile_field in dataclasses.fields(TileStats):
                assert_same_value(getattr(remote.tiles, tile_field.name), getattr(local.tiles, tile_field.name),
                                  f"tiles.{tile_field.name}")
        elif field.name == "extra":
            assert remote.extra.keys() == local.extra.keys()
            for key, value in local.extra.items():
                assert_same_value(remote.extra[key], value, f"extra[{key!r}]")
        else:
            assert_same_value(getattr(remote, field.name), getattr(local, field.name), field.name)


def assert_same_value(remote, local, what):
    if isinstance(local, np.ndarray):
        assert isinstance(remote, np.ndarray), what
        assert (remote.dtype, remote.shape) == (local.dtype.newbyteorder("<"), local.shape), what
        assert np.array_equal(remote, local), what
    else:
        assert type(remote) is type(local) and remote == local, what


def assert_overclocked(stats):
    """Statistics an overclock really produced: errors, deviations, flags and a threshold at work."""
    assert stats.tiles_err > 0 and stats.msd > 0 and stats.freq > 0 and stats.row_freq > 0
    assert 0 < stats.tiles_recover < stats.n_tiles and stats.freq_eff > 0 and stats.tiles.theta.any()
    assert stats.col_dev.any() and stats.row_dev.any()


def test_exact_results_and_stats_match_local(served):
    rng = np.random.default_rng(1)
    policy = PolicyConfig.from_floats("statistical", alpha=0.5, beta=2.0, freq_min=2)
    shapes = [(1, 1, 1), (8, 8, 8), (64, 576, 576), (3, 1000, 5)]
    shapes += [tuple(rng.integers(1, 200, 3)) for _ in range(12)]
    with connect(served.address) as remote, realm_hil.open_accelerator("reference") as local:
        assert (remote.name, remote.array_n, remote.clock_mhz) == ("reference", 8, NOMINAL)
        remote.set_policy(policy)
        local.set_policy(policy)
        for m, k, n in shapes:
            x, w = operands(rng, m, k, n)
            result = remote.gemm(x, w)
            assert result.y.dtype == np.int32 and np.array_equal(result.y, int32_gemm(x, w))
            assert_same_stats(result.stats, local.gemm(x, w).stats)
            assert remote.last_stats is result.stats
        assert_same_stats(remote.server_stats(), local.last_stats)
        # strided and transposed operands are made contiguous, not misread
        x, w = operands(rng, 40, 30, 20)
        assert np.array_equal(remote.gemm(x[::2], np.asfortranarray(w)).y, int32_gemm(x[::2], w))


def test_pipelined_requests(served):
    rng = np.random.default_rng(2)
    pairs = [operands(rng, *rng.integers(1, 150, 3)) for _ in range(16)]
    with connect(served.address, window=4) as remote, realm_hil.open_accelerator("reference") as local:
        results = remote.gemm_many(pairs)
        for (x, w), result in zip(pairs, results, strict=True):
            assert np.array_equal(result.y, int32_gemm(x, w))
            assert_same_stats(result.stats, local.gemm(x, w).stats)
        pending = [remote.submit(x, w) for x, w in pairs[:4]]
        for (x, w), p in reversed(list(zip(pairs[:4], pending, strict=True))):
            assert np.array_equal(p.result().y, int32_gemm(x, w))


def test_clock_policy_and_errors_keep_the_session(served):
    with connect(served.address) as remote:
        assert remote.set_clock(150) == 150.0 == remote.clock_mhz == served.backend.clock_mhz
        assert remote.info()["clock_mhz"] == 150.0
        with pytest.raises(ValueError, match="positive"):
            remote.set_clock(-5)
        with pytest.raises(ValueError, match="int8"):
            remote.gemm(np.zeros((2, 2), np.float32), np.zeros((2, 2), np.int8))
        with pytest.raises(ValueError, match="too large"):
            remote.gemm(np.zeros((2048, 1), np.int8), np.zeros((1, 2048), np.int8))
        remote.set_policy(PolicyConfig("classic"))
        assert served.backend.policy == PolicyConfig("classic")
        x, w = operands(np.random.default_rng(3), 9, 17, 33)
        assert np.array_equal(remote.gemm(x, w).y, int32_gemm(x, w))
    with connect_when_free(served.address) as remote:
        assert remote.clock_mhz == NOMINAL and remote.policy == PolicyConfig()


@pytest.mark.parametrize("allow_force", [False, True])
def test_force_past_the_ceiling_needs_the_servers_consent(allow_force):
    with realm_hil.open_accelerator("twin") as backend:  # pynq-z2: ceiling 200 MHz
        s = Served(backend, dataclasses.replace(CONFIG, allow_force=allow_force))
        try:
            with connect(s.address) as remote:
                with pytest.raises(InputError, match="exceeds the pynq-z2 safety ceiling"):
                    remote.set_clock(250)
                if allow_force:
                    assert remote.set_clock(250, force=True) == 250 == backend.clock_mhz
                else:
                    with pytest.raises(InputError, match="refuses clocks forced .* serve --allow-force"):
                        remote.set_clock(250, force=True)
                    assert backend.clock_mhz == 100
                    assert remote.set_clock(150) == 150  # the session goes on
        finally:
            s.close()


def test_the_operating_point_crosses_the_wire_and_comes_back_at_the_end():
    """The client forwards a clock and supply voltage to the served twin: the same errors as a local
    twin at that point; a voltage the device cannot take is one line; leaving restores the startup point."""
    x, w = operands(np.random.default_rng(18), 24, 256, 24)
    point = OperatingPoint(100.0, 0.85)  # the nominal clock at an undervolt: errors from the voltage alone
    with realm_hil.open_accelerator("twin", seed=5) as backend, realm_hil.open_accelerator("twin", seed=5) as local:
        s = Served(backend)
        try:
            with connect(s.address) as remote:
                assert remote.operating_point == remote.nominal == OperatingPoint(NOMINAL)
                assert remote.set_operating_point(point) == point == remote.operating_point == backend.operating_point
                local.set_operating_point(point)
                over_the_wire, here = remote.gemm(x, w), local.gemm(x, w)
                assert np.array_equal(over_the_wire.y, here.y) and not np.array_equal(here.y, int32_gemm(x, w))
                assert_same_stats(over_the_wire.stats, here.stats)
                with pytest.raises(InputError, match="must be a number above V_th") as exc:
                    remote.set_operating_point(OperatingPoint(100.0, 0.3))
                assert "\n" not in str(exc.value) and backend.operating_point == point
                assert remote.set_clock(110.0) == 110.0 and backend.operating_point == OperatingPoint(110.0, 0.85)
            with connect_when_free(s.address) as remote:
                assert remote.operating_point == backend.operating_point == OperatingPoint(NOMINAL)
        finally:
            s.close()


def test_reconnect_right_after_a_clean_close_is_never_busy(served):
    x, w = operands(np.random.default_rng(15), 8, 8, 8)
    for i in range(30):
        with connect(served.address) as remote:  # no retry: close() returns once the server is free
            assert remote.clock_mhz == NOMINAL
            remote.set_clock(150 + i)
            remote.set_policy(PolicyConfig("classic"))
            remote.gemm(x, w)
    assert served.backend.clock_mhz == NOMINAL and served.backend.policy == PolicyConfig()


def test_a_slow_login_loses_the_slot_at_the_handshake_deadline():
    with realm_hil.open_accelerator("reference", nominal_mhz=NOMINAL) as backend:
        s = Served(backend, dataclasses.replace(CONFIG, handshake_timeout_s=1.0))
        try:
            sock = socket.create_connection(parse_address(s.address), timeout=5)
            challenge, _ = recv_frame(sock, 0)
            hello = encode_frame({"op": "hello", "nonce": bytes(32).hex(), "mac": bytes(32).hex()})
            start, closed = time.monotonic(), False
            sock.settimeout(0.2)
            for byte in hello:  # a byte every 0.2 s: every single read is well within the timeout
                try:
                    sock.sendall(bytes([byte]))
                    closed = sock.recv(1) == b""
                except TimeoutError:
                    pass
                except OSError:
                    closed = True
                if closed or time.monotonic() - start > 4:
                    break
            sock.close()
            assert closed and time.monotonic() - start < 2.5
            with connect(s.address) as remote:
                assert remote.info()["backend"] == "reference"
        finally:
            s.close()


def test_wrong_token_and_unreachable_server(served):
    with pytest.raises(BackendUnavailable, match="rejected the token"):
        connect(served.address, token="not-the-token")
    with connect_when_free(served.address) as remote:
        assert remote.info()["backend"] == "reference"
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(BackendUnavailable, match="connection refused"):
        connect(f"127.0.0.1:{port}")


def test_silent_server_times_out():
    with socket.create_server(("127.0.0.1", 0)) as mute:
        start = time.monotonic()
        with pytest.raises(BackendUnavailable, match="did not answer within 0.5 s"):
            open_remote(f"127.0.0.1:{mute.getsockname()[1]}", TOKEN, timeout=0.5)
        assert time.monotonic() - start < 3


def test_second_client_is_busy(served):
    with connect(served.address) as first:
        with pytest.raises(BackendUnavailable, match="busy"):
            connect(served.address)
        x, w = operands(np.random.default_rng(4), 5, 6, 7)
        assert np.array_equal(first.gemm(x, w).y, int32_gemm(x, w))
    with connect_when_free(served.address) as second:
        assert second.clock_mhz == NOMINAL


def test_bad_requests_are_refused_and_the_session_continues(served):
    x = np.zeros((4, 4), np.int8).tobytes()
    i8, f32 = np.zeros((4, 4), np.int8), np.zeros((4, 4), np.float32)
    tall, wide = np.zeros((2048, 1), np.int8), np.zeros((1, 2048), np.int8)
    with RawSession(served.address) as raw:
        bad = [
            (lambda: raw.raw_frame(b"{not json"), "not valid JSON"),
            (lambda: raw.frame({"id": 1, "op": "reboot"}), "unknown op"),
            (lambda: raw.frame({"op": "info"}), "integer 'id'"),
            (lambda: raw.raw_frame({"id": 2, "op": "gemm", "buffers": [["x", "<c8", [2, 1]], ["w", "|i1", [1, 16]]]},
                                   bytes(32)), "not allowed"),
            (lambda: raw.frame({"id": 3, "op": "gemm"}, [("x", f32), ("w", i8)]), "dtype int8"),
            (lambda: raw.raw_frame({"id": 4, "op": "gemm", "buffers": [["x", "|i1", [4, 4]], ["w", "|i1", [4, 4]]]},
                                   x), "payload has 16"),
            (lambda: raw.frame({"id": 5, "op": "gemm"}, [("x", tall), ("w", wide)]), "too large"),
            (lambda: raw.frame({"id": 6, "op": "set_operating_point", "mhz": "fast"}), "positive finite"),
            (lambda: raw.frame({"id": 7, "op": "set_policy", "policy": {"mode": "classic", "freq_min": True}}),
             "must be int"),
            (lambda: raw.frame({"id": 8, "op": "set_policy", "policy": {"mode": "bogus"}}), "policy mode"),
        ]
        for frame, message in bad:
            raw.sock.sendall(frame())
            header = raw.reply()
            assert header["ok"] is False and message in header["message"], header
        raw.sock.sendall(raw.frame({"id": 9, "op": "info"}))
        assert raw.reply() == {"id": 9, "ok": True, "info": served.backend.info(), "buffers": []}
    assert served.backend.clock_mhz == NOMINAL and served.backend.policy == PolicyConfig()


MALFORMED_HEADERS = {
    "deep nesting": (b'{"id": 1, "op": "info", "x": ' + b"[" * 30000 + b"]" * 30000 + b"}", "nested too deeply"),
    "huge integer": (b'{"id": 1, "op": "info", "x": ' + b"9" * 5000 + b"}", "integer string conversion"),
    "huge float": (b'{"id": 1, "op": "info", "x": 1e999}', "out of range"),
    "NaN": (b'{"id": 1, "op": "set_operating_point", "mhz": NaN}', "NaN is not a JSON number"),
    "Infinity": (b'{"id": 1, "op": "set_operating_point", "mhz": Infinity}', "Infinity is not a JSON number"),
    "-Infinity": (b'{"id": 1, "op": "set_operating_point", "mhz": -Infinity}', "-Infinity is not a JSON number"),
    "not UTF-8": (b'{"id": 1, "op": "info", "x": "\xff"}', "not UTF-8"),
    "UTF-16": ('{"id": 1, "op": "info"}'.encode("utf-16"), "not UTF-8"),
    "not an object": (b"[1, 2]", "must be a JSON object"),
}


def test_malformed_headers_get_an_error_reply_and_the_session_goes_on(served):
    with RawSession(served.address) as raw:
        for head, message in MALFORMED_HEADERS.values():
            raw.sock.sendall(raw.raw_frame(head))
            header = raw.reply()
            assert (header["ok"], header["error"], header["id"]) == (False, "protocol", None), header
            assert message in header["message"], header
            raw.sock.sendall(raw.frame({"id": 2, "op": "info"}))
            assert raw.reply()["ok"] is True
    assert served.backend.clock_mhz == NOMINAL


def test_serve_bind_errors_are_one_line():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        cases = [(f"127.0.0.1:{port}", f"port {port} is in use"),
                 ("192.0.2.1:5555", "192.0.2.1 is not an address of this machine"),  # TEST-NET-1, never local
                 ("no-such-host.invalid:5555", "unknown host 'no-such-host.invalid'")]
        for bind, message in cases:
            result = CliRunner().invoke(cli, ["serve", "--bind", bind, "--backend", "reference"],
                                        env={"REALM_HIL_TOKEN": TOKEN})
            assert result.exit_code == 2, result.output
            assert result.output.startswith(f"realm-hil: error: cannot listen on {bind}: {message}")
            assert result.output.count("\n") == 1


@pytest.mark.parametrize("frame, kind", [
    (lambda raw: np.random.default_rng(9).bytes(64).replace(MAGIC, b"xxxx"), "protocol"),
    (lambda raw: raw.raw_frame({"id": 1, "op": "gemm", "buffers": [["x", "|i1", [LIMIT, 4096]],
                                                                   ["w", "|i1", [4096, 1]]]},
                               payload_len=LIMIT * 4096 + 4096), "too_large"),
    (lambda raw: raw.raw_frame(b"{}", version=VERSION + 1), "version"),
], ids=["garbage", "too_large", "version"])
def test_garbage_and_oversized_frames_close_only_that_connection(served, frame, kind):
    with RawSession(served.address) as raw:
        raw.sock.sendall(frame(raw))
        header = raw.reply()
        assert header["ok"] is False and header["error"] == kind and header["id"] is None
        assert raw.sock.recv(1) == b""
    x, w = operands(np.random.default_rng(5), 16, 16, 16)
    with connect_when_free(served.address) as remote:
        assert np.array_equal(remote.gemm(x, w).y, int32_gemm(x, w))


def test_half_a_frame_then_gone_restores_the_clock(served):
    x, w = operands(np.random.default_rng(6), 64, 576, 576)
    with RawSession(served.address) as raw:
        raw.sock.sendall(raw.frame({"id": 1, "op": "set_operating_point", "mhz": 150}))
        assert raw.reply()["mhz"] == 150
        assert served.backend.clock_mhz == 150
        frame = raw.frame({"id": 2, "op": "gemm"}, [("x", x), ("w", w)])
        raw.sock.sendall(frame[: len(frame) // 2])
    with connect_when_free(served.address) as remote:
        assert remote.clock_mhz == NOMINAL == served.backend.clock_mhz
        assert np.array_equal(remote.gemm(x, w).y, int32_gemm(x, w))


class Recording(ReferenceAccelerator):
    """The reference backend, logging every call that reaches the device."""

    def __init__(self):
        super().__init__(nominal_mhz=NOMINAL)
        self.calls = []

    def _run(self, call):
        self.calls.append(("gemm", call.x.shape, call.w.shape))
        return super()._run(call)

    def set_operating_point(self, point, *, force=False):
        self.calls.append(("set_clock", point.clock_mhz))
        return super().set_operating_point(point, force=force)

    def set_policy(self, policy):
        self.calls.append(("set_policy", policy.mode))
        super().set_policy(policy)


class SlowReference(Recording):
    """A reference backend whose GEMMs take a second, as a large one on a board does."""

    def _run(self, call):
        self.calls.append(("gemm", call.x.shape, call.w.shape))
        time.sleep(1.0)
        return ReferenceAccelerator._run(self, call)


def test_close_waits_for_the_gemm_in_flight_through_ctrl_c():
    backend = SlowReference()
    s = Served(backend)
    x, w = operands(np.random.default_rng(17), 9, 10, 11)
    remote = connect(s.address)
    remote.set_clock(150)
    pending = remote.submit(x, w)
    while len(backend.calls) < 2:
        time.sleep(0.01)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    ctrl_c = functools.partial(signal.pthread_kill, threading.main_thread().ident, signal.SIGINT)
    timers = [threading.Timer(delay, ctrl_c) for delay in (0.2, 0.4)]
    try:
        for timer in timers:
            timer.start()
        with pytest.raises(KeyboardInterrupt):
            s.server.close()
        calls_when_close_returned = list(backend.calls)
    finally:
        for timer in timers:
            timer.join()
        signal.signal(signal.SIGINT, previous)
    # close() gave the interrupt back only once the GEMM had run and the clock was restored
    assert calls_when_close_returned == [("set_clock", 150), ("gemm", x.shape, w.shape), ("set_clock", NOMINAL),
                                         ("set_policy", "off")]
    assert np.array_equal(pending.result().y, int32_gemm(x, w))
    with pytest.raises(BackendUnavailable, match="shutting down"):
        remote.info()
    remote.close()
    s.thread.join(5)


def flip(frame, offset):
    return frame[:offset] + bytes([frame[offset] ^ 1]) + frame[offset + 1:]


def sealed_with(auth, seq):
    auth = copy.copy(auth)
    auth.seq = seq
    return auth


def attack_frame(attack, raw, genuine):
    """The bytes an attacker sends after the genuine frames; every one would change the device if accepted."""
    set_clock = {"id": 3, "op": "set_operating_point", "mhz": 140}
    if attack == "tampered header":
        frame = raw.frame(set_clock)
        return flip(frame, frame.index(b"140") + 1)  # a valid request still: 150 MHz
    if attack == "tampered payload":
        return flip(raw.frame({"id": 3, "op": "gemm"}, [("x", np.ones((8, 8), np.int8)),
                                                        ("w", np.ones((8, 8), np.int8))]), -40)
    if attack == "replayed":
        return genuine[0]  # set_clock 150 again, after set_clock 120
    if attack == "reordered":
        raw.frame({"id": 3, "op": "info"})  # sealed, never sent
        return raw.frame({"id": 4, "op": "set_operating_point", "mhz": 140})
    if attack == "injected unsealed":
        return encode_frame(set_clock)
    if attack == "injected forged":  # no token: a guessed key, the right sequence number
        return encode_frame(set_clock, auth=sealed_with(FrameAuth(bytes(32)), raw.send_auth.seq))
    if attack == "reflected":  # authentic, but in the other direction
        return encode_frame(set_clock, auth=sealed_with(raw.recv_auth, raw.send_auth.seq))
    raise AssertionError(attack)


ATTACKS = ["tampered header", "tampered payload", "replayed", "reordered", "injected unsealed", "injected forged",
           "reflected"]


@pytest.mark.parametrize("attack", ATTACKS)
def test_a_frame_failing_authentication_ends_the_session_and_touches_nothing(attack):
    backend = Recording()
    s = Served(backend)
    try:
        with RawSession(s.address) as raw:
            sent = [raw.frame({"id": 1, "op": "set_operating_point", "mhz": 150}),
                    raw.frame({"id": 2, "op": "set_operating_point", "mhz": 120})]
            for frame in sent:
                raw.sock.sendall(frame)
                assert raw.reply()["ok"] is True
            assert backend.calls == [("set_clock", 150), ("set_clock", 120)]
            raw.sock.sendall(attack_frame(attack, raw, sent))
            header = raw.reply()
            assert (header["ok"], header["error"], header["id"]) == (False, "auth", None), header
            assert raw.sock.recv(1) == b""
    finally:
        s.close()
    # nothing but the two genuine requests, then the restore at the session's end
    assert backend.calls == [("set_clock", 150), ("set_clock", 120), ("set_clock", NOMINAL), ("set_policy", "off")]


class Meddler:
    """A relay between a client and the server that passes every byte through, except that it
    hands each frame from the server to `meddle(frame, sealed_index)` and forwards what it returns."""

    def __init__(self, upstream, meddle):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.upstream, self.meddle = upstream, meddle
        self.threads = [threading.Thread(target=self._relay, daemon=True)]
        self.threads[0].start()

    def _relay(self):
        client, _ = self.listener.accept()
        server = socket.create_connection(parse_address(self.upstream))
        self.socks = (client, server)
        up = threading.Thread(target=self._pump, args=(client, server), daemon=True)
        up.start()
        self.threads.append(up)
        sealed = 0
        try:
            while True:
                prefix = recv_exact(server, PREFIX.size)
                _, _, flags, header_len, payload_len = PREFIX.unpack(prefix)
                frame = prefix + recv_exact(server, header_len + payload_len + (2 * TAG_BYTES if flags else 0))
                if flags:
                    frame, sealed = self.meddle(frame, sealed), sealed + 1
                client.sendall(frame)
        except OSError:
            hang_up(client)

    @staticmethod
    def _pump(source, sink):
        try:
            while data := source.recv(1 << 16):
                sink.sendall(data)
        except OSError:
            pass
        hang_up(sink)

    def close(self):
        self.listener.close()
        for sock in getattr(self, "socks", ()):
            hang_up(sock)


def hang_up(sock):
    """shutdown, not only close: a close does not send the FIN while another thread is blocked reading."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


def tamper_result(frame, index):
    """Flip one bit of the GEMM result in the third sealed reply (ready, info, then the GEMM)."""
    if index != 2:
        return frame
    header_len = PREFIX.unpack(frame[:PREFIX.size])[3]
    return flip(frame, PREFIX.size + header_len + TAG_BYTES)


def inject_clock(frame, index):
    """Before the reply to set_operating_point (request id 1), a forged reply claiming 999 MHz."""
    if index != 2:
        return frame
    forged = {"id": 1, "ok": True, "mhz": 999.0, "voltage_v": None}
    return encode_frame(forged, auth=sealed_with(FrameAuth(bytes(32)), 2)) + frame


def test_the_client_rejects_server_frames_failing_authentication(served):
    x, w = operands(np.random.default_rng(14), 8, 16, 8)
    for meddle, request in ((tamper_result, lambda remote: remote.gemm(x, w)),
                            (inject_clock, lambda remote: remote.set_clock(150))):
        relay = Meddler(served.address, meddle)
        try:
            remote = connect(relay.address)
            assert remote.info()["backend"] == "reference"
            with pytest.raises(BackendUnavailable, match="failed authentication"):
                request(remote)
            with pytest.raises(BackendUnavailable):
                remote.info()  # the connection stays failed
            remote.close()
        finally:
            relay.close()
        with connect_when_free(served.address) as remote:  # the server went on
            assert np.array_equal(remote.gemm(x, w).y, int32_gemm(x, w)) and remote.clock_mhz == NOMINAL


KILLED_CLIENT = """
import sys, numpy as np
from realm_hil.remote import open_remote
remote = open_remote(sys.argv[1], sys.argv[2], timeout=10)
remote.set_clock(150)
rng = np.random.default_rng(0)
x = rng.integers(-128, 128, (64, 576), dtype=np.int8)
pairs = [(x, rng.integers(-128, 128, (576, 576), dtype=np.int8))] * 8
remote.gemm_many(pairs)
print("running", flush=True)
while True:
    remote.gemm_many(pairs)
"""


def test_killed_client_process_restores_the_clock(served):
    proc = subprocess.Popen([sys.executable, "-c", KILLED_CLIENT, served.address, TOKEN],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "running"
        assert served.backend.clock_mhz == 150
        time.sleep(0.1)
    finally:
        proc.kill()
        proc.wait(5)
    with connect_when_free(served.address) as remote:
        assert remote.clock_mhz == NOMINAL == served.backend.clock_mhz
        x, w = operands(np.random.default_rng(7), 33, 65, 17)
        assert np.array_equal(remote.gemm(x, w).y, int32_gemm(x, w))


def test_idle_client_is_disconnected_and_the_clock_restored():
    with realm_hil.open_accelerator("reference", nominal_mhz=NOMINAL) as backend:
        s = Served(backend, ServerConfig(max_elements=LIMIT, idle_timeout_s=0.3))
        try:
            remote = connect(s.address)
            remote.set_clock(150)
            end = time.monotonic() + 5
            while backend.clock_mhz != NOMINAL and time.monotonic() < end:
                time.sleep(0.05)
            assert backend.clock_mhz == NOMINAL
            with pytest.raises(BackendUnavailable, match="closed the session: no request for 0.3 s"):
                remote.info()
            remote.close()
        finally:
            s.close()


def test_serve_command_stops_on_ctrl_c_and_restores_the_clock(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE_WITH_CTRL_C, "--bind", "127.0.0.1:0",
         "--backend", "twin", "--token-file", str(token_file), "--allow-force"],
        stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(5):  # python may warn about something first
            line = proc.stderr.readline()
            if "serving twin on" in line:
                break
        address = line.split(" on ")[1].split(",")[0]
        remote = connect(address)
        assert remote.set_clock(250, force=True) == 250  # past pynq-z2's ceiling: --allow-force
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "stopped; clock restored to 100 MHz" in err
    with pytest.raises(BackendUnavailable):
        remote.info()
    remote.close()


def start_serve(tmp_path, *args):
    """`realm-hil serve` in a subprocess with a foreground terminal's Ctrl-C; returns it and its address."""
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    proc = subprocess.Popen([sys.executable, "-c", SERVE_WITH_CTRL_C, "--bind", "127.0.0.1:0",
                             "--token-file", str(token_file), *args], stderr=subprocess.PIPE, text=True)
    for _ in range(5):  # python may warn about something first
        line = proc.stderr.readline()
        if "serving " in line:
            return proc, line.split(" on ")[1].split(",")[0]
    proc.kill()
    raise AssertionError(f"serve did not start: {line}{proc.communicate()[1]}")


STOP_SIGNALS = {"SIGINT": [signal.SIGINT], "SIGINT SIGINT": [signal.SIGINT, signal.SIGINT],
                "SIGTERM SIGINT": [signal.SIGTERM, signal.SIGINT]}


@pytest.mark.sim
@pytest.mark.parametrize("signals", STOP_SIGNALS)
def test_serve_sim_stops_cleanly_on_signals_during_a_gemm(tmp_path, signals):
    """The server waits for the GEMM in flight, then restores the clock, then frees the model: a
    second signal during that wait must not make it free the model under the running GEMM."""
    rng = np.random.default_rng(16)
    x, w = operands(rng, 256, 1024, 1024)  # seconds on the Verilated array
    proc, address = start_serve(tmp_path, "--backend", "sim")
    try:
        remote = connect(address, timeout=120)
        assert remote.set_clock(OVERCLOCK) == OVERCLOCK
        pending = remote.submit(x, w)
        time.sleep(1.0)
        assert not pending.future.done(), "the GEMM must still be running when the signals arrive"
        for sig in STOP_SIGNALS[signals]:
            proc.send_signal(sig)
            time.sleep(0.1)
        _, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 0, f"exit {proc.returncode}: {err}"
    assert "stopped; clock restored to 100 MHz" in err
    # the GEMM ran to its end on a live model, at the overclock: bit for bit what the twin computes
    with realm_hil.open_accelerator("twin") as twin:
        twin.set_clock(OVERCLOCK)
        expected = twin.gemm(x, w).y
    y = pending.result().y
    assert np.array_equal(y, expected) and not np.array_equal(y, int32_gemm(x, w))
    with pytest.raises(BackendUnavailable, match="shutting down"):
        remote.info()
    remote.close()


def test_serve_command_refuses_without_address_or_token(monkeypatch):
    monkeypatch.delenv("REALM_HIL_TOKEN", raising=False)
    runner = CliRunner()
    result = runner.invoke(serve, ["--backend", "reference"])
    assert result.exit_code == 2 and "--bind" in result.output
    result = runner.invoke(cli, ["serve", "--bind", "127.0.0.1:0", "--backend", "reference"])
    assert result.exit_code == 2 and "REALM_HIL_TOKEN" in result.output
    result = runner.invoke(serve, ["--bind", ":5555", "--backend", "reference"])
    assert result.exit_code == 2 and "HOST:PORT" in result.output


@pytest.mark.parametrize("args", [
    *(["--idle-timeout", value] for value in ("1e10", "inf", "nan", "-inf", "0", "-1")),
    *(["--max-elements", value] for value in ("0", "1e10", str(1 << 40))),
    ["--pynq-remote", "--seed", "-1"],
], ids=lambda args: " ".join(args))
def test_serve_refuses_numbers_out_of_range_in_one_line(args, monkeypatch):
    def started(*_):
        pytest.fail(f"serve started with {args}")
    monkeypatch.setattr(RemoteServer, "serve_forever", started)
    monkeypatch.setattr("realm_hil.sim.pynq_remote_server.PynqRemoteServer.wait", started)
    result = CliRunner().invoke(cli, ["serve", "--bind", "127.0.0.1:0", *args], env={"REALM_HIL_TOKEN": TOKEN})
    assert result.exit_code == 2 and f"Invalid value for '{args[-2]}'" in result.output, result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("field, value", [
    *(("idle_timeout_s", v) for v in (1e10, float("inf"), float("nan"), 0, -1, "5", True)),
    *(("handshake_timeout_s", v) for v in (float("nan"), 1e10)),
    *(("io_timeout_s", v) for v in (float("inf"), 0.0)),
    *(("max_elements", v) for v in (0, 1 << 40, 2.5, True)),
    ("allow_force", 1),
])
def test_server_config_refuses_values_out_of_range(field, value):
    with pytest.raises(InputError, match=field):
        ServerConfig(**{field: value})


@pytest.mark.parametrize("timeout", [float("inf"), float("nan"), 1e10, 0, -1])
def test_client_refuses_timeouts_out_of_range(timeout):
    with pytest.raises(InputError, match="timeout must be a number of seconds"):
        open_remote("127.0.0.1:1", TOKEN, timeout=timeout)


@pytest.mark.sim
def test_sim_backend_behind_the_server():
    with realm_hil.open_accelerator("sim") as backend:
        s = Served(backend)
        try:
            rng = np.random.default_rng(8)
            pairs = [operands(rng, m, k, n) for m, k, n in [(8, 16, 8), (13, 40, 21), (16, 64, 9)]]
            with connect(s.address) as remote:
                assert remote.name == "sim"
                results = remote.gemm_many(pairs)
                for (x, w), result in zip(pairs, results, strict=True):
                    assert np.array_equal(result.y, int32_gemm(x, w))
                assert_same_stats(results[-1].stats, backend.last_stats)
        finally:
            s.close()


@pytest.mark.parametrize("kind", ["twin", pytest.param("sim", marks=pytest.mark.sim)])
def test_overclocked_statistics_cross_the_wire_whole(kind):
    """The whole GemmStats of an overclocked GEMM -- tiles, deviations, extras -- equals what the
    same backend with the same variation seed reports locally."""
    rng = np.random.default_rng(10)
    with realm_hil.open_accelerator(kind, seed=3) as backend, realm_hil.open_accelerator(kind, seed=3) as local:
        s = Served(backend)
        try:
            with connect(s.address) as remote:
                for acc in (remote, local):
                    assert acc.set_clock(OVERCLOCK) == OVERCLOCK
                    acc.set_policy(STATISTICAL)
                for m, k, n in [(40, 64, 40), (13, 100, 21), (64, 72, 33)]:
                    x, w = operands(rng, m, k, n)
                    over_the_wire, here = remote.gemm(x, w), local.gemm(x, w)
                    assert np.array_equal(over_the_wire.y, here.y) and not np.array_equal(here.y, int32_gemm(x, w))
                    assert_overclocked(here.stats)
                    assert_same_stats(over_the_wire.stats, here.stats)
                assert_same_stats(remote.server_stats(), local.last_stats)
        finally:
            s.close()


def test_stats_extras_and_missing_deviations_cross_the_wire():
    with realm_hil.open_accelerator("twin", seed=3) as backend:
        backend.set_clock(OVERCLOCK)
        backend.set_policy(STATISTICAL)
        x, w = operands(np.random.default_rng(11), 40, 64, 40)
        stats = backend.gemm(x, w).stats
    assert_overclocked(stats)
    extra = {"note": "seed 3", "count": 7, "ratio": 0.25, "nested": {"list": [1, 2]}, "flag": None,
             "big_endian": np.arange(6, dtype=">i4").reshape(2, 3), "mask": np.array([True, False]),
             "float": np.linspace(0, 1, 5)}
    for sent in (dataclasses.replace(stats, extra=extra), dataclasses.replace(stats, col_dev=None, row_dev=None)):
        meta, arrays = stats_to_wire(sent)
        a, b = socket.socketpair()
        with a, b:
            a.sendall(encode_frame(meta, arrays))
            header, received = recv_frame(b, 1 << 24)
        assert_same_stats(stats_from_wire(header, received), sent)


def test_abft_correct_and_statistical2d_through_the_server():
    """`run --board HOST:PORT --abft correct|statistical2d` work from the deviations the server sends."""
    rng = np.random.default_rng(12)
    x, w = operands(rng, 40, 64, 40)
    with realm_hil.open_accelerator("twin", seed=3) as backend, realm_hil.open_accelerator("twin", seed=3) as local:
        s = Served(backend)
        try:
            with connect(s.address) as remote:
                for acc in (remote, local):
                    acc.set_clock(OVERCLOCK)
                for policy in ("correct", "statistical2d"):
                    over_the_wire, here = (ProtectedGemm(acc, policy, recovery_profile(), measure=True)
                                           for acc in (remote, local))
                    site = GemmSite(0, "up", "decode")
                    assert np.array_equal(over_the_wire.gemm(x, w, site=site).y, int32_gemm(x, w))
                    here.gemm(x, w, site=site)
                    assert over_the_wire.last_cost.elements_wrong > 0
                    assert over_the_wire.last_cost == here.last_cost
                assert here.last_cost.tiles_flagged > 0
                assert_same_stats(over_the_wire.last_stats, here.last_stats)
        finally:
            s.close()


def recovery_profile():
    rule = {"alpha": -0.5, "beta": 25.0, "freq_min": 1}
    return profile_from_dict({
        "schema_version": 1, "model": "test", "array_n": 8, "tolerance": 1.0,
        "classes": {"sensitive": {"components": ["o", "down"], **rule},
                    "resilient": {"components": ["q", "k", "v", "gate", "up"], **rule}},
        "approx": {c: [10, 20, 30] for c in ("q", "k", "v", "o", "gate", "up", "down")},
        "provenance": {"text": "t", "tokens": 1, "seed": 0, "date": "2025-01-01", "grid": "g"},
    })
