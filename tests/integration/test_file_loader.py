"""The file loader on the local cloud: catalog files put to S3 trigger it through the bucket's own
ObjectCreated notification, and files dropped in the local landing folder reach it through the
Lambda API.

moto stands in for AWS here: S3 and Lambda on a real moto server on 127.0.0.1 (the session's local
cloud), over HTTP with obviously fake credentials; the function's invokes run the real handler
in-process (lakehouse/cloud/moto_patches.py). What lands in the buckets is read back with boto3,
independently of the loader's pyarrow filesystem, and compared with the generator's ground truth.
"""
from __future__ import annotations

import io
import json
import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest
from boto3.s3.transfer import TransferConfig

from lakehouse.sources.landing import deliver_new_files, function_environment, invoke_function, invoke_handler, \
    landing_folder, subscribe
from lakehouse.lake.layout import LocalLake
from lakehouse.sources.product_catalog import (LABEL_BLANK, LABEL_CLEAN, LABEL_DUPLICATE, LABEL_HEADER, CatalogFile,
                                       generate_catalog, write_catalog)
from lambdas.file_loader.handler import handler
from lambdas.file_loader.loader import content_id, load_file
from lambdas.file_loader.outputs import Locations
from tests.fixtures.local_cloud import register_function
from tests.index_entries import without_index_entries

pytestmark = pytest.mark.usefixtures("local_cloud")


@dataclass(frozen=True)
class Zones:
    landing: str
    raw: str
    staging: str

    @property
    def locations(self) -> Locations:
        return Locations(f"s3://{self.landing}", f"s3://{self.raw}", f"s3://{self.staging}")


@pytest.fixture(scope="module")
def arrived() -> datetime:
    # moto stamps its events with the wall clock; the catalog's updated_at values must lie before it.
    return datetime.now(timezone.utc) - timedelta(hours=1)


@pytest.fixture(scope="module")
def catalog(arrived: datetime) -> CatalogFile:
    return generate_catalog(2_000, seed=41, defect_rate=0.1, arrived=arrived, crlf=True, shuffle_columns=True,
                            extra_column=True)


@pytest.fixture
def zones() -> Zones:
    """Fresh landing, raw and staging buckets; the landing bucket notifies a loader function."""
    s3 = boto3.client("s3")
    suffix = uuid.uuid4().hex[:8]
    made = Zones(*(f"lakehouse-test-{zone}-{suffix}" for zone in ("landing", "raw", "staging")))
    for bucket in (made.landing, made.raw, made.staging):
        s3.create_bucket(Bucket=bucket)
    where = made.locations
    arn = register_function(handler, {
        "LANDING_URI": where.landing_uri, "RAW_URI": where.raw_uri, "STAGING_URI": where.staging_uri,
        "POWERTOOLS_METRICS_NAMESPACE": "LakehouseTest"})
    subscribe(made.landing, arn)
    return made


def objects(bucket: str, prefix: str = "") -> dict[str, bytes]:
    s3 = boto3.client("s3")
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for o in page.get("Contents", [])]
    return {key: s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys}


def key_of(uri: str) -> str:
    return uri.removeprefix("s3://").split("/", 1)[1]


def the_manifest(zones: Zones) -> dict[str, Any]:
    (manifest,) = objects(zones.staging, "manifests/products/").values()
    return json.loads(manifest)


def check_against_truth(zones: Zones, manifest: dict[str, Any], catalog: CatalogFile) -> None:
    truth = catalog.counts
    assert (manifest["status"], manifest["received"], manifest["clean"], manifest["quarantined"],
            manifest["duplicates"]) == ("loaded", truth.received, truth.clean, truth.quarantined, truth.duplicates)
    assert manifest["quarantined_by_reason"] == dict(sorted(truth.quarantined_by_reason.items()))
    staging = objects(zones.staging)
    clean = pq.read_table(io.BytesIO(staging[key_of(manifest["files"]["clean"])]))
    assert clean.column("product_id").to_pylist() == [p.product_id for p in catalog.products]
    assert clean.column("price").to_pylist() == [p.price for p in catalog.products]
    assert clean.column("name").to_pylist() == [p.name for p in catalog.products]
    assert [t.astimezone(timezone.utc) for t in clean.column("updated_at").to_pylist()] == \
        [p.updated_at for p in catalog.products]
    quarantine = pq.read_table(io.BytesIO(staging[key_of(manifest["files"]["quarantine"])]))
    bad = {number: label for number, label in enumerate(catalog.labels, 1)
           if label not in (LABEL_HEADER, LABEL_CLEAN, LABEL_DUPLICATE, LABEL_BLANK)}
    assert dict(zip(quarantine.column("line_number").to_pylist(), quarantine.column("reason").to_pylist())) == bad
    raw = objects(zones.raw)
    assert raw == {key_of(manifest["files"]["raw"]): catalog.data}, "the raw zone keeps the file as dropped"


