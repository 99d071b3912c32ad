"""The table_migrator Lambda: a CloudFormation custom resource that applies iceberg_tables' specs to Glue.

Called through CDK's provider framework (cdk_app/table_migrator.py): return the response, raise to
fail the deployment. Create and Update migrate (an IncompatibleTableChange fails the deploy and
names the table, column and change); Delete keeps the tables and their data.

ResourceProperties: CatalogName (must be `lake`), Warehouse (s3://bucket[/prefix]; default
$WAREHOUSE_URI), plus whatever makes CloudFormation call again (CodeHash).
"""
from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger

from iceberg_tables.catalogs import CATALOG_NAME, ENV_WAREHOUSE_URI, glue_catalog
from iceberg_tables.migrator import migrate

logger = Logger(service="table_migrator")

PHYSICAL_ID = f"iceberg-tables-{CATALOG_NAME}"
# CloudFormation caps a custom resource's response at 4 KB.
MAX_DATA_CHARS = 3000


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = event.get("RequestType")
    physical_id = event.get("PhysicalResourceId") or PHYSICAL_ID
    if request == "Delete":
        logger.info("stack deleted: Iceberg tables and data kept")
        return {"PhysicalResourceId": physical_id}
    if request not in ("Create", "Update"):
        raise ValueError(f"unknown RequestType {request!r}: expected Create, Update or Delete")
    props = event.get("ResourceProperties") or {}
    if props.get("CatalogName", CATALOG_NAME) != CATALOG_NAME:
        raise ValueError(f"CatalogName {props['CatalogName']!r} != {CATALOG_NAME!r}, the name every job's SQL uses")
    warehouse = props.get("Warehouse") or os.environ.get(ENV_WAREHOUSE_URI)
    if not warehouse:
        raise ValueError(f"no warehouse: set ResourceProperties.Warehouse or ${ENV_WAREHOUSE_URI}")
    changes = migrate(glue_catalog(warehouse))
    logger.info("tables migrated", extra={"changes": changes})
    return {"PhysicalResourceId": physical_id, "Data": {"Changes": "; ".join(changes)[:MAX_DATA_CHARS]}}
