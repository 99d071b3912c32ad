"""Independent checks that a quarantined payload carries no personal data (tests only).

Addresses are found here by brute force: every substring of a run of address characters that starts
and ends at the run's edges or at a '.' or ':' (overlapping ones too), up to the longest address, is
handed to `ipaddress`. Expected masks are computed with `hmac` directly. The cleaner instead scans with
regular expressions and a few chosen candidates per run, and masks with its own masker."""
from __future__ import annotations

import hmac
import ipaddress
import re

from lambdas.contracts import clickstream as contract

_RUN = re.compile(rb"[0-9A-Fa-f:.]+")
_LONGEST = 45  # IPv6 with an embedded IPv4, written out in full
# RFC 5321's local part (64 characters at most) and a dotted domain: plain or percent-encoded "@"
EMAIL = re.compile(rb"[A-Za-z0-9._%+\-]{1,64}(?:@|%40)[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")


def _address(candidate: bytes) -> str | None:
    try:
        return str(ipaddress.ip_address(candidate.decode("ascii")))
    except ValueError:
        return None


def addresses(payload: bytes) -> set[str]:
    """Every address in `payload`, overlapping ones included (in canonical form)."""
    found = set()
    for run in _RUN.findall(payload):
        separators = [i for i, byte in enumerate(run) if byte in b".:"]
        starts = sorted({0, *separators, *(i + 1 for i in separators)})
        ends = sorted({len(run), *separators, *(i + 1 for i in separators)})
        for start in starts:
            if start and run[start - 1:start].isdigit() and run[start:start + 1].isdigit():
                continue  # inside a number
            for end in ends:
                if start < end <= start + _LONGEST and (address := _address(run[start:end])) is not None:
                    found.add(address)
    return found


def token_addresses(payload: bytes) -> set[str]:
    """The addresses that are a whole run of address characters (less the separators around it)."""
    return {address for run in _RUN.findall(payload) if (address := _address(run.strip(b".:"))) is not None}


def keyed_hash(address: str, key: bytes) -> bytes:
    digest = hmac.new(key, address.encode("ascii"), "sha256").hexdigest()
    return (contract.IP_HASH_PREFIX + digest[:32]).encode("ascii")


def assert_masked(original: bytes, quarantined: bytes, key: bytes) -> None:
    """`quarantined` is `original` with its addresses replaced (each whole one by its keyed hash) and
    its e-mails redacted."""
    found = addresses(original)
    assert not addresses(quarantined) & found, (original, quarantined)
    for address in token_addresses(original):
        assert keyed_hash(address, key) in quarantined, (address, quarantined)
    assert EMAIL.search(quarantined) is None, quarantined
    if not found and EMAIL.search(original) is None and b'"ip"' not in original:
        assert quarantined == original