def test_a_catalog_put_to_s3_is_loaded_through_the_bucket_notification(zones: Zones, catalog: CatalogFile) -> None:
    boto3.client("s3").put_object(Bucket=zones.landing, Key="products/2026-11-27 export.csv", Body=catalog.data)
    manifest = the_manifest(zones)  # moto notified the function while handling the PUT
    assert manifest["source_uri"] == f"s3://{zones.landing}/products/2026-11-27 export.csv"
    assert manifest["ignored_columns"] == ["supplier"]
    check_against_truth(zones, manifest, catalog)
    assert without_index_entries(objects(zones.staging)) == {f"{kind}/products/{manifest['file_id']}.{ext}" for kind, ext in (
        ("clean", "parquet"), ("quarantine", "parquet"), ("manifests", "json"))}  # no folder markers


def test_a_file_put_twice_or_under_another_name_is_loaded_once(zones: Zones, catalog: CatalogFile) -> None:
    s3 = boto3.client("s3")
    s3.put_object(Bucket=zones.landing, Key="products/monday.csv", Body=catalog.data)
    first = {bucket: objects(bucket) for bucket in (zones.raw, zones.staging)}
    s3.put_object(Bucket=zones.landing, Key="products/monday.csv", Body=catalog.data)
    s3.copy_object(Bucket=zones.landing, Key="products/monday (copy).csv",
                   CopySource={"Bucket": zones.landing, "Key": "products/monday.csv"})
    assert {bucket: objects(bucket) for bucket in (zones.raw, zones.staging)} == first
    assert len(objects(zones.staging, "manifests/")) == 1


def test_only_csv_files_under_the_prefix_trigger_the_loader(zones: Zones, catalog: CatalogFile) -> None:
    s3 = boto3.client("s3")
    s3.put_object(Bucket=zones.landing, Key="products/readme.txt", Body=b"not a catalog")
    s3.put_object(Bucket=zones.landing, Key="orders/export.csv", Body=catalog.data)
    assert objects(zones.staging) == {} and objects(zones.raw) == {}


def test_a_large_multipart_upload_streams_through_in_chunks(zones: Zones, arrived: datetime, tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    counts = write_catalog(path, 70_000, seed=43, defect_rate=0.05, arrived=arrived)
    size = path.stat().st_size
    assert size > 6 * 1024 * 1024
    boto3.client("s3").upload_file(str(path), zones.landing, "products/big.csv", Config=TransferConfig(
        multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024))  # CompleteMultipartUpload
    manifest = the_manifest(zones)
    assert (manifest["size_bytes"], manifest["received"], manifest["clean"], manifest["quarantined"],
            manifest["duplicates"]) == (size, counts.received, counts.clean, counts.quarantined, counts.duplicates)
    # The same object read from S3 in 256 KiB ranges gives the same rows (and the same content id).
    source = f"s3://{zones.landing}/products/big.csv"
    assert content_id(source, chunk_bytes=256 * 1024) == manifest["file_id"]
    again = load_file(source, manifest["file_id"], ingested_at=datetime.fromisoformat(manifest["ingested_at"]),
                      where=zones.locations, chunk_bytes=256 * 1024, batch_rows=4_000)
    assert again == manifest


def test_the_local_landing_folder_reaches_the_loader_through_the_lambda_api(tmp_path: Path, catalog: CatalogFile) -> None:
    lake = LocalLake(tmp_path / "lake").create()
    name = register_function(handler, function_environment(lake)).rsplit(":", 1)[1]
    invoke = invoke_function(name)
    folder = landing_folder(lake)
    folder.mkdir(parents=True)
    (folder / "catalog 1.csv").write_bytes(catalog.data)
    (folder / "notes.txt").write_text("not a catalog")
    (loaded,) = deliver_new_files(lake, invoke)
    assert loaded["status"] == "loaded"
    manifest = json.loads(Path(loaded["manifest"].removeprefix("file://")).read_text())
    assert (manifest["received"], manifest["clean"]) == (catalog.counts.received, catalog.counts.clean)
    assert deliver_new_files(lake, invoke) == [], "a delivered file is not announced again"
    # The same bytes again (a new modification time), and under a second name: announced, not loaded.
    os.utime(folder / "catalog 1.csv", ns=(0, 10**18))
    (folder / "sub").mkdir()
    (folder / "sub" / "copy.csv").write_bytes(catalog.data)
    assert [r["status"] for r in deliver_new_files(lake, invoke_handler(lake))] == ["already_loaded"] * 2
    assert len(list((tmp_path / "lake").rglob("manifests/products/*.json"))) == 1
