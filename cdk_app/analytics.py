"""Analytics stack: the Athena workgroup the lake is queried through (Superset, users, awswrangler), the data-quality
checks have their own (cdk_app/data_quality.py); and the fresh views (iceberg_tables/views.py, decision 0501) in
their Glue database `fresh`.

A view is a Glue table of type VIRTUAL_VIEW in the encoding Athena writes for its own views: its
ViewOriginalText holds `/* Presto View: <base64 of JSON {originalSql, catalog, schema, columns}> */`, its
ViewExpandedText the marker `/* Presto View */`, its columns are in Hive types. It holds no data and names the
tables it reads by database (the Glue databases are named as the Iceberg namespaces), so CloudFormation owns it
(unlike the Iceberg tables, whose `table_type` its updates would drop: cdk_app/table_migrator.py).

Its results bucket lives in the lake stack with the other buckets, so one stack owns the
access-log bucket's policy (a bucket here logging there would make the stacks depend on each other).
"""
from __future__ import annotations

import base64
import json

from aws_cdk import Stack
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_kms as kms
from constructs import Construct

from cdk_app.config import EnvConfig
from iceberg_tables.views import ALL_VIEWS, ViewSpec, presto_type

ENGINE_VERSION = "Athena engine version 3"
RESULTS_PREFIX = "athena/"
ATHENA_CATALOG = "awsdatacatalog"  # the Glue Data Catalog, as Athena names it
# The views CloudFormation deploys: every view of iceberg_tables/views.py
DEPLOYED_VIEWS: tuple[ViewSpec, ...] = ALL_VIEWS
# Hive's name of a Presto type where the two differ (timestamps of any precision or zone are Hive's `timestamp`)
HIVE_TYPES = {"varchar": "string", "integer": "int", "varbinary": "binary"}


class AnalyticsStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, env_config: EnvConfig, key: kms.IKey,
                 results_bucket: str, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        env = env_config
        self.workgroup = enforced_workgroup(
            self, "WorkGroup", env=env, key=key, name=env.workgroup_name,
            description=f"Queries over the {env.name} lakehouse; settings enforced on every client",
            output_location=f"s3://{results_bucket}/{RESULTS_PREFIX}")
        namespaces = sorted({view.namespace for view in DEPLOYED_VIEWS})
        self.view_databases = {namespace: glue.CfnDatabase(
            self, f"{namespace.capitalize()}Database", catalog_id=self.account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=namespace, description=f"Athena views of the {namespace} layer ({env.name}): no data of their own"),
        ) for namespace in namespaces}
        self.views = {view.full_name: athena_view(self, view, self.view_databases[view.namespace])
                      for view in DEPLOYED_VIEWS}


def presto_view_text(view: ViewSpec) -> str:
    """The view as Athena stores it in the Glue table's ViewOriginalText."""
    definition = {"originalSql": view.sql, "catalog": ATHENA_CATALOG, "schema": view.namespace,
                  "columns": [{"name": c.name, "type": presto_type(c)} for c in view.columns]}
    return f"/* Presto View: {base64.b64encode(json.dumps(definition).encode()).decode()} */"


def hive_type(presto: str) -> str:
    return "timestamp" if presto.startswith("timestamp") else HIVE_TYPES.get(presto, presto)


def athena_view(scope: Construct, view: ViewSpec, database: glue.CfnDatabase) -> glue.CfnTable:
    """`view` as a Glue VIRTUAL_VIEW table in `database` that Athena queries like a view it created itself."""
    table = glue.CfnTable(
        scope, f"{view.namespace.capitalize()}{view.name.title().replace('_', '')}View",
        catalog_id=Stack.of(scope).account,
        database_name=view.namespace,
        table_input=glue.CfnTable.TableInputProperty(
            name=view.name, description=view.doc, table_type="VIRTUAL_VIEW",
            parameters={"presto_view": "true", "comment": "Presto View"},
            view_original_text=presto_view_text(view), view_expanded_text="/* Presto View */",
            partition_keys=[],
            storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                columns=[glue.CfnTable.ColumnProperty(name=c.name, type=hive_type(presto_type(c)))
                         for c in view.columns],
                serde_info=glue.CfnTable.SerdeInfoProperty()),
        ),
    )
    table.node.add_dependency(database)
    return table


def enforced_workgroup(scope: Construct, construct_id: str, *, env: EnvConfig, key: kms.IKey, name: str,
                       description: str, output_location: str) -> athena.CfnWorkGroup:
    """An Athena workgroup whose settings override every client's: engine 3, the environment's scan cutoff,
    results at `output_location` only, SSE-KMS with the lake key."""
    return athena.CfnWorkGroup(
        scope, construct_id,
        name=name,
        description=description,
        recursive_delete_option=env.removal_policy == "destroy",
        work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
            enforce_work_group_configuration=True,
            publish_cloud_watch_metrics_enabled=True,
            bytes_scanned_cutoff_per_query=env.athena_bytes_scanned_cutoff,
            engine_version=athena.CfnWorkGroup.EngineVersionProperty(selected_engine_version=ENGINE_VERSION),
            result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                output_location=output_location,
                encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                    encryption_option="SSE_KMS", kms_key=key.key_arn),
            ),
        ),
    )
