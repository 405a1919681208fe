"""Wire format of the remote accelerator: length-prefixed frames of a JSON header and raw buffers.

A frame is a fixed prefix (magic, protocol version, flags, header length, payload length), a
UTF-8 JSON object, then the payload: the arrays the header's "buffers" list describes as
[name, dtype, shape], concatenated in that order, each starting at a multiple of 8 bytes so the
receiver can view them in place with numpy. Arrays never go through JSON: a 64x576x576 GEMM
moves ~0.5 MB, and decoding that from text would cost more than the GEMM itself.

Every frame after the login is sealed (auth.py): a tag follows the header and another the
payload. The header's tag is checked before the header is parsed, and only little-endian
integer and bool dtypes cross the wire, so a request can be validated from its authentic header
alone (sizes, shapes, dtypes) before any payload byte is read.
"""

from __future__ import annotations

import hmac
import json
import math
import socket
import struct
import time
from dataclasses import dataclass, fields

import numpy as np

from ..errors import InputError
from ..stats import GemmStats, TileStats
from .auth import TAG_BYTES, FrameAuth

MAGIC = b"RHIL"
# 2: sealed frames after a login that derives session keys from both sides' nonces; 3: the operating
# point (clock and supply voltage) replaces set_clock, and "ready" names the nominal one
VERSION = 3
PREFIX = struct.Struct("!4sHBxIQ")
SEALED = 0x01  # prefix flag: the header and the payload are each followed by a tag
MAX_HEADER_BYTES = 64 * 1024
ALIGN = 8
WIRE_DTYPES = frozenset({"|i1", "|u1", "|b1", "<i2", "<u2", "<i4", "<u4", "<i8", "<u8", "<f4", "<f8"})
TILE_FIELDS = tuple(f.name for f in fields(TileStats))
TOKEN_ENV = "REALM_HIL_TOKEN"
MAX_TIMEOUT_S = 86400.0  # a day: past any sane wait, and far inside what a socket timeout can hold


class ProtocolError(Exception):
    """A frame or request that breaks the protocol; `kind` is the error code sent back."""

    def __init__(self, message: str, kind: str = "protocol", fatal: bool = False) -> None:
        super().__init__(message)
        self.kind = kind
        # Fatal: the byte stream can no longer be trusted to be at a frame boundary, or to come from the peer.
        self.fatal = fatal
        self.request_id: int | None = None


@dataclass(frozen=True)
class Prefix:
    raw: bytes  # covered by the header tag
    header_len: int
    payload_len: int
    sealed: bool


@dataclass(frozen=True)
class BufferSpec:
    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    offset: int

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


def normalize_token(token: str | bytes) -> bytes:
    """Surrounding whitespace (a token file's trailing newline) is not part of the token."""
    return (token.encode() if isinstance(token, str) else bytes(token)).strip()


def parse_address(address: str, *, listen: bool = False) -> tuple[str, int]:
    """'HOST:PORT' or '[v6]:PORT' -> (host, port); port 0 (any free port) only for listening."""
    host, sep, port_text = address.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port_text.isdigit():
        raise InputError(f"address must be HOST:PORT (e.g. 192.168.2.99:5555), got {address!r}")
    port = int(port_text)
    if not (0 if listen else 1) <= port <= 65535:
        raise InputError(f"port must be in 1..65535, got {port}")
    return host, port


