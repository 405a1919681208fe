"""RemoteAccelerator: the Accelerator interface, served by `realm-hil serve` on another machine.

Requests are pipelined: a writer thread sends, a reader thread matches replies to requests by id,
so several GEMMs can be in flight (submit / gemm_many) and network latency overlaps with the
board's work. Every wait is bounded by `timeout`; a connection that fails or times out fails all
outstanding requests with a one-line BackendUnavailable and stays failed.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import os
import queue
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from functools import partial

import numpy as np

from ..accelerator import Accelerator
from ..errors import BackendUnavailable, InputError
from ..gemm_call import GemmCall, GemmResult
from ..operating_point import OperatingPoint
from ..stats import GemmStats, PolicyConfig
from .auth import NONCE_BYTES, FrameAuth, SessionKeys
from .protocol import (
    MAX_TIMEOUT_S,
    TOKEN_ENV,
    VERSION,
    ProtocolError,
    encode_frame,
    normalize_token,
    parse_address,
    parse_header,
    recv_frame,
    recv_head,
    recv_payload,
    recv_prefix,
    send_frame,
    stats_from_wire,
    tune_socket,
)

DEFAULT_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class PendingGemm:
    """A submitted GEMM; result() waits for it (bounded by the accelerator's timeout)."""

    accelerator: RemoteAccelerator
    future: concurrent.futures.Future

    def result(self) -> GemmResult:
        result = self.accelerator._wait(self.future)
        self.accelerator.last_stats = result.stats
        return result


class RemoteAccelerator(Accelerator):
    """An accelerator on a `realm-hil serve` host; `name` and info() are the served backend's."""

    def __init__(self, address: str, token: str | bytes | None = None, timeout: float = DEFAULT_TIMEOUT_S,
                 window: int = 8) -> None:
        host, port = parse_address(address)
        if not 0 < timeout <= MAX_TIMEOUT_S:  # refuses NaN too
            raise InputError(f"timeout must be a number of seconds in (0, {MAX_TIMEOUT_S:g}], got {timeout}")
        if window < 1:
            raise InputError(f"window must be >= 1, got {window}")
        key = normalize_token(os.environ.get(TOKEN_ENV, "") if token is None else token)
        if not key:
            raise BackendUnavailable(f"no token for the realm-hil server at {address}: "
                                     f"pass token= or set {TOKEN_ENV}")
        self.address = address
        self.timeout = timeout
        sock = connect_socket(host, port, timeout, f"the realm-hil server at {address}",
                              "is `realm-hil serve` running?")
        try:
            ready, self._send_auth, self._recv_auth = _handshake(sock, key, address, timeout)
            tune_socket(sock)
            sock.settimeout(None)  # from here on, waits are bounded per reply instead (see _wait)
        except BaseException:
            sock.close()
            raise
        info = ready["info"]
        super().__init__(int(info["array_n"]))
        self.name = str(info["backend"])
        self.policy = PolicyConfig(**ready["policy"])
        self.max_elements = int(ready["limits"]["max_elements"])
        self._point = OperatingPoint(info["clock_mhz"], info["voltage_v"])
        self._nominal = OperatingPoint(**ready["nominal"])
        self._sock = sock
        self._window = threading.BoundedSemaphore(window)
        self._lock = threading.Lock()
        self._pending: dict[int, tuple[concurrent.futures.Future, Callable]] = {}
        self._ids = itertools.count()
        self._broken: str | None = None
        self._outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._reader = threading.Thread(target=self._read_loop, name="realm-hil remote reader", daemon=True)
        self._writer = threading.Thread(target=self._write_loop, name="realm-hil remote writer", daemon=True)
        self._reader.start()
        self._writer.start()

    def submit(self, x: np.ndarray, w: np.ndarray) -> PendingGemm:
        """Send a GEMM without waiting for it; up to `window` GEMMs are in flight at once."""
        return self._submit(GemmCall.prepare(x, w, self.array_n))

    def gemm_many(self, pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> list[GemmResult]:
        """GEMMs pipelined over the connection; the result of each, in order."""
        return [pending.result() for pending in [self.submit(x, w) for x, w in pairs]]

    def _run(self, call: GemmCall) -> GemmResult:
        return self._submit(call).result()

    def _submit(self, call: GemmCall) -> PendingGemm:
        plan = call.plan
        for name, count in (("M*K", plan.m * plan.k), ("K*N", plan.k * plan.n), ("M*N", plan.m * plan.n)):
            if count > self.max_elements:
                raise InputError(f"GEMM {plan.m}x{plan.k}x{plan.n} too large: {name} = {count} exceeds the "
                                 f"server's limit of {self.max_elements} elements")
        decode = partial(_decode_gemm, (plan.m, plan.n))
        return PendingGemm(self, self._call({"op": "gemm"}, [("x", call.x), ("w", call.w)], decode))

    @property
    def operating_point(self) -> OperatingPoint:
        # Only this client can change the served operating point while it holds the session.
        return self._point

    @property
    def nominal(self) -> OperatingPoint:
        return self._nominal

    def set_operating_point(self, point: OperatingPoint, *, force: bool = False) -> OperatingPoint:
        """The served backend moves to `point` (and refuses what it cannot take, a board a voltage)."""
        reply = self._wait(self._call({"op": "set_operating_point", "mhz": point.clock_mhz,
                                       "voltage_v": point.voltage_v, "force": bool(force)}))
        self._point = OperatingPoint(reply["mhz"], reply["voltage_v"])
        return self._point

    def set_policy(self, policy: PolicyConfig) -> None:
        self._wait(self._call({"op": "set_policy", "policy": asdict(policy)}))
        self.policy = policy

    def info(self) -> dict:
        info = self._wait(self._call({"op": "info"}))["info"]
        self._point = OperatingPoint(info["clock_mhz"], info["voltage_v"])
        return {**info, "remote": self.address}

    def server_stats(self) -> GemmStats | None:
        """The statistics the served backend holds for its most recent GEMM."""
        return self._wait(self._call({"op": "stats"}, decode=_decode_stats))

    def close(self) -> None:
        if self._closed:
            return
        try:
            # The server restores its clock, answers, frees the session and only then hangs up:
            # once the reader sees the hang-up, a new connection is never refused as busy.
            self._wait(self._call({"op": "bye"}))
            self._reader.join(self.timeout)
        except BackendUnavailable:
            pass  # already disconnected: the server restores the clock on its own
        finally:
            super().close()
            self._fail(f"the connection to {self.address} is closed")
            self._outbox.put(None)
            for thread in (self._reader, self._writer):
                thread.join(self.timeout)
            self._sock.close()

    def _call(self, header: dict, arrays: list = (), decode: Callable = lambda header, arrays: header):
        self._check_open()
        if not self._window.acquire(timeout=self.timeout):
            raise self._timed_out()
        future = concurrent.futures.Future()
        future.add_done_callback(lambda _: self._window.release())
        request_id = next(self._ids)
        with self._lock:
            if self._broken is None:
                # sealed and queued under one lock, so frames go out in the order of their sequence numbers
                self._outbox.put(encode_frame(dict(header, id=request_id), arrays, self._send_auth))
                self._pending[request_id] = (future, decode)
                return future
            reason = self._broken
        future.set_exception(BackendUnavailable(reason))
        return future

    def _wait(self, future: concurrent.futures.Future):
        try:
            return future.result(timeout=self.timeout)
        except concurrent.futures.TimeoutError:
            raise self._timed_out() from None

    def _timed_out(self) -> BackendUnavailable:
        reason = f"no reply from the realm-hil server at {self.address} within {self.timeout:g} s"
        self._fail(reason)
        return BackendUnavailable(reason)

    def _fail(self, reason: str) -> None:
        with self._lock:
            if self._broken is None:
                self._broken = reason
            pending, self._pending = self._pending, {}
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        for future, _ in pending.values():
            future.set_exception(BackendUnavailable(self._broken))

    def _write_loop(self) -> None:
        while (frame := self._outbox.get()) is not None:
            try:
                self._sock.sendall(frame)
            except OSError as exc:
                self._fail(f"lost the connection to {self.address}: {exc}")
                return

    def _read_loop(self) -> None:
        # Sanity bound against a corrupted length: the int32 result, at most ~330 bytes of statistics
        # and two int32 deviation rows per tile (a GEMV with N = max_elements has N / array_n tiles),
        # and room for `extra`.
        tiles = self.max_elements // self.array_n**2 + (self.max_elements + 1) // self.array_n + 1
        max_payload = 4 * self.max_elements + (512 + 8 * self.array_n) * tiles + (1 << 24)
        try:
            while True:
                header, arrays = recv_frame(self._sock, max_payload, self._recv_auth)
                self._deliver(header, arrays)
        except (OSError, ProtocolError) as exc:
            self._fail(f"lost the connection to {self.address}: {exc}")
        except _ServerClosed as exc:
            self._fail(str(exc))

    def _deliver(self, header: dict, arrays: dict) -> None:
        request_id = header.get("id")
        with self._lock:
            future, decode = self._pending.pop(request_id, (None, None))
        if future is None:
            if header.get("ok") is False:
                raise _ServerClosed(f"the realm-hil server at {self.address} closed the session: "
                                    f"{header.get('message')}")
            raise ProtocolError(f"reply to unknown request {request_id!r}")
        if header.get("ok") is not True:
            future.set_exception(self._request_error(header))
            return
        try:
            future.set_result(decode(header, arrays))
        except (ProtocolError, KeyError, TypeError, ValueError) as exc:
            future.set_exception(BackendUnavailable(f"bad reply from {self.address}: {exc}"))
            raise ProtocolError(f"bad reply: {exc}") from None

    def _request_error(self, header: dict) -> Exception:
        kind, message = header.get("error"), " ".join(str(header.get("message", "")).split())
        if kind in ("value", "forbidden"):
            return InputError(f"{self.address}: {message}")
        if kind == "unavailable":
            return BackendUnavailable(f"{self.address}: {message}")
        return RuntimeError(f"realm-hil server at {self.address}: {message}")


class _ServerClosed(Exception):
    pass


def _decode_gemm(shape: tuple[int, int], header: dict, arrays: dict) -> GemmResult:
    y = arrays.get("y")
    if y is None or y.dtype != np.int32 or y.shape != shape:
        raise ProtocolError(f"GEMM result should be int32 {shape}")
    return GemmResult(y, stats_from_wire(header, arrays))


def _decode_stats(header: dict, arrays: dict) -> GemmStats | None:
    return stats_from_wire(header, arrays) if header.get("stats") else None


def connect_socket(host: str, port: int, timeout: float, where: str, hint: str) -> socket.socket:
    """A TCP connection to `where`, or a one-line BackendUnavailable; `hint` follows a refusal."""
    try:
        return socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError:
        raise BackendUnavailable(f"cannot reach {where}: connection refused ({hint})") from None
    except TimeoutError:
        raise BackendUnavailable(f"cannot reach {where}: no answer within {timeout:g} s") from None
    except socket.gaierror as exc:
        raise BackendUnavailable(f"cannot reach {where}: unknown host {host!r} ({exc.strerror})") from None
    except OSError as exc:
        raise BackendUnavailable(f"cannot reach {where}: {exc.strerror or exc}") from None


def login(sock: socket.socket, token: bytes, deadline: float) -> tuple[dict, FrameAuth, FrameAuth]:
    """The client's side of the login: the server's "ready" header and the tags to send and to check.

    A refusal (busy, wrong token) raises _Refused with the server's reply.
    """
    challenge, _ = recv_frame(sock, 0, deadline=deadline)
    if challenge.get("op") != "challenge":
        raise _Refused(challenge)
    server_nonce = bytes.fromhex(challenge["nonce"])
    if len(server_nonce) != NONCE_BYTES:
        raise ProtocolError(f"the challenge nonce has {len(server_nonce)} bytes, not {NONCE_BYTES}")
    client_nonce = secrets.token_bytes(NONCE_BYTES)
    keys = SessionKeys.derive(token, server_nonce, client_nonce)
    send_frame(sock, encode_frame({"op": "hello", "nonce": client_nonce.hex(), "mac": keys.login.hex()}), deadline)
    send, receive = FrameAuth(keys.client_to_server), FrameAuth(keys.server_to_client)
    # A sealed "ready" also proves the server holds the token; a refusal comes unsealed.
    prefix = recv_prefix(sock, 0, deadline)
    head, tag = recv_head(sock, prefix, receive if prefix.sealed else None, deadline)
    reply = parse_header(head)
    recv_payload(sock, prefix, receive if prefix.sealed else None, tag, deadline)
    if not prefix.sealed:
        raise _Refused(reply)
    if reply.get("op") != "ready" or reply.get("ok") is not True:
        raise ProtocolError(f"expected the server's ready, got {reply!r}"[:200])
    return reply, send, receive


class _Refused(Exception):
    def __init__(self, reply: dict) -> None:
        super().__init__(reply.get("message", reply))
        self.reply = reply


def _handshake(sock: socket.socket, key: bytes, address: str, timeout: float) -> tuple[dict, FrameAuth, FrameAuth]:
    where = f"the realm-hil server at {address}"
    try:
        return login(sock, key, time.monotonic() + timeout)
    except TimeoutError:
        raise BackendUnavailable(f"{where} did not answer within {timeout:g} s") from None
    except (ProtocolError, KeyError, TypeError, ValueError) as exc:
        raise BackendUnavailable(f"{address} does not speak realm-hil protocol v{VERSION}: {exc}") from None
    except OSError as exc:
        raise BackendUnavailable(f"{where} dropped the connection during the handshake: {exc}") from None
    except _Refused as exc:
        reply = exc.reply
    if reply.get("error") == "busy":
        raise BackendUnavailable(f"{where} is busy: another client is connected")
    if reply.get("error") == "auth":
        raise BackendUnavailable(f"{where} rejected the token (check {TOKEN_ENV} or token=)")
    raise BackendUnavailable(f"{where} refused the connection: {reply.get('message', reply)}")


def open_remote(address: str, token: str | bytes | None = None, timeout: float = DEFAULT_TIMEOUT_S,
                window: int = 8) -> RemoteAccelerator:
    """Connect to `realm-hil serve` at HOST:PORT; the token defaults to $REALM_HIL_TOKEN."""
    return RemoteAccelerator(address, token, timeout, window)
