"""Independent checks that a quarantined payload carries no personal data (tests only).

Addresses are found here by splitting the bytes on characters no address has and asking `ipaddress`,
and their expected masks are computed with `hmac` directly: a different method from the cleaner's
(regular expressions and its own masker), so the two cannot share a mistake."""
from __future__ import annotations

import hmac
import ipaddress
import re

from lambdas.contracts import clickstream as contract

# local parts up to 64 characters (RFC 5321), so a long run without an address is not quadratic
EMAIL = re.compile(rb"[A-Za-z0-9._%+\-]{1,64}(?:@|%40)[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")


def addresses(payload: bytes) -> set[str]:
    found = set()
    for token in re.split(rb"[^0-9A-Fa-f:.]+", payload):
        for candidate in {token, token.strip(b".:")}:
            try:
                found.add(str(ipaddress.ip_address(candidate.decode("ascii"))))
            except ValueError:
                pass
    return found


def keyed_hash(address: str, key: bytes) -> bytes:
    digest = hmac.new(key, address.encode("ascii"), "sha256").hexdigest()
    return (contract.IP_HASH_PREFIX + digest[:32]).encode("ascii")


def assert_masked(original: bytes, quarantined: bytes, key: bytes) -> None:
    """`quarantined` is `original` with each address replaced by its keyed hash and e-mails redacted."""
    found = addresses(original)
    assert not addresses(quarantined) & found, (original, quarantined)
    for address in found:
        assert keyed_hash(address, key) in quarantined, (address, quarantined)
    assert EMAIL.search(quarantined) is None, quarantined
    if not found and EMAIL.search(original) is None and b'"ip"' not in original:
        assert quarantined == original
