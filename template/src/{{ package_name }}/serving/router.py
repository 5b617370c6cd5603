"""Sticky A/B routing: a caller key always lands on the same variant."""

from __future__ import annotations

import hashlib

CHAMPION_VARIANT = "champion"
CHALLENGER_VARIANT = "challenger"
_SCALE = float(2**64)


def bucket(key: str) -> float:
    """A stable position of ``key`` in [0, 1), the same in every process and restart."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


class ABRouter:
    """Send ``challenger_share`` of the keys to the challenger, the rest to the champion."""

    def __init__(self, challenger_share: float, has_challenger: bool) -> None:
        if not 0.0 <= challenger_share <= 1.0:
            raise ValueError(f"challenger_share must be in [0, 1], got {challenger_share}")
        self.challenger_share = challenger_share if has_challenger else 0.0

    def variant(self, key: str) -> str:
        """The variant that answers ``key``."""
        if self.challenger_share > 0.0 and bucket(key) < self.challenger_share:
            return CHALLENGER_VARIANT
        return CHAMPION_VARIANT
