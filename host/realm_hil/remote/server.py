"""Serve one accelerator to one authenticated client at a time over TCP.

Every frame after the login is authenticated (auth.py); every request is checked from its header
(op, ids, dtypes, shapes, size bounds) before its payload is read or the backend is touched; and
whatever way a session ends -- goodbye, crash, garbage, timeout, Ctrl-C -- the backend's clock and
policy go back to what they were at startup, because a board left overclocked by a vanished client
corrupts the next user's results silently.
"""

from __future__ import annotations

import errno
import hmac
import logging
import math
import secrets
import socket
import threading
import time
from dataclasses import asdict, dataclass, fields

import numpy as np

from ..accelerator import Accelerator
from ..errors import InputError, RealmError
from ..operating_point import OperatingPoint
from ..stats import PolicyConfig
from .auth import NONCE_BYTES, FrameAuth, SessionKeys
from .protocol import (
    ALIGN,
    MAX_TIMEOUT_S,
    ProtocolError,
    buffer_layout,
    encode_frame,
    normalize_token,
    parse_address,
    parse_header,
    recv_head,
    recv_payload,
    recv_prefix,
    send_frame,
    stats_to_wire,
    tune_socket,
    view_buffers,
)

log = logging.getLogger("realm_hil.remote")

OPS = frozenset({"gemm", "stats", "set_operating_point", "set_policy", "info", "bye"})
_POLICY_FIELDS = tuple(f.name for f in fields(PolicyConfig))


MAX_ELEMENTS = 1 << 28  # a 256 MB int8 operand, a 1 GB int32 result: beyond any board's DDR


@dataclass(frozen=True)
class ServerConfig:
    max_elements: int = 1 << 24  # bound on M*K, K*N and M*N of one GEMM
    handshake_timeout_s: float = 10.0  # an unauthenticated peer holds the only session slot meanwhile
    io_timeout_s: float = 30.0  # for the rest of a frame once it has started, and for each reply
    idle_timeout_s: float = 600.0  # between requests; frees the board from a forgotten session
    # Clocks above the safety ceiling (set_operating_point force) can damage a board; its owner opts in.
    allow_force: bool = False

    def __post_init__(self) -> None:
        if type(self.max_elements) is not int or not 1 <= self.max_elements <= MAX_ELEMENTS:
            raise InputError(f"max_elements must be an integer in 1..{MAX_ELEMENTS}, got {self.max_elements!r}")
        for name in ("handshake_timeout_s", "io_timeout_s", "idle_timeout_s"):
            value = getattr(self, name)
            # `not 0 < value <= max` also refuses NaN
            if type(value) not in (int, float) or not 0 < value <= MAX_TIMEOUT_S:
                raise InputError(f"{name} must be a number of seconds in (0, {MAX_TIMEOUT_S:g}], got {value!r}")
        if type(self.allow_force) is not bool:
            raise InputError(f"allow_force must be True or False, got {self.allow_force!r}")

    @property
    def max_payload(self) -> int:
        return 2 * (self.max_elements + ALIGN)


def error_reply(request_id, kind: str, message: str, auth: FrameAuth | None = None) -> bytes:
    return encode_frame({"id": request_id, "ok": False, "error": kind, "message": message}, auth=auth)


@dataclass(frozen=True)
class _Channel:
    """A logged-in connection: every frame is sealed with `send` and checked with `receive`."""

    conn: socket.socket
    send: FrameAuth
    receive: FrameAuth


