"""The file loader on the local lake (file:// zones): ground truth, idempotency, bad files, events,
metrics, and memory that stays bounded however large the file."""
from __future__ import annotations

import io
import json
import tracemalloc
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakehouse.sources.landing import s3_event
from lakehouse.sources.product_catalog import (LABEL_BLANK, LABEL_CLEAN, LABEL_DUPLICATE, LABEL_HEADER, CatalogFile,
                                       generate_catalog)
from lambdas.contracts import products as contract
from lambdas.contracts.products import Reason
from lambdas.file_loader.events import BadEvent
from lambdas.file_loader.handler import ConfigurationError, handler
from lambdas.file_loader.loader import ObjectChanged, content_id, load_file, loaded_manifest
from lambdas.file_loader.outputs import CLEAN_SCHEMA, QUARANTINE_SCHEMA, Locations

ARRIVED = datetime(2026, 11, 27, 10, 30, tzinfo=timezone.utc)


@pytest.fixture
def where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Locations:
    zones = Locations(*((tmp_path / zone).as_uri() for zone in ("landing", "raw", "staging")))
    monkeypatch.setenv("LANDING_URI", zones.landing_uri)
    monkeypatch.setenv("RAW_URI", zones.raw_uri)
    monkeypatch.setenv("STAGING_URI", zones.staging_uri)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "LakehouseTest")
    monkeypatch.delenv("SOURCE", raising=False)
    return zones


def local(uri: str) -> Path:
    assert uri.startswith("file://"), uri
    return Path(uri.removeprefix("file://"))


def drop(where: Locations, name: str, data: bytes) -> dict[str, Any]:
    """Put `data` in the landing folder under `name`; the S3 event announcing it."""
    key = f"{contract.SOURCE}/{name}"
    path = local(where.landing_uri) / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return s3_event("landing", key, size=len(data), etag="", event_time=ARRIVED, sequencer="00")


def only(result: dict[str, Any]) -> dict[str, Any]:
    (file,) = result["files"]
    return file


def manifest_of(file: dict[str, Any]) -> dict[str, Any]:
    return json.loads(local(file["manifest"]).read_text())


def staged(where: Locations) -> dict[str, bytes]:
    root = local(where.staging_uri)
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def file_lines(catalog: CatalogFile) -> list[bytes]:
    """The file's lines as the loader keeps them: no BOM, no line break."""
    return [line.removesuffix(b"\r") for line in catalog.data.removeprefix(b"\xef\xbb\xbf").split(b"\n")[:-1]]


@pytest.fixture(scope="module")
def catalog() -> CatalogFile:
    return generate_catalog(3_000, seed=7, defect_rate=0.12, arrived=ARRIVED, crlf=True, bom=True,
                            shuffle_columns=True, extra_column=True)


def test_a_generated_catalog_loads_as_its_ground_truth(where: Locations, catalog: CatalogFile) -> None:
    file = only(handler(drop(where, "2026-11-27/catalog export.csv", catalog.data), None))
    # S3 sends the key URL-encoded ("catalog+export.csv"); the loader reads the object it names.
    assert (file["status"], file["uri"]) == ("loaded", f"{where.landing_uri}/products/2026-11-27/catalog%20export.csv")
    manifest = manifest_of(file)
    truth = catalog.counts
    assert (manifest["received"], manifest["clean"], manifest["quarantined"], manifest["duplicates"],
            manifest["blank_lines"], manifest["lines"]) == \
        (truth.received, truth.clean, truth.quarantined, truth.duplicates, truth.blank_lines, truth.lines)
    assert manifest["quarantined_by_reason"] == dict(sorted(truth.quarantined_by_reason.items()))
    assert set(truth.quarantined_by_reason) == set(Reason.ALL) - {Reason.BAD_HEADER}, "every row-level defect occurs"
    assert manifest["received"] == manifest["clean"] + manifest["quarantined"] + manifest["duplicates"]
    assert manifest["ignored_columns"] == catalog.ignored_columns == ["supplier"]
    assert manifest["file_id"] == file["file_id"] == content_id(file["uri"])
    assert manifest["size_bytes"] == len(catalog.data) and manifest["status"] == "loaded"

    clean = pq.read_table(local(manifest["files"]["clean"]))
    assert clean.schema == CLEAN_SCHEMA
    expected = [{**vars(p), "file_id": file["file_id"], "ingested_at": ARRIVED} for p in catalog.products]
    got = clean.to_pylist()
    for row in got:  # pyarrow gives timestamps back in a zoneinfo UTC; compare the instants
        row["updated_at"], row["ingested_at"] = (row[k].astimezone(timezone.utc) for k in ("updated_at", "ingested_at"))
    assert got == expected

    quarantine = pq.read_table(local(manifest["files"]["quarantine"]))
    assert quarantine.schema == QUARANTINE_SCHEMA
    lines = file_lines(catalog)
    bad = {number: label for number, label in enumerate(catalog.labels, 1)
           if label not in (LABEL_HEADER, LABEL_CLEAN, LABEL_DUPLICATE, LABEL_BLANK)}
    assert dict(zip(quarantine.column("line_number").to_pylist(), quarantine.column("reason").to_pylist())) == bad
    for number, payload in zip(quarantine.column("line_number").to_pylist(), quarantine.column("raw_payload").to_pylist()):
        assert payload == lines[number - 1][:contract.MAX_ROW_BYTES]
    assert set(quarantine.column("source_uri").to_pylist()) == {file["uri"]}
    # The raw zone keeps the file byte for byte, named by its content.
    assert local(manifest["files"]["raw"]).read_bytes() == catalog.data


