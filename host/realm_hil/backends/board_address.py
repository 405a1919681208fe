"""Where a board is: this machine's, a `realm-hil serve` host ("HOST:PORT"), or a PYNQ.remote board ("pynq://")."""

from __future__ import annotations

from ..errors import InputError
from ..remote.protocol import parse_address

PYNQ_SCHEME = "pynq://"  # a ZU board running the PYNQ.remote image, reached with pynq's own client
PYNQ_REMOTE_ENV = "PYNQ_REMOTE_DEVICES"  # pynq's own list of PYNQ.remote boards, "ip[,ip...]"
PYNQ_REMOTE_PORT = 7967


def is_pynq_address(address: str | None) -> bool:
    return address is not None and address.startswith(PYNQ_SCHEME)


def is_served_address(address: str | None) -> bool:
    """A `realm-hil serve` host, which loads its own overlay."""
    return address is not None and not is_pynq_address(address)


def parse_pynq_address(address: str) -> tuple[str, int]:
    """'pynq://HOST[:PORT]' (IPv6 as [addr]) -> (host, port); the port defaults to PYNQ.remote's 7967."""
    rest = address.removeprefix(PYNQ_SCHEME)
    if rest.endswith("]") or ":" not in rest:
        rest = f"{rest}:{PYNQ_REMOTE_PORT}"
    try:
        return parse_address(rest)
    except ValueError as exc:
        raise InputError(f"a PYNQ.remote board is pynq://HOST[:PORT] (e.g. pynq://192.168.2.99), "
                         f"got {address!r}: {exc}") from None
