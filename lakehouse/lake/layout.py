"""Where the local lake lives on disk: the embedded default's stand-in for the S3 buckets and the Glue catalog."""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from cdk_app.config import PROJECT_ROOT

DEFAULT_ROOT = PROJECT_ROOT / ".lakehouse"


@dataclass(frozen=True)
class LocalLake:
    """One local lake: zone folders (as the buckets are in AWS), the Iceberg warehouse and its catalog."""

    root: Path

    @classmethod
    def default(cls) -> "LocalLake":
        """The lake under $LAKEHOUSE_HOME, else `.lakehouse/` in the project."""
        return cls(Path(os.environ.get("LAKEHOUSE_HOME", DEFAULT_ROOT)).resolve())

    @property
    def raw_uri(self) -> str:
        return (self.root / "lake" / "raw").as_uri()

    @property
    def staging_uri(self) -> str:
        return (self.root / "lake" / "staging").as_uri()

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse"

    @property
    def catalog_db(self) -> Path:
        return self.root / "catalog.db"

    @property
    def serving_db(self) -> Path:
        """Gold tables copied into DuckDB for Superset (read-only there)."""
        return self.root / "serving.duckdb"

    @property
    def superset_home(self) -> Path:
        return self.root / "superset"

    def create(self) -> "LocalLake":
        for path in (self.root / "lake" / "raw", self.root / "lake" / "staging", self.warehouse):
            path.mkdir(parents=True, exist_ok=True)
        return self

    def wipe_data(self) -> None:
        """Remove the lake's data and catalog (Superset's home, which holds no lake data, is kept)."""
        for path in (self.root / "lake", self.root / "logs", self.warehouse):
            shutil.rmtree(path, ignore_errors=True)
        for path in (self.catalog_db, self.serving_db):
            path.unlink(missing_ok=True)
        for sidecar in self.root.glob("catalog.db-*"):  # sqlite WAL/SHM files
            sidecar.unlink()