def tune_socket(sock: socket.socket) -> None:
    """No Nagle delay on small replies; keepalive so a peer that vanished without a FIN is noticed."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3)):
        if hasattr(socket, name):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


def _wire_dtype(a: np.ndarray) -> str:
    return a.dtype.newbyteorder("<").str


def _pad(n: int) -> int:
    return -n % ALIGN


def encode_frame(header: dict, arrays: list[tuple[str, np.ndarray]] = (), auth: FrameAuth | None = None) -> bytes:
    """One frame, sealed with the sender's next tag when `auth` is given; arrays are converted to
    little-endian contiguous copies, so callers may reuse theirs."""
    wire = []
    for name, a in arrays:
        a = np.asarray(a)
        if _wire_dtype(a) not in WIRE_DTYPES:
            raise ValueError(f"array {name!r} has dtype {a.dtype}, which does not cross the wire")
        wire.append((name, np.ascontiguousarray(a, dtype=_wire_dtype(a))))
    header = dict(header, buffers=[[name, a.dtype.str, list(a.shape)] for name, a in wire])
    # allow_nan=False: never send what the receiving parse_header refuses
    head = json.dumps(header, separators=(",", ":"), default=_json_default, allow_nan=False).encode()
    parts, payload_len = [], 0
    for _, a in wire:
        parts += [a.tobytes(), bytes(_pad(a.nbytes))]
        payload_len += a.nbytes + _pad(a.nbytes)
    prefix = PREFIX.pack(MAGIC, VERSION, 0 if auth is None else SEALED, len(head), payload_len)
    if auth is None:
        return b"".join([prefix, head, *parts])
    header_tag = auth.header_tag(prefix, head)
    mac = auth.payload_mac(header_tag)
    for part in parts:
        mac.update(part)
    auth.advance()
    return b"".join([prefix, head, header_tag, *parts, mac.digest()])


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()  # only small diagnostic values in `extra`/`info`; bulk data is raw
    # Metadata is diagnostic: a readable form beats failing the request that carries it.
    return str(value)


def _recv_into(sock: socket.socket, view: memoryview, deadline: float | None) -> int:
    """recv_into bounded by an absolute deadline (a whole exchange), else by the socket's timeout (each read)."""
    if deadline is not None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("deadline passed")
        sock.settimeout(left)
    return sock.recv_into(view)


def recv_exact(sock: socket.socket, n: int, deadline: float | None = None) -> bytearray:
    """Exactly n bytes; ConnectionError when the peer closes first."""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = _recv_into(sock, view[got:got + (1 << 20)], deadline)
        if k == 0:
            raise ConnectionError(f"peer closed the connection after {got} of {n} bytes")
        got += k
    return buf


def send_frame(sock: socket.socket, frame: bytes, deadline: float) -> None:
    sock.settimeout(max(deadline - time.monotonic(), 1e-3))
    sock.sendall(frame)


def recv_prefix(sock: socket.socket, max_payload: int, deadline: float | None = None) -> Prefix:
    raw = bytes(recv_exact(sock, PREFIX.size, deadline))
    magic, version, flags, header_len, payload_len = PREFIX.unpack(raw)
    if magic != MAGIC:
        raise ProtocolError("not a realm-hil frame (bad magic)", fatal=True)
    if version != VERSION:
        raise ProtocolError(f"protocol version {version} unsupported; this side speaks {VERSION}",
                            kind="version", fatal=True)
    if flags & ~SEALED:
        raise ProtocolError(f"unknown frame flags {flags:#04x}", fatal=True)
    if not 2 <= header_len <= MAX_HEADER_BYTES:
        raise ProtocolError(f"header of {header_len} bytes outside 2..{MAX_HEADER_BYTES}", fatal=True)
    if payload_len > max_payload:
        raise ProtocolError(f"payload of {payload_len} bytes exceeds the limit of {max_payload}",
                            kind="too_large", fatal=True)
    return Prefix(raw, header_len, payload_len, bool(flags & SEALED))


def recv_head(sock: socket.socket, prefix: Prefix, auth: FrameAuth | None,
              deadline: float | None = None) -> tuple[bytearray, bytes | None]:
    """The raw header and, for a sealed frame, its tag, already checked: nothing unauthenticated gets parsed."""
    if prefix.sealed != (auth is not None):
        what = "an unauthenticated frame" if auth is not None else "a sealed frame before the login"
        raise ProtocolError(f"{what} (was it injected?)", kind="auth", fatal=True)
    head = recv_exact(sock, prefix.header_len, deadline)
    if auth is None:
        return head, None
    tag = bytes(recv_exact(sock, TAG_BYTES, deadline))
    _check_tag(auth.header_tag(prefix.raw, head), tag)
    return head, tag


