"""Keys and tags of the remote protocol: the login proof, then a MAC on every later frame.

At login the server sends a random nonce and the client answers with its own nonce and a proof
derived from the token and both nonces, so neither the token nor a replayable answer crosses
the wire. Both sides then derive one key per direction (HKDF-SHA256, RFC 5869, salted with the
two nonces), and every later frame carries HMAC-SHA256 tags over that direction's sequence
number and the frame's bytes: a frame altered, replayed, reordered, reflected back to its
sender or injected by someone without the token fails its tag.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

NONCE_BYTES = 32
TAG_BYTES = 32
_LABEL = b"realm-hil protocol 2 "


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


@dataclass(frozen=True)
class SessionKeys:
    login: bytes  # what the client sends to prove it holds the token
    client_to_server: bytes
    server_to_client: bytes

    @classmethod
    def derive(cls, token: bytes, server_nonce: bytes, client_nonce: bytes) -> SessionKeys:
        prk = _hmac(server_nonce + client_nonce, token)  # HKDF-Extract

        def expand(purpose: bytes) -> bytes:  # HKDF-Expand of one hash-sized block
            return _hmac(prk, _LABEL + purpose + b"\x01")

        return cls(expand(b"login"), expand(b"client to server"), expand(b"server to client"))


class FrameAuth:
    """The tags of one direction's frames, numbered from 0 after the login.

    The header tag covers the sequence number, the fixed prefix and the header, so a receiver
    knows the header is authentic before parsing it; the payload tag chains from the header tag.
    """

    def __init__(self, key: bytes) -> None:
        self._key = key
        self.seq = 0

    def header_tag(self, prefix: bytes, head: bytes) -> bytes:
        return _hmac(self._key, b"H" + self.seq.to_bytes(8, "big") + prefix + head)

    def payload_mac(self, header_tag: bytes) -> hmac.HMAC:
        """A MAC to feed the payload into; its digest is the frame's payload tag."""
        return hmac.new(self._key, b"P" + header_tag, hashlib.sha256)

    def advance(self) -> None:
        self.seq += 1