class RemoteServer:
    """Binds at construction; serve_forever() until close() (or Ctrl-C in the caller)."""

    def __init__(self, backend: Accelerator, token: str | bytes, address: str,
                 config: ServerConfig | None = None) -> None:
        token = normalize_token(token)
        if not token:
            raise InputError("the shared token must not be empty")
        self._listener = _listen(address)
        self.backend = backend
        self.config = config or ServerConfig()
        # what every session ends with: the clock and supply at startup, normally the nominal ones
        self.startup_point = backend.operating_point
        self._startup_policy = backend.policy
        self._token = token
        self._stop = threading.Event()
        self._slot = threading.Lock()
        self._lock = threading.Lock()
        self._stop_requested = False  # by stop(), which a signal handler may call: a plain flag takes no lock
        # the current session: its socket, its thread, and an event set once it no longer uses the backend
        self._session_state: tuple[socket.socket, threading.Thread, threading.Event] | None = None

    @property
    def nominal_mhz(self) -> float:
        """The clock every session ends with."""
        return self.startup_point.clock_mhz

    @property
    def address(self) -> str:
        host, port = self._listener.getsockname()[:2]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def serve_forever(self, poll_s: float = 0.2) -> None:
        self._listener.settimeout(poll_s)  # so close() or stop() is noticed promptly
        while not (self._stop.is_set() or self._stop_requested):
            try:
                conn, peer = self._listener.accept()
            except TimeoutError:
                continue
            except OSError as exc:
                if self._stop.is_set():
                    return
                # e.g. out of file descriptors under a connection flood: wait it out, keep serving
                log.warning("accept failed: %s", exc)
                time.sleep(poll_s)
                continue
            if not self._slot.acquire(blocking=False):
                self._refuse_busy(conn, peer)
                continue
            with self._lock:
                if self._stop.is_set():  # close() ran while we accepted: it will not wait for this session
                    conn.close()
                    self._slot.release()
                    return
                thread = threading.Thread(target=self._session, args=(conn, peer, ended := threading.Event()),
                                          name=f"realm-hil session {peer[0]}", daemon=True)
                self._session_state = conn, thread, ended
                thread.start()

    def stop(self) -> None:
        """Make serve_forever return within its poll interval; safe to call from a signal handler."""
        self._stop_requested = True

    def _refuse_busy(self, conn: socket.socket, peer) -> None:
        log.info("refused %s: busy", _peer(peer))
        with conn:
            try:
                conn.settimeout(1.0)
                conn.sendall(error_reply(None, "busy", "server busy: another client is connected"))
            except OSError:
                pass

    def close(self) -> None:
        """Stop accepting, let the request in flight finish and be answered, end the session (which
        restores the nominal clock), and only then return -- a Ctrl-C meanwhile is held back until
        then -- so the caller may free the backend: a session still inside a GEMM would use it freed.
        """
        with self._lock:
            self._stop.set()
            session = self._session_state
        self._listener.close()
        if session is None:
            return
        conn, thread, ended = session
        try:
            conn.shutdown(socket.SHUT_RD)  # wakes a session waiting for a request; replies still go out
        except OSError:
            pass
        interrupted = False
        # an Event, not thread.join(): an interrupted join can mark a running thread stopped (CPython 3.11)
        while thread.is_alive() and not ended.is_set():
            try:
                ended.wait()
            except KeyboardInterrupt:
                interrupted = True
                log.warning("still stopping: waiting for the request in flight (if any), then restoring the clock")
        conn.close()  # in case the session thread never started
        if interrupted:
            raise KeyboardInterrupt

    def __enter__(self) -> RemoteServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _session(self, conn: socket.socket, peer, ended: threading.Event) -> None:
        who = _peer(peer)
        channel = bye = None
        try:
            tune_socket(conn)
            channel = self._handshake(conn, who)
            if channel is not None:
                log.info("client %s connected", who)
                bye = self._serve_client(channel)
        except (OSError, ProtocolError) as exc:
            if not self._stop.is_set():
                log.info("client %s gone: %s", who, exc)
        except Exception:
            log.exception("session with %s failed", who)
        finally:
            self._end_session(conn, who, channel, bye)
            ended.set()

    def _end_session(self, conn: socket.socket, who: str, channel: _Channel | None, bye: int | None) -> None:
        """Restore, answer a goodbye, free the slot, hang up -- in this order: a client that sees the
        hang-up finds the server free for its next connection and the board back at its nominal clock."""
        try:
            # nothing changes the backend before the login
            restored = channel is None or self._restore()
            if bye is not None:
                reply = {"ok": True} if restored else {
                    "ok": False, "error": "backend", "message": f"could not restore the nominal clock "
                                                                f"{self.nominal_mhz:g} MHz; see the server's log"}
                conn.settimeout(self.config.io_timeout_s)
                conn.sendall(encode_frame(dict(reply, id=bye), auth=channel.send))
                log.info("client %s said goodbye", who)
            elif channel is not None and self._stop.is_set():
                conn.settimeout(self.config.io_timeout_s)
                conn.sendall(error_reply(None, "shutdown", "the server is shutting down", channel.send))
                log.info("ended the session with %s: the server is stopping", who)
        except OSError:
            pass
        finally:
            with self._lock:
                self._session_state = None
            self._slot.release()
            conn.close()

    def _restore(self) -> bool:
        try:
            self.backend.set_operating_point(self.startup_point)
            self.backend.set_policy(self._startup_policy)
        except Exception:
            log.exception("could not restore the nominal clock %.3f MHz", self.nominal_mhz)
            return False
        return True

    def _handshake(self, conn: socket.socket, who: str) -> _Channel | None:
        deadline = time.monotonic() + self.config.handshake_timeout_s
        nonce = secrets.token_bytes(NONCE_BYTES)
        send_frame(conn, encode_frame({"op": "challenge", "nonce": nonce.hex()}), deadline)
        prefix = recv_prefix(conn, 0, deadline)
        head, tag = recv_head(conn, prefix, None, deadline)
        hello = parse_header(head)
        recv_payload(conn, prefix, None, tag, deadline)
        client_nonce, mac = _hex(hello.get("nonce")), _hex(hello.get("mac"))
        if hello.get("op") != "hello" or len(client_nonce) != NONCE_BYTES:
            log.warning("rejected %s: not a hello", who)
            send_frame(conn, error_reply(None, "protocol", f"expected a hello with a nonce of {NONCE_BYTES} bytes"),
                       deadline)
            return None
        keys = SessionKeys.derive(self._token, nonce, client_nonce)
        if not hmac.compare_digest(mac, keys.login):
            log.warning("rejected %s: wrong token", who)
            send_frame(conn, error_reply(None, "auth", "the server rejected the token"), deadline)
            return None
        channel = _Channel(conn, FrameAuth(keys.server_to_client), FrameAuth(keys.client_to_server))
        send_frame(conn, encode_frame({
            "op": "ready",
            "ok": True,
            "info": self.backend.info(),
            "nominal": asdict(self.backend.nominal),
            "policy": asdict(self.backend.policy),
            "limits": {"max_elements": self.config.max_elements, "allow_force": self.config.allow_force},
        }, auth=channel.send), deadline)
        return channel

    def _serve_client(self, channel: _Channel) -> int | None:
        """Requests until the client says goodbye (returns the id to answer once the clock is restored)."""
        conn = channel.conn
        while not self._stop.is_set():
            try:
                header, arrays = self._next_request(channel)
            except ProtocolError as exc:
                conn.settimeout(self.config.io_timeout_s)
                conn.sendall(error_reply(exc.request_id, exc.kind, str(exc), channel.send))
                if exc.fatal:
                    _linger(conn)
                    raise
                continue
            if header["op"] == "bye":
                return header["id"]
            reply, out = self._dispatch(header, arrays)
            conn.settimeout(self.config.io_timeout_s)
            conn.sendall(encode_frame(dict(reply, id=header["id"]), out, channel.send))

    def _next_request(self, channel: _Channel) -> tuple[dict, dict[str, np.ndarray]]:
        conn = channel.conn
        conn.settimeout(self.config.idle_timeout_s)
        try:
            prefix = recv_prefix(conn, self.config.max_payload)
        except TimeoutError:
            raise ProtocolError(f"no request for {self.config.idle_timeout_s:g} s; closing the session",
                                kind="idle", fatal=True) from None
        conn.settimeout(self.config.io_timeout_s)
        head, tag = recv_head(conn, prefix, channel.receive)
        header = None
        try:
            header = parse_header(head)
            specs = buffer_layout(header, prefix.payload_len)
            self._check_request(header, specs)
        except ProtocolError as exc:
            if header is not None and _is_id(header.get("id")):
                exc.request_id = header["id"]
            recv_payload(conn, prefix, channel.receive, tag, keep=False)
            raise
        return header, view_buffers(recv_payload(conn, prefix, channel.receive, tag), specs)

    def _check_request(self, header: dict, specs: dict) -> None:
        if not _is_id(header.get("id")):
            raise ProtocolError("request needs an integer 'id' >= 0")
        op = header.get("op")
        if op not in OPS:
            raise ProtocolError(f"unknown op {op!r}"[:200])
        if op != "gemm":
            if specs:
                raise ProtocolError(f"op {op!r} takes no buffers")
            return
        if set(specs) != {"x", "w"}:
            raise ProtocolError(f"gemm needs buffers x and w, got {sorted(specs)}"[:200])
        x, w = specs["x"], specs["w"]
        for s, what in ((x, "(M, K)"), (w, "(K, N)")):
            if s.dtype != np.int8:
                raise ProtocolError(f"{s.name} must have dtype int8, got {s.dtype}", kind="value")
            if len(s.shape) != 2 or min(s.shape) < 1:
                raise ProtocolError(f"{s.name} must be 2-D {what} with every dimension >= 1, got {s.shape}",
                                    kind="value")
        (m, k), (k2, n) = x.shape, w.shape
        if k != k2:
            raise ProtocolError(f"inner dimensions differ: x is {x.shape} and w is {w.shape}", kind="value")
        limit = self.config.max_elements
        for name, count in (("M*K", m * k), ("K*N", k * n), ("M*N", m * n)):
            if count > limit:
                raise ProtocolError(f"GEMM {m}x{k}x{n} too large: {name} = {count} exceeds the server's "
                                    f"limit of {limit} elements", kind="value")

    def _dispatch(self, header: dict, arrays: dict[str, np.ndarray]) -> tuple[dict, list]:
        try:
            return getattr(self, f"_op_{header['op']}")(header, arrays)
        except _Forbidden as exc:
            return {"ok": False, "error": "forbidden", "message": str(exc)}, []
        except ValueError as exc:
            return {"ok": False, "error": "value", "message": str(exc)}, []
        except RealmError as exc:
            return {"ok": False, "error": "unavailable", "message": str(exc)}, []
        except Exception as exc:
            log.exception("backend failed on %s", header["op"])
            return {"ok": False, "error": "backend", "message": f"{type(exc).__name__}: {exc}"}, []

    def _op_gemm(self, header: dict, arrays: dict) -> tuple[dict, list]:
        result = self.backend.gemm(arrays["x"], arrays["w"])
        meta, stats_arrays = stats_to_wire(result.stats)
        return {"ok": True, **meta}, [("y", result.y), *stats_arrays]

    def _op_stats(self, header: dict, arrays: dict) -> tuple[dict, list]:
        if self.backend.last_stats is None:
            return {"ok": True, "stats": False}, []
        meta, stats_arrays = stats_to_wire(self.backend.last_stats)
        return {"ok": True, "stats": True, **meta}, stats_arrays

    def _op_set_operating_point(self, header: dict, arrays: dict) -> tuple[dict, list]:
        mhz, voltage, force = header.get("mhz"), header.get("voltage_v"), header.get("force", False)
        if type(mhz) not in (int, float) or not math.isfinite(mhz) or mhz <= 0:
            raise InputError(f"clock must be a positive finite frequency in MHz, got {mhz!r}"[:200])
        if voltage is not None and type(voltage) not in (int, float):
            raise InputError(f"voltage_v must be a number of volts or null, got {voltage!r}"[:200])
        if type(force) is not bool:
            raise InputError("force must be true or false")
        if force and not self.config.allow_force:
            raise _Forbidden("this server refuses clocks forced past the safety ceiling; "
                             "its owner can allow them with `realm-hil serve --allow-force`")
        applied = self.backend.set_operating_point(OperatingPoint(mhz, voltage), force=force)
        return {"ok": True, "mhz": applied.clock_mhz, "voltage_v": applied.voltage_v}, []

    def _op_set_policy(self, header: dict, arrays: dict) -> tuple[dict, list]:
        policy = header.get("policy")
        if not isinstance(policy, dict) or not set(policy) <= set(_POLICY_FIELDS):
            raise InputError(f"policy must be an object with keys among {', '.join(_POLICY_FIELDS)}")
        for key, value in policy.items():
            expected = str if key == "mode" else int
            if type(value) is not expected:
                raise InputError(f"policy field {key} must be {expected.__name__}, got {value!r}"[:200])
        self.backend.set_policy(PolicyConfig(**policy))
        return {"ok": True}, []

    def _op_info(self, header: dict, arrays: dict) -> tuple[dict, list]:
        return {"ok": True, "info": self.backend.info()}, []


