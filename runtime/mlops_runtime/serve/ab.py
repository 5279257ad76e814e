"""A/B split between the champion and the challenger, sticky per key.

The same key always lands in the same arm (for a given weight): the key's blake2b hash mapped to
[0, 1) is compared with `challenger_weight`. The key is, in order: the `sticky_key` field of the
request's first record, a header of that name (`sticky_key`, `sticky-key` or `x-sticky-key`),
else the request id, so a request without a key still gets a random-looking but repeatable arm.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

CHAMPION = "champion"
CHALLENGER = "challenger"
_SCALE = float(1 << 64)


def ab_config(config: Mapping[str, Any]) -> Mapping[str, Any] | None:
    return (config.get("serving") or {}).get("ab_test")


def sticky_field(config: Mapping[str, Any]) -> str | None:
    ab = ab_config(config)
    return None if ab is None else ab.get("sticky_key")


def bucket(key: str) -> float:
    """A uniform number in [0, 1) that depends only on the key."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def choose_arm(key: str, challenger_weight: float) -> str:
    return CHALLENGER if bucket(key) < challenger_weight else CHAMPION


def header_names(sticky: str) -> tuple[bytes, ...]:
    """Header spellings accepted for a sticky key, lower-case as ASGI delivers them."""
    base = sticky.lower()
    dashed = base.replace("_", "-")
    names = dict.fromkeys([base, dashed, "x-" + dashed])
    return tuple(n.encode("latin-1") for n in names)


def sticky_key(
    sticky: str | None,
    first_record: Any,
    headers: Mapping[bytes, bytes],
    request_id: str,
) -> str:
    if sticky is not None:
        if isinstance(first_record, dict):
            value = first_record.get(sticky)
            if value is not None and not isinstance(value, (dict, list)):
                return str(value)
        for name in header_names(sticky):
            found = headers.get(name)
            if found:
                return found.decode("latin-1")
    return request_id