def test_small_chunks_and_batches_give_the_same_rows(where: Locations, catalog: CatalogFile) -> None:
    drop(where, "a.csv", catalog.data)
    source = f"{where.landing_uri}/products/a.csv"
    file_id = content_id(source, chunk_bytes=1000)
    whole = load_file(source, file_id, ingested_at=ARRIVED, where=where)
    tables = {name: pq.read_table(local(whole["files"][name])) for name in ("clean", "quarantine")}
    small = load_file(source, file_id, ingested_at=ARRIVED, where=where, chunk_bytes=997, batch_rows=7,
                      batch_bytes=5000)
    assert small == whole
    for name, table in tables.items():
        again = pq.read_table(local(small["files"][name]))
        assert again.to_pylist() == table.to_pylist()
        assert pq.ParquetFile(local(small["files"][name])).num_row_groups > 100  # it did stream


def test_a_file_dropped_twice_is_loaded_once(where: Locations, catalog: CatalogFile) -> None:
    event = drop(where, "monday.csv", catalog.data)
    first = only(handler(event, None))
    assert first["status"] == "loaded"
    after_first = staged(where)
    again = [only(handler(event, None)),  # the event redelivered
             only(handler(drop(where, "monday.csv", catalog.data), None)),  # the file uploaded again
             only(handler(drop(where, "copy of monday.csv", catalog.data), None))]  # under another name
    assert [f["status"] for f in again] == ["already_loaded"] * 3
    assert {f["file_id"] for f in again} == {first["file_id"]}
    assert staged(where) == after_first
    assert manifest_of(first)["source_uri"] == first["uri"]  # the first drop stays the one on record
    # New bytes under the same name are a new load.
    newer = generate_catalog(50, seed=8, arrived=ARRIVED)
    changed = only(handler(drop(where, "monday.csv", newer.data), None))
    assert changed["status"] == "loaded" and changed["file_id"] != first["file_id"]
    assert manifest_of(changed)["clean"] == newer.counts.clean


@pytest.mark.parametrize("data, message", [
    (b"product_id,name,category,price,currency,active\nP-00001,Kite,toys,5,USD,yes\n\nP-00002,Ball,toys,3,EUR,no\n",
     "the header lacks column(s) updated_at"),
    (b"P-00001,Kite,toys,5,USD,yes,2026-01-01T00:00:00Z\nP-00002,Ball,toys,3,EUR,no,2026-01-01T00:00:00Z",
     "is the header missing?"),
    ("product_id,name\nP-00001,Kite\n".encode("utf-16"), "UTF-16"),
])
def test_a_bad_header_quarantines_every_line_with_the_reason(where: Locations, data: bytes, message: str) -> None:
    file = only(handler(drop(where, "bad.csv", data), None))
    manifest = manifest_of(file)
    assert file["status"] == manifest["status"] == "rejected"
    assert manifest["error"]["reason"] == Reason.BAD_HEADER and message in manifest["error"]["message"]
    rows = [line for line in data.split(b"\n") if line.strip()]
    assert (manifest["received"], manifest["quarantined"], manifest["clean"]) == (len(rows), len(rows), 0)
    quarantine = pq.read_table(local(manifest["files"]["quarantine"]))
    assert quarantine.column("raw_payload").to_pylist() == rows  # the first line too: it may be a product
    assert set(quarantine.column("reason").to_pylist()) == {Reason.BAD_HEADER}
    assert all(message in m for m in quarantine.column("message").to_pylist())
    assert manifest["files"]["clean"] is None and not (local(where.staging_uri) / "clean").exists()