def recv_payload(sock: socket.socket, prefix: Prefix, auth: FrameAuth | None, header_tag: bytes | None,
                 deadline: float | None = None, *, keep: bool = True) -> bytearray | None:
    """The payload (or, keep=False, its bytes read and dropped), checked against its tag; ends the frame."""
    mac = None if auth is None else auth.payload_mac(header_tag)
    if keep:
        payload = recv_exact(sock, prefix.payload_len, deadline)
        if mac is not None:
            mac.update(payload)
    else:
        payload, scratch, left = None, bytearray(min(prefix.payload_len, 1 << 16)), prefix.payload_len
        view = memoryview(scratch)
        while left > 0:
            k = _recv_into(sock, view[:min(left, len(scratch))], deadline)
            if k == 0:
                raise ConnectionError("peer closed the connection inside a frame")
            if mac is not None:
                mac.update(view[:k])
            left -= k
    if auth is not None:
        _check_tag(mac.digest(), bytes(recv_exact(sock, TAG_BYTES, deadline)))
        auth.advance()
    return payload


def _check_tag(expected: bytes, got: bytes) -> None:
    if not hmac.compare_digest(expected, got):
        raise ProtocolError("frame failed authentication (altered, replayed, reordered or injected)",
                            kind="auth", fatal=True)


def parse_header(raw: bytes) -> dict:
    """A JSON object in strict UTF-8, with finite numbers only; anything else is a (non-fatal) ProtocolError."""
    try:
        header = json.loads(bytes(raw).decode("utf-8"), parse_constant=_refuse_constant, parse_float=_finite_float)
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"header is not UTF-8: {exc}") from None
    except RecursionError:
        raise ProtocolError("header is not valid JSON: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, a non-finite number, an integer past the digit limit
        raise ProtocolError(f"header is not valid JSON: {exc}"[:300]) from None
    if not isinstance(header, dict):
        raise ProtocolError("header must be a JSON object")
    return header


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def buffer_layout(header: dict, payload_len: int) -> dict[str, BufferSpec]:
    """Check the header's buffer list against the payload length; name -> where each buffer lies."""
    specs, offset = {}, 0
    entries = header.get("buffers", [])
    if not isinstance(entries, list):
        raise ProtocolError("'buffers' must be a list")
    for entry in entries:
        if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str)
                and isinstance(entry[1], str) and isinstance(entry[2], list)):
            raise ProtocolError(f"buffer descriptor must be [name, dtype, shape], got {entry!r}"[:200])
        name, dtype, shape = entry
        if dtype not in WIRE_DTYPES:
            raise ProtocolError(f"buffer {name!r}: dtype {dtype!r} not allowed", kind="value")
        if len(shape) > 4 or not all(type(d) is int and 0 <= d <= payload_len for d in shape):
            raise ProtocolError(f"buffer {name!r}: bad shape {shape!r}"[:200], kind="value")
        if name in specs:
            raise ProtocolError(f"buffer {name!r} appears twice")
        spec = BufferSpec(name, np.dtype(dtype), tuple(shape), offset)
        offset += spec.nbytes + _pad(spec.nbytes)
        if offset > payload_len:
            break
        specs[name] = spec
    if offset != payload_len:
        raise ProtocolError(f"buffers describe {offset} bytes but the payload has {payload_len}")
    return specs


def view_buffers(payload: bytearray, specs: dict[str, BufferSpec]) -> dict[str, np.ndarray]:
    """Arrays viewing the payload in place (writable; they keep the payload alive)."""
    return {
        s.name: np.frombuffer(payload, s.dtype, math.prod(s.shape), s.offset).reshape(s.shape)
        for s in specs.values()
    }


