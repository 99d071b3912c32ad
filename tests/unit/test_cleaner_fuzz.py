"""Fuzzing the whole handler, Kinesis- and MSK-shaped: it never crashes, every record is accounted
for (received = clean + quarantined + duplicates), and what it writes agrees with its ledger.

Inputs: arbitrary bytes, invalid UTF-8, deeply nested JSON, huge numbers, NaN/Infinity, duplicate
keys, empty records, 1 MB records, mixed with valid records and their re-sends; for SOURCE=orders also
valid orders with a field overwritten by any JSON value.
"""
from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from unittest import mock

import pyarrow.parquet as pq
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from lakehouse.sources.generator import generate, generate_orders
from lambdas.cleaner.handler import handler
from tests.fixtures.kinesis_events import ARRIVAL, kinesis_event, msk_event, raw_file_records

VALID = generate(60, seed=3, defect_rate=0.0, now=ARRIVAL).records
VALID_ORDERS = generate_orders(40, seed=3, defect_rate=0.0, now=ARRIVAL).records
MEGABYTE = b'{"event_id": "' + b"x" * 1_000_000 + b'"}'

_nested = st.integers(1, 3_000).map(lambda n: b'{"a": ' + b"[" * n + b"]" * n + b"}")
_huge_numbers = st.one_of(
    st.integers(300, 6_000).map(lambda n: b'{"event_id": "e", "n": ' + b"9" * n + b"}"),
    st.sampled_from([b'{"n": 1e999}', b'{"n": -1e999}', b"1e400", b'{"event_id": 1e999}', b"-" + b"9" * 5000]),
)
_not_numbers = st.sampled_from([b'{"n": NaN}', b'{"n": Infinity}', b'{"n": -Infinity}', b"NaN", b'{"ip": NaN}'])
_duplicate_keys = st.sampled_from(VALID).map(lambda r: r[:-1] + b',"country":7,"country":"DE","event_id":"dup"}')
_json_docs = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8,
).map(lambda doc: json.dumps(doc).encode())
payloads = st.one_of(
    st.binary(max_size=400),
    st.binary(min_size=1, max_size=200).map(lambda b: b + b"\xff\xfe"),
    _nested, _huge_numbers, _not_numbers, _duplicate_keys, _json_docs,
    st.just(b""), st.just(MEGABYTE), st.sampled_from(VALID),
)
# Orders: the same hostile bytes, plus valid orders whose country (or any field) is overwritten by a
# trailing duplicate key with an arbitrary JSON value.
_order_overrides = st.tuples(
    st.sampled_from(VALID_ORDERS), st.sampled_from(["country", "currency", "total", "items", "order_id"]),
    st.one_of(st.none(), st.integers(), st.floats(allow_nan=False), st.text(max_size=6), st.lists(st.integers(), max_size=2)),
).map(lambda t: t[0][:-1] + f',"{t[1]}":{json.dumps(t[2])}}}'.encode())
order_payloads = st.one_of(payloads, st.sampled_from(VALID_ORDERS), _order_overrides)


def _lake(tmp: str, source: str = "clickstream") -> dict[str, str]:
    return {"RAW_URI": Path(tmp, "raw").as_uri(), "STAGING_URI": Path(tmp, "staging").as_uri(),
            "POWERTOOLS_METRICS_NAMESPACE": "LakehouseFuzz", "SOURCE": source}


def _written(tmp: str) -> list[dict[str, Any]]:
    """Every manifest under the lake, with the rows of the files it names."""
    out = []
    for path in sorted(Path(tmp, "staging", "manifests").rglob("*.json")):
        manifest = json.loads(path.read_text())
        files = {kind: Path(uri.removeprefix("file://")) if uri else None for kind, uri in manifest["files"].items()}
        manifest["raw_payloads"] = [r["payload"] for r in raw_file_records(files["raw"].read_bytes())]
        manifest["clean_rows"] = pq.read_table(files["clean"]).num_rows if files["clean"] else 0
        manifest["quarantine_rows"] = pq.read_table(files["quarantine"]).num_rows if files["quarantine"] else 0
        out.append(manifest)
    return out


def _check_ledger(manifest: dict[str, Any], sent: list[bytes]) -> None:
    assert manifest["received"] == len(sent) == manifest["clean"] + manifest["quarantined"] + manifest["duplicates"]
    assert manifest["raw_payloads"] == sent  # the raw zone keeps every record, byte for byte
    assert (manifest["clean_rows"], manifest["quarantine_rows"]) == (manifest["clean"], manifest["quarantined"])
    assert sum(manifest["quarantined_by_reason"].values()) == manifest["quarantined"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(payloads, min_size=1, max_size=25))
@example([MEGABYTE, b"", b"\xff", VALID[0], VALID[0], b'{"n": NaN}'])
def test_kinesis_batches_never_crash_and_account_for_every_record(sent: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp, mock.patch.dict(os.environ, _lake(tmp)):
        assert handler(kinesis_event(sent), None) == {"batchItemFailures": []}
        (manifest,) = _written(tmp)
    _check_ledger(manifest, sent)
    assert manifest["stream"] == "kinesis"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(payloads, min_size=1, max_size=12), st.lists(payloads, min_size=1, max_size=12))
def test_msk_batches_never_crash_and_account_for_every_record(first: list[bytes], second: list[bytes]) -> None:
    event = msk_event({("clickstream", 0): first, ("clickstream", 3): second})
    with tempfile.TemporaryDirectory() as tmp, mock.patch.dict(os.environ, _lake(tmp)):
        assert handler(event, None) == {"batchItemFailures": []}
        manifests = _written(tmp)
    assert [m["channel"] for m in manifests] == ["clickstream-0", "clickstream-3"]
    for manifest, sent in zip(manifests, (first, second)):
        _check_ledger(manifest, sent)
        assert manifest["batch_id"] == f"{manifest['channel']}-1000-{1000 + len(sent) - 1}"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(order_payloads, min_size=1, max_size=25))
@example([VALID_ORDERS[0], VALID_ORDERS[0], VALID_ORDERS[1][:-1] + b',"country":"UK"}', b'{"total": 1e999}'])
def test_order_batches_never_crash_and_account_for_every_record(sent: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp, mock.patch.dict(os.environ, _lake(tmp, "orders")):
        assert handler(kinesis_event(sent), None) == {"batchItemFailures": []}
        (manifest,) = _written(tmp)
    _check_ledger(manifest, sent)
    assert manifest["source"] == "orders"