def test_an_empty_file_is_rejected_and_a_header_alone_is_an_empty_load(where: Locations) -> None:
    empty = manifest_of(only(handler(drop(where, "empty.csv", b""), None)))
    assert (empty["status"], empty["received"], empty["error"]["message"]) == \
        ("rejected", 0, "the file is empty: it has no header line")
    assert empty["files"] == {"raw": empty["files"]["raw"], "clean": None, "quarantine": None}
    header_only = manifest_of(only(handler(drop(where, "header.csv", ",".join(contract.COLUMNS).encode()), None)))
    assert (header_only["status"], header_only["received"], header_only["lines"]) == ("loaded", 0, 1)


def test_an_object_overwritten_between_the_passes_is_not_committed(where: Locations, catalog: CatalogFile) -> None:
    drop(where, "racy.csv", catalog.data)
    source = f"{where.landing_uri}/products/racy.csv"
    file_id = content_id(source)
    drop(where, "racy.csv", catalog.data.replace(b"P-0", b"P-1", 1))  # overwritten before the load
    with pytest.raises(ObjectChanged, match="changed while it was loaded"):
        load_file(source, file_id, ingested_at=ARRIVED, where=where)
    assert loaded_manifest(where, file_id) is None
    assert not list((local(where.staging_uri) / "manifests").rglob("*.json"))


def test_a_deleted_object_is_reported_missing(where: Locations) -> None:
    event = s3_event("landing", "products/gone.csv", size=1, etag="", event_time=ARRIVED, sequencer="00")
    assert only(handler(event, None)) == {"uri": f"{where.landing_uri}/products/gone.csv", "status": "missing"}
    assert staged(where) == {}


def test_s3s_test_event_does_nothing(where: Locations) -> None:
    assert handler({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "landing"}, None) == {"files": []}


@pytest.mark.parametrize("change, message", [
    ({"bucket": "other"}, "event for bucket 'other', but the landing zone is"),
    ({"key": "orders/x.csv"}, "is not a .csv file under products/"),
    ({"key": "products/x.txt"}, "is not a .csv file under products/"),
    ({"key": "products/../../etc/x.csv"}, "'..' path segment"),
    ({"eventName": "ObjectRemoved:Delete"}, "ObjectCreated events only"),
    ({"eventSource": "aws:sqs"}, "not aws:s3"),
    ({"eventTime": "yesterday"}, "not ISO-8601"),
    ({"s3": None}, "not shaped like an S3 event record"),
])
def test_events_outside_the_subscription_are_refused(where: Locations, change: dict[str, Any], message: str) -> None:
    event = s3_event(change.pop("bucket", "landing"), change.pop("key", "products/x.csv"), size=1, etag="",
                     event_time=ARRIVED, sequencer="00")
    event["Records"][0].update(change)
    with pytest.raises(BadEvent, match=message.replace(".", r"\.").replace("(", r"\(")):
        handler(event, None)
    with pytest.raises(BadEvent, match="no 'Records' list"):
        handler({"hello": "world"}, None)


