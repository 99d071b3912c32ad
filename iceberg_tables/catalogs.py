"""pyiceberg catalogs: the local SQL catalog on sqlite and the Glue catalog in AWS.

Runtime code (Lambdas, the local runtime) opens its catalog here. It imports no pyspark and no
CDK, so a Lambda asset can ship it.
"""
from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path

from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.catalog.sql import SqlCatalog

# Same as cdk_app.config.CATALOG_NAME (a unit test keeps them equal): runtime assets don't ship cdk_app.
CATALOG_NAME = "lake"

ENV_WAREHOUSE = "LAKEHOUSE_WAREHOUSE"   # local: warehouse directory
ENV_CATALOG_DB = "LAKEHOUSE_CATALOG_DB"  # local: sqlite catalog file
ENV_WAREHOUSE_URI = "WAREHOUSE_URI"      # AWS: s3://bucket/prefix of the Glue catalog's tables

# Seconds a writer waits for the other one (Spark's JdbcCatalog or pyiceberg) to finish its commit.
SQLITE_BUSY_TIMEOUT_SECONDS = 30


class CatalogConfigError(ValueError):
    """The environment names no usable catalog: the message says which variables to set."""


def enable_wal(catalog_db: Path) -> None:
    """Put the sqlite file in WAL mode (persistent), so readers never block the one writer.

    See docs/decisions/0101-sqlite-catalog-shared-by-spark-and-pyiceberg.md.
    """
    catalog_db.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(catalog_db, timeout=SQLITE_BUSY_TIMEOUT_SECONDS) as conn:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    conn.close()
    if mode.lower() != "wal":
        raise RuntimeError(f"{catalog_db}: sqlite refused WAL journal mode (got {mode!r})")


def local_catalog(warehouse: Path, catalog_db: Path) -> SqlCatalog:
    """The local Iceberg catalog: tables under `warehouse`, their pointers in sqlite `catalog_db`.

    Creating it also creates the catalog's own tables (schema V1, with views), which Spark's
    JdbcCatalog then uses as they are (lakehouse.lake.spark turns its own creation off).
    """
    warehouse.mkdir(parents=True, exist_ok=True)
    enable_wal(catalog_db)
    return SqlCatalog(
        CATALOG_NAME,
        uri=f"sqlite:///{catalog_db.resolve()}?timeout={SQLITE_BUSY_TIMEOUT_SECONDS}",
        warehouse=warehouse.resolve().as_uri(),
    )


def glue_catalog(warehouse_uri: str) -> Catalog:
    """The AWS Glue Data Catalog; boto3 honours AWS_ENDPOINT_URL (moto locally, in tests)."""
    properties = {"type": "glue", "warehouse": warehouse_uri}
    s3_endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if s3_endpoint:  # pyarrow's S3 file system does not read AWS_ENDPOINT_URL by itself
        properties["s3.endpoint"] = s3_endpoint
    return load_catalog(CATALOG_NAME, **properties)


def catalog_from_env(environ: Mapping[str, str] | None = None) -> Catalog:
    """The local catalog when LAKEHOUSE_WAREHOUSE and LAKEHOUSE_CATALOG_DB are set, else Glue."""
    env = os.environ if environ is None else environ
    warehouse, catalog_db = env.get(ENV_WAREHOUSE), env.get(ENV_CATALOG_DB)
    if warehouse or catalog_db:
        if not (warehouse and catalog_db):
            raise CatalogConfigError(f"set both {ENV_WAREHOUSE} and {ENV_CATALOG_DB} for the local catalog "
                                     f"(got {ENV_WAREHOUSE}={warehouse!r}, {ENV_CATALOG_DB}={catalog_db!r})")
        return local_catalog(Path(warehouse), Path(catalog_db))
    if env.get(ENV_WAREHOUSE_URI):
        return glue_catalog(env[ENV_WAREHOUSE_URI])
    raise CatalogConfigError(f"no Iceberg catalog configured: set {ENV_WAREHOUSE_URI} (Glue) "
                             f"or {ENV_WAREHOUSE} and {ENV_CATALOG_DB} (local)")
