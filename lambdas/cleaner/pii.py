"""IP addresses before the lake: a keyed hash (the default) or the address's network.

The hash is HMAC-SHA256 over the canonical address, keyed with a secret that lives in Secrets
Manager (or SSM Parameter Store) in AWS and is read once per container; offline, a fixed and
obviously fake key stands in. Masking works on distinct values: a batch's addresses repeat per
visitor, so each distinct one is masked once and the results are spread back by index.

A rejected record goes to staging's quarantine masked the same way (`masked_payload`), and so does the
message saying why (`masked_text`), which may quote the bad value; its exact bytes stay only in the raw
zone, behind that zone's own access policy.
"""
from __future__ import annotations

import hmac
import ipaddress
import re
import socket
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

import boto3
import pyarrow as pa
import pyarrow.compute as pc

from lambdas.cleaner.rules import redact_emails
from lambdas.contracts import clickstream as contract

# A rejected record may be neither JSON nor UTF-8, so addresses are looked for in its text read as
# Latin-1 (one character per byte: every other byte stays as it was), wherever they are. A candidate is
# masked only if it parses as an address; the value of an "ip" key is masked, or redacted when it is
# not an address (it may be any personal text).
# Candidates: a run of address characters holding two colons (IPv6, IPv4-mapped ones too), as it is or
# without the separators, a port or a group around it; then dotted quads anywhere (also before a full
# stop, and overlapping: after a candidate that is not an address, the next one may start inside it).
# Each pass is linear in the record's length (a run is tried once, from its start, possessively; a quad
# candidate is at most 15 characters): a rejected record may be a megabyte of anything.
_IP_FIELD = re.compile(r'("ip"\s*+:\s*+")((?:[^"\\]++|\\.)*+)(")')
_IPV6 = re.compile(r"(?<![0-9A-Fa-f:.])[0-9A-Fa-f.]*+:[0-9A-Fa-f.]*+:[0-9A-Fa-f:.]*+")
# (No look-behind before the quad: it would be tried at every position; the digit before is checked
# after a match, which keeps the regex engine's fast scan for a leading digit.)
_IPV4 = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}(?![0-9])")
IP_REDACTION = "REDACTED"
MAX_ADDRESS_CHARS = 64  # an IPv6 address with an embedded IPv4 and a zone id fits

# Offline only: never a secret, and refused outside the local environment (see key_from_env).
LOCAL_KEY = b"lakehouse-local-only-NOT-A-SECRET"
HASH_HEX_CHARS = 32  # 128 bits of the digest: collisions are out of reach for any shop's visitors

IpMode = Literal["hash", "truncate"]


@dataclass(frozen=True)
class IpMasker:
    """Masks addresses; remembers the masks of the addresses it has seen (a container's visitors
    come back), so each distinct address costs one parse and one HMAC per container."""

    mode: IpMode
    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_cached", lru_cache(maxsize=1 << 16)(self._mask))

    def mask(self, text: str) -> str | None:
        """The masked form of an IPv4 or IPv6 address; None when `text` is not one. Text longer than
        any address never reaches the cache, which would otherwise keep a rejected record's megabyte."""
        return None if len(text) > MAX_ADDRESS_CHARS else self._cached(text)  # type: ignore[attr-defined]

    def clear_cache(self) -> None:
        """Forget the masks seen so far (a benchmark's cold start)."""
        self._cached.cache_clear()  # type: ignore[attr-defined]

    def _mask(self, text: str) -> str | None:
        canonical = _canonical(text, self.mode)
        if canonical is None or self.mode == "truncate":
            return canonical
        digest = hmac.digest(self.key, canonical.encode("ascii"), "sha256").hex()
        return contract.IP_HASH_PREFIX + digest[:HASH_HEX_CHARS]

    def mask_array(self, values: pa.Array) -> tuple[pa.Array, pa.Array]:
        """(masked values, validity) for a string column: null stays null and valid; a non-address
        becomes null and invalid."""
        encoded = pc.dictionary_encode(values)
        masked = [self.mask(text) for text in encoded.dictionary.to_pylist()]
        ok = pa.array([m is not None for m in masked], pa.bool_())
        indices = encoded.indices
        return (pc.take(pa.array(masked, pa.string()), indices),
                pc.fill_null(pc.take(ok, indices), True))