def test_a_wrong_configuration_is_named(where: Locations, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAW_URI")
    with pytest.raises(ConfigurationError, match="not set: RAW_URI"):
        handler({"Records": []}, None)
    monkeypatch.setenv("RAW_URI", where.raw_uri)
    monkeypatch.setenv("SOURCE", "clickstream")
    with pytest.raises(ConfigurationError, match="implements 'products'"):
        handler({"Records": []}, None)


def test_metrics_are_emitted_as_emf(where: Locations, catalog: CatalogFile, capsys: pytest.CaptureFixture[str]) -> None:
    handler(drop(where, "m.csv", catalog.data), None)
    handler(drop(where, "m2.csv", catalog.data), None)
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    totals = [b for b in blobs if "rows_received" in b]
    assert len(totals) == 1
    truth = catalog.counts
    assert {k: totals[0][k] for k in ("files_loaded", "rows_received", "rows_clean", "rows_quarantined",
                                       "rows_duplicates", "bytes_in")} == {
        "files_loaded": [1.0], "rows_received": [float(truth.received)], "rows_clean": [float(truth.clean)],
        "rows_quarantined": [float(truth.quarantined)], "rows_duplicates": [float(truth.duplicates)],
        "bytes_in": [float(len(catalog.data))]}
    assert totals[0]["load_latency"][0] > 0 and totals[0]["source"] == "products"
    assert [b["files_already_loaded"] for b in blobs if "files_already_loaded" in b] == [[1.0]]
    per_reason = {b["reason"]: b["rows_quarantined"] for b in blobs if "reason" in b}
    assert per_reason == {reason: [float(n)] for reason, n in truth.quarantined_by_reason.items()}


# --- memory ---------------------------------------------------------------------------------------

CHUNK, BATCH_ROWS, BATCH_BYTES = 64 * 1024, 500, 256 * 1024


def padded(catalog: CatalogFile, extra: int) -> bytes:
    """The catalog with an ignored column of `extra` bytes on every line: more bytes, the same rows."""
    lines = catalog.data.split(b"\n")[:-1]
    head = [lines[0] + b",description"]
    return b"".join(line + b"\n" for line in head + [
        line + b"," + b"d" * extra if label != LABEL_BLANK else line for line, label in zip(lines[1:], catalog.labels[1:])])


def peak_memory(where: Locations, name: str, data: bytes) -> tuple[int, int, dict[str, Any]]:
    """Python's peak (tracemalloc, numpy included) and Arrow's (its memory pool) while one file loads."""
    drop(where, name, data)
    source = f"{where.landing_uri}/products/{name}"
    file_id = content_id(source, CHUNK)
    pool = pa.proxy_memory_pool(pa.default_memory_pool())
    default = pa.default_memory_pool()
    pa.set_memory_pool(pool)
    tracemalloc.start()
    try:
        manifest = load_file(source, file_id, ingested_at=ARRIVED, where=where, chunk_bytes=CHUNK,
                             batch_rows=BATCH_ROWS, batch_bytes=BATCH_BYTES)
        python_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        pa.set_memory_pool(default)
    return python_peak, pool.max_memory(), manifest


def test_memory_follows_neither_the_files_bytes_nor_its_rows_beyond_24_bytes_per_product(where: Locations) -> None:
    rows = 5_000
    small, large = (generate_catalog(n, seed=11, arrived=ARRIVED) for n in (rows, 2 * rows))
    peak_memory(where, "warm-up.csv", small.data[:20_000])  # one-time imports and caches are not the file's
    short = peak_memory(where, "short.csv", small.data)
    wide = peak_memory(where, "wide.csv", padded(small, 2_000))
    double = peak_memory(where, "double.csv", large.data)
    assert short[2]["clean"] == wide[2]["clean"] == small.counts.clean and double[2]["clean"] == large.counts.clean
    wide_size = len(padded(small, 2_000))
    assert wide_size > 150 * CHUNK
    # 20x the bytes, the same rows: the peak grows by at most the larger batches (BATCH_BYTES of lines).
    assert wide[0] < short[0] + 3 * BATCH_BYTES, (short[0], wide[0])
    assert wide[0] < wide_size / 8, (wide[0], wide_size)
    # Twice the products: the peak grows by the first-seen arrays (24 bytes a product, twice while one
    # grows), nowhere near the 100-odd bytes each row takes in the file.
    assert double[0] - short[0] < 64 * rows + 256 * 1024, (short[0], double[0])
    # Arrow's own buffers hold a batch at most.
    assert max(short[1], wide[1], double[1]) < 4 * BATCH_BYTES, (short[1], wide[1], double[1])