def recv_frame(sock: socket.socket, max_payload: int, auth: FrameAuth | None = None,
               deadline: float | None = None) -> tuple[dict, dict[str, np.ndarray]]:
    """A whole frame, for the side that trusts its peer's framing (the client reading replies)."""
    prefix = recv_prefix(sock, max_payload, deadline)
    head, tag = recv_head(sock, prefix, auth, deadline)
    header = parse_header(head)
    specs = buffer_layout(header, prefix.payload_len)
    return header, view_buffers(recv_payload(sock, prefix, auth, tag, deadline), specs)


DEVIATIONS = ("col_dev", "row_dev")


def stats_to_wire(stats: GemmStats) -> tuple[dict, list[tuple[str, np.ndarray]]]:
    """Everything a GemmStats holds: the tile statistics, the per-tile deviations (what `correct`
    and `statistical2d` work from) and the extras.

    Tile arrays travel narrowed to the smallest unsigned type holding their values (a histogram
    bin of a tile never exceeds the array size, yet is int64 in memory: ~5x fewer bytes), and the
    header records each original dtype so the receiver rebuilds them exactly."""
    columns = [getattr(stats.tiles, name) for name in TILE_FIELDS]
    arrays = [(f"tiles.{name}", _narrow(a)) for name, a in zip(TILE_FIELDS, columns, strict=True)]
    arrays += [(f"dev.{name}", getattr(stats, name)) for name in DEVIATIONS if getattr(stats, name) is not None]
    raw = {k for k, v in stats.extra.items() if isinstance(v, np.ndarray) and _wire_dtype(v) in WIRE_DTYPES}
    extra = {k: v for k, v in stats.extra.items() if k not in raw}
    arrays += [(f"extra.{k}", stats.extra[k]) for k in raw]
    dtypes = [_wire_dtype(a) for a in columns]
    return {"tile_grid": list(stats.tile_grid), "tile_dtypes": dtypes, "extra": extra}, arrays


def _narrow(a: np.ndarray) -> np.ndarray:
    if a.dtype.kind not in "iu" or a.size == 0 or a.min() < 0:
        return a
    top = int(a.max())
    for dtype in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(dtype).max:
            return a.astype(dtype)
    return a


def stats_from_wire(meta: dict, arrays: dict[str, np.ndarray]) -> GemmStats:
    missing = [name for name in TILE_FIELDS if f"tiles.{name}" not in arrays]
    if missing:
        raise ProtocolError(f"statistics reply lacks {', '.join(missing)}")
    dtypes = meta.get("tile_dtypes")
    if not (isinstance(dtypes, list) and len(dtypes) == len(TILE_FIELDS) and set(dtypes) <= WIRE_DTYPES):
        raise ProtocolError("statistics reply lacks valid tile dtypes")
    tiles = TileStats(**{name: arrays[f"tiles.{name}"].astype(dtype, copy=False)
                         for name, dtype in zip(TILE_FIELDS, dtypes, strict=True)})
    grid, extra = meta.get("tile_grid"), meta.get("extra", {})
    if not (isinstance(grid, list) and len(grid) == 2 and all(type(v) is int for v in grid)):
        raise ProtocolError(f"statistics reply has a bad tile grid {grid!r}"[:200])
    if not isinstance(extra, dict):
        raise ProtocolError("statistics reply has a bad 'extra'")
    deviations = {name: arrays.get(f"dev.{name}") for name in DEVIATIONS}
    for name, d in deviations.items():
        if d is not None and (d.ndim != 2 or len(d) != len(tiles)):
            raise ProtocolError(f"statistics reply: {name} of shape {d.shape} for {len(tiles)} tiles")
    extra = {**extra, **{k.removeprefix("extra."): v for k, v in arrays.items() if k.startswith("extra.")}}
    return GemmStats(tiles, tuple(grid), **deviations, extra=extra)