def _listen(address: str) -> socket.socket:
    host, port = parse_address(address, listen=True)
    try:
        family, _, _, _, sockaddr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                       flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise InputError(f"cannot listen on {address}: unknown host {host!r} ({exc.strerror})") from None
    try:
        return socket.create_server(sockaddr[:2], family=family)
    except OSError as exc:
        reason = {
            errno.EADDRINUSE: f"port {port} is in use (is another server running?)",
            errno.EADDRNOTAVAIL: f"{host} is not an address of this machine",
            errno.EACCES: f"no permission to listen on port {port}",
        }.get(exc.errno, exc.strerror or str(exc))
        raise InputError(f"cannot listen on {address}: {reason}") from None


class _Forbidden(Exception):
    """A request the server's owner has not allowed."""


def _linger(conn: socket.socket, seconds: float = 1.0) -> None:
    """Drain briefly before closing: closing with unread input sends a RST that can destroy the
    error reply before the peer reads it."""
    deadline = time.monotonic() + seconds
    scratch = bytearray(1 << 16)
    try:
        conn.shutdown(socket.SHUT_WR)
        while (left := deadline - time.monotonic()) > 0:
            conn.settimeout(left)
            if conn.recv_into(scratch) == 0:
                return
    except OSError:
        pass


def _hex(value) -> bytes:
    try:
        return bytes.fromhex(value) if isinstance(value, str) else b""
    except ValueError:
        return b""


def _is_id(value) -> bool:
    return type(value) is int and value >= 0


def _peer(peer) -> str:
    return f"{peer[0]}:{peer[1]}"
