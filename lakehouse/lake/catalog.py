"""The local lake's Iceberg catalog: pyiceberg's SqlCatalog on sqlite, shared with local Spark.

The catalog itself is built in iceberg_tables.catalogs (Lambdas use it too); this is the local
runtime's entry point to it.
"""
from __future__ import annotations

from pathlib import Path

from pyiceberg.catalog.sql import SqlCatalog

from iceberg_tables.catalogs import CATALOG_NAME, local_catalog
from iceberg_tables.migrator import migrate

__all__ = ["CATALOG_NAME", "local_catalog", "migrated_catalog"]


def migrated_catalog(warehouse: Path, catalog_db: Path) -> tuple[SqlCatalog, list[str]]:
    """The local catalog with every table of iceberg_tables.specs created or evolved, and what was done."""
    catalog = local_catalog(warehouse, catalog_db)
    return catalog, migrate(catalog)
