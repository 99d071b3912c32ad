"""Spark configuration of the Glue jobs in AWS: the same catalog name as locally, backed by Glue + S3.

CDK puts these into each Glue job's default arguments. No pyspark or CDK import here.
Local Spark uses lakehouse.lake.spark instead (JdbcCatalog on sqlite); SQL is the same in both.
"""
from __future__ import annotations

from iceberg_tables.catalogs import CATALOG_NAME

# Glue 5.1: Spark 3.5.6 and Iceberg 1.10.0, the Iceberg line the local tests run (docs/decisions/0220); the CDK
# app and the local cloud's provisioning both create their jobs with it.
GLUE_VERSION = "5.1"


def glue_spark_conf(warehouse_s3_uri: str) -> dict[str, str]:
    """Spark settings for Iceberg on Glue (GLUE_VERSION): catalog `lake` = GlueCatalog, S3FileIO, UTC sessions."""
    if not warehouse_s3_uri.startswith("s3://"):
        raise ValueError(f"the Glue warehouse must be an s3:// URI, got {warehouse_s3_uri!r}")
    catalog = f"spark.sql.catalog.{CATALOG_NAME}"
    return {
        "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
        catalog: "org.apache.iceberg.spark.SparkCatalog",
        f"{catalog}.catalog-impl": "org.apache.iceberg.aws.glue.GlueCatalog",
        f"{catalog}.io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
        f"{catalog}.warehouse": warehouse_s3_uri.rstrip("/"),
        # Gold dates are UTC dates: the jobs must not depend on the cluster's time zone.
        "spark.sql.session.timeZone": "UTC",
    }


def glue_job_arguments(warehouse_s3_uri: str) -> dict[str, str]:
    """Glue default arguments that load Iceberg and apply glue_spark_conf.

    Glue accepts one `--conf` key, so the settings are chained inside its value
    (`a=1 --conf b=2`), the documented way to pass several.
    """
    pairs = [f"{key}={value}" for key, value in glue_spark_conf(warehouse_s3_uri).items()]
    return {"--datalake-formats": "iceberg", "--conf": " --conf ".join(pairs)}