def _canonical(text: str, mode: IpMode) -> str | None:
    """The address in canonical form (its network's address when truncating); None if not one.

    IPv4 goes through the C parser (`inet_pton`: dotted quad, no leading zeros, exactly what
    `ipaddress` accepts, several times faster); IPv6 through `ipaddress`, which also drops a zone id.
    """
    try:
        packed = socket.inet_pton(socket.AF_INET, text)
    except (OSError, ValueError):
        packed = None
    if packed is not None:
        if mode == "hash":
            return text  # a dotted quad inet_pton accepts is already canonical
        host_bits = 32 - contract.IPV4_PREFIX_BITS
        value = int.from_bytes(packed, "big") >> host_bits << host_bits
        return socket.inet_ntop(socket.AF_INET, value.to_bytes(4, "big"))
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    bits = contract.IPV6_PREFIX_BITS if mode == "truncate" and address.version == 6 else address.max_prefixlen
    host_bits = address.max_prefixlen - bits
    # Rebuilt from the integer: cheaper than a network object, and drops an IPv6 zone id.
    return str(type(address)(int(address) >> host_bits << host_bits))


def masked_payload(payload: bytes, ip_masker: IpMasker) -> bytes:
    """A rejected record's bytes with its personal data masked as a clean record's would be:
    IP addresses keyed-hashed or truncated, e-mail addresses redacted."""
    text = payload.decode("latin-1")
    text = _IP_FIELD.sub(lambda m: m[1] + (ip_masker.mask(m[2]) or IP_REDACTION) + m[3], text)
    return masked_text(text, ip_masker).encode("latin-1")


def masked_text(text: str, ip_masker: IpMasker) -> str:
    """`text` with every IP address in it masked and every e-mail address redacted: for a rejected record's
    bytes (read as Latin-1) and for the message saying why, which may quote the bad value."""
    text = _IPV6.sub(lambda m: _masked_within(m[0], ip_masker), text)
    text = _masked_quads(text, ip_masker)
    return redact_emails(text, contract.EMAIL_REDACTION)


def _masked_within(run: str, ip_masker: IpMasker) -> str:
    """The run with the first of its candidates that is an address masked: the run itself, then without
    dots or colons around it, then without a trailing port (or group), then without a leading group."""
    trimmed = run.strip(".")
    for candidate in (run, trimmed, run.strip(".:"), trimmed.rpartition(":")[0], trimmed.partition(":")[2]):
        masked = ip_masker.mask(candidate) if candidate else None
        if masked is not None:
            start = run.index(candidate)
            return run[:start] + masked + run[start + len(candidate):]
    return run


def _masked_quads(text: str, ip_masker: IpMasker) -> str:
    """Every dotted quad that is an address, masked; one right after a digit is part of a longer number."""
    pieces: list[str] = []
    done = position = 0
    while (match := _IPV4.search(text, position)) is not None:
        start = match.start()
        masked = None if start and text[start - 1] in "0123456789" else ip_masker.mask(match[0])
        if masked is None:
            position = start + 1  # an address may start inside this candidate
            continue
        pieces += (text[done:start], masked)
        done = position = match.end()
    return "".join(pieces) + text[done:]


@lru_cache(maxsize=4)
def masker(mode: IpMode, key: bytes) -> IpMasker:
    """The container's masker for a mode and key: its cache of masked addresses lives as long."""
    return IpMasker(mode, key)


@lru_cache(maxsize=8)
def load_key(kind: Literal["secret", "parameter"], name: str) -> bytes:
    """The key, read once per container (and per name): Secrets Manager or SSM SecureString."""
    if kind == "secret":
        value = boto3.client("secretsmanager").get_secret_value(SecretId=name)["SecretString"]
    else:
        value = boto3.client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    if not value:
        raise ValueError(f"the PII key {kind} {name!r} is empty")
    return value.encode("utf-8")
