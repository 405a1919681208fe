"""A point's stable key and seed: both from what the point is, never from its place in the grid or its worker."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np


def point_key(point) -> str:
    """The canonical JSON of a point (a dataclass of JSON values): its identity in files, sorting and seeds."""
    if not dataclasses.is_dataclass(point):
        raise TypeError(f"a campaign point must be a dataclass, got {type(point).__name__}")
    return json.dumps(dataclasses.asdict(point), sort_keys=True, separators=(",", ":"))


def key_digest(key: str) -> str:
    """A file name for a key (keys hold '/', '=' and quotes)."""
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def point_seed(campaign_seed: int, point) -> int:
    """A 64-bit seed for a point from the campaign seed and the point's key.

    SeedSequence mixes the campaign seed with the key's hash, so neighbouring keys or seeds give
    unrelated streams, and a point draws the same numbers whatever ran before it or where.
    """
    digest = hashlib.sha256(point_key(point).encode()).digest()
    words = [int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4)]
    return int(np.random.SeedSequence([campaign_seed, *words]).generate_state(1, np.uint64)[0])
