"""The local SparkSession: PySpark 3.5 + Iceberg, catalog `lake` = JdbcCatalog on the sqlite catalog file.

One session per process, shared by every job and test: a second session would open a second
sqlite connection and the two would block each other's commits. Asking for another catalog file
re-points the session's `lake` catalog (the old connection is closed first).
"""
from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

from py4j.protocol import Py4JJavaError
from pyspark.sql import SparkSession

from iceberg_tables.catalogs import CATALOG_NAME, SQLITE_BUSY_TIMEOUT_SECONDS, local_catalog
from lakehouse.lake.spark_jars import LOG4J_CONFIG, jar_paths

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_JARS_DIR = PROJECT_ROOT / "build" / "jars"

_lock = threading.Lock()
_session: SparkSession | None = None
_catalog_files: tuple[Path, Path] | None = None


def local_catalog_conf(warehouse: Path, catalog_db: Path) -> dict[str, str]:
    """Spark settings of catalog `lake` on the same sqlite file as pyiceberg's SqlCatalog."""
    prefix = f"spark.sql.catalog.{CATALOG_NAME}"
    return {
        prefix: "org.apache.iceberg.spark.SparkCatalog",
        f"{prefix}.type": "jdbc",
        f"{prefix}.uri": f"jdbc:sqlite:{catalog_db}",
        f"{prefix}.warehouse": warehouse.as_uri(),
        # pyiceberg's catalog tables have the V1 layout (with views).
        f"{prefix}.jdbc.schema-version": "V1",
        # Iceberg's table-creation probe leaves a ResultSet open, which pins a sqlite read
        # transaction for the session's life and fails every later commit made after a pyiceberg
        # write (SQLITE_BUSY). local_catalog() creates the tables instead (decision 0101).
        f"{prefix}.jdbc.init-catalog-tables": "false",
        f"{prefix}.jdbc.busy_timeout": str(SQLITE_BUSY_TIMEOUT_SECONDS * 1000),
        f"{prefix}.clients": "1",
        # pyiceberg writes to the same tables: always load the current metadata.
        f"{prefix}.cache-enabled": "false",
    }


def _session_conf(warehouse: Path, catalog_db: Path, jars_dir: Path) -> dict[str, str]:
    java_options = f"-Duser.timezone=UTC -Dlog4j2.configurationFile={(jars_dir / LOG4J_CONFIG).as_uri()}"
    return {
        "spark.master": "local[2]",
        "spark.app.name": "lakehouse",
        "spark.jars": ",".join(str(p) for p in jar_paths(jars_dir)),
        "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": "4",
        "spark.driver.memory": "2g",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.extraJavaOptions": java_options,
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.pyspark.python": sys.executable,
        # Spark's built-in catalog is unused, but it would create ./spark-warehouse in the cwd.
        "spark.sql.warehouse.dir": (warehouse.parent / "spark-warehouse").as_uri(),
        **local_catalog_conf(warehouse, catalog_db),
    }


def _alive(session: SparkSession) -> bool:
    return session.sparkContext._jsc is not None


def _repoint(session: SparkSession, warehouse: Path, catalog_db: Path) -> None:
    """Point catalog `lake` at other files: close its connection, then let Spark load it anew."""
    manager = session._jsparkSession.sessionState().catalogManager()
    try:
        registered = manager.isCatalogRegistered(CATALOG_NAME)  # which loads it, if it was never used
    except Py4JJavaError:  # never used, and its files are gone (a temporary lake): nothing is open
        registered = False
    if registered:
        manager.catalog(CATALOG_NAME).icebergCatalog().close()
    for key, value in local_catalog_conf(warehouse, catalog_db).items():
        session.conf.set(key, value)
    manager.reset()


def get_spark(warehouse: Path, catalog_db: Path, jars_dir: Path = DEFAULT_JARS_DIR) -> SparkSession:
    """The process's SparkSession with catalog `lake` on `catalog_db` (created, WAL) and `warehouse`."""
    global _session, _catalog_files
    files = (warehouse.resolve(), catalog_db.resolve())
    with _lock:
        if _session is not None and _alive(_session) and files == _catalog_files:
            return _session
        local_catalog(*files)  # creates the sqlite file in WAL mode and the catalog tables
        if _session is not None and _alive(_session):
            _repoint(_session, *files)
        else:
            os.environ["PYSPARK_PYTHON"] = sys.executable  # workers run the venv's python, not the system's
            os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"  # else Spark binds its block manager to the LAN address
            builder = SparkSession.builder
            for key, value in _session_conf(*files, jars_dir).items():
                builder = builder.config(key, value)
            _session = builder.getOrCreate()
            _session.sparkContext.setLogLevel("WARN")
        _catalog_files = files
        return _session
