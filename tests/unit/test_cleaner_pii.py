"""IP masking: the fast IPv4 parser agrees with the standard library on any text, and both modes
give what the contract says."""
from __future__ import annotations

import hashlib
import hmac
import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lambdas.cleaner.pii import LOCAL_KEY, IpMasker

HASH, TRUNCATE = IpMasker("hash", LOCAL_KEY), IpMasker("truncate", b"")


def reference(text: str, mode: str) -> str | None:
    """The contract's masking, written with ipaddress alone."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if mode == "truncate":
        network = ipaddress.IPv4Network if address.version == 4 else ipaddress.IPv6Network
        return str(network((int(address), 24 if address.version == 4 else 48), strict=False).network_address)
    canonical = str(type(address)(int(address)))
    return "h1:" + hmac.new(LOCAL_KEY, canonical.encode(), hashlib.sha256).hexdigest()[:32]


_texts = st.one_of(
    st.ip_addresses().map(str), st.ip_addresses(v=4).map(lambda a: str(a).replace(".", ".0", 1)),
    st.from_regex(r"[0-9]{1,4}(\.[0-9]{1,4}){0,4}", fullmatch=True), st.text(alphabet="0123456789.:abcdefABCDEF%x ", max_size=20),
    st.text(max_size=12),
)


@settings(max_examples=2_000, deadline=None)
@given(_texts, st.sampled_from(["hash", "truncate"]))
def test_masks_agree_with_ipaddress(text: str, mode: str) -> None:
    masker = HASH if mode == "hash" else TRUNCATE
    assert masker.mask(text) == reference(text, mode)


@pytest.mark.parametrize("text, truncated", [
    ("203.0.113.77", "203.0.113.0"), ("0.0.0.0", "0.0.0.0"), ("2001:db8:abcd:12::1", "2001:db8:abcd::"),
    ("fe80::1%eth0", "fe80::"), ("::ffff:203.0.113.77", "::"), ("01.2.3.4", None), ("1.2.3.4 ", None),
    ("1.2.3.4\x00", None), ("١.٢.٣.٤", None),
])
def test_truncation_examples(text: str, truncated: str | None) -> None:
    assert TRUNCATE.mask(text) == truncated
