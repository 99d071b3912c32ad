"""The data_quality function (lambdas/data_quality): the batch pipeline's checks as Athena queries in
a workgroup of its own, their results appended to two ops tables.

Least privilege: queries in its own workgroup (enforced settings, its own results prefix, encrypted: it
cannot read what people and dashboards query in the analytics workgroup, decision 0228); the catalog's
silver and ops databases read; the warehouse's silver and ops files read (Athena reads them as the
caller); ops.quality_results and ops.pipeline_runs the only tables written; its workgroup's results
prefix read and written.
"""
from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_kms as kms
from constructs import Construct

from cdk_app.analytics import enforced_workgroup
from cdk_app.config import EnvConfig
from cdk_app.grants import WRITE_OBJECTS, allow, allow_key, allow_list, arn, bucket_arn, catalog_arns, objects_arn
from cdk_app.lake import warehouse_prefix
from cdk_app.python_function import PythonFunction
from iceberg_tables.catalogs import ENV_WAREHOUSE_URI
from iceberg_tables.specs import OPS_PIPELINE_RUNS, OPS_QUALITY_RESULTS
from lambdas.data_quality.engines import ATHENA, ENV_ENGINE, ENV_WORKGROUP
from lambdas.data_quality.thresholds import ENV_THRESHOLDS

FOLDER = "data_quality"
RESULTS_PREFIX = "data-quality/"  # of the athena-results bucket; the analytics workgroup's is athena/
READ_DATABASES = ("silver", "ops")  # what the checks query
WRITTEN_TABLES = (OPS_QUALITY_RESULTS, OPS_PIPELINE_RUNS)
ATHENA_QUERY = ("athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults",
                "athena:StopQueryExecution", "athena:GetWorkGroup")
# 19 small queries (checks.all_checks), each a few seconds on Athena; the rest is headroom for a queued workgroup.
TIMEOUT = Duration.minutes(10)


class DataQuality(Construct):
    """`function` (PythonFunction) with its grants."""

    def __init__(self, scope: Construct, construct_id: str, *, env: EnvConfig, key: kms.IKey,
                 bucket_names: Mapping[str, str]) -> None:
        super().__init__(scope, construct_id)
        warehouse, results = bucket_names["warehouse"], bucket_names["athena-results"]
        # its own workgroup: the analytics one's results prefix holds every user's query results
        self.workgroup = enforced_workgroup(
            self, "WorkGroup", env=env, key=key, name=env.quality_workgroup_name,
            description=f"The {env.name} lakehouse's data-quality checks alone; settings enforced",
            output_location=f"s3://{results}/{RESULTS_PREFIX}")
        self.function = PythonFunction(
            self, "Function", env=env, folder=FOLDER, key=key,
            # pyiceberg-core computes the day() partition of the result rows it appends
            extra_sources=["iceberg_tables"], bundled=["pyiceberg", "pyiceberg-core"], with_pyarrow=True,
            timeout=TIMEOUT, memory_mb=1024,
            environment={
                ENV_ENGINE: ATHENA, ENV_WORKGROUP: env.quality_workgroup_name,
                ENV_THRESHOLDS: env.quality.to_json(), ENV_WAREHOUSE_URI: f"s3://{warehouse}",
            },
        )
        role = self.function.role
        allow(role, ATHENA_QUERY, [arn(self, "athena", f"workgroup/{env.quality_workgroup_name}")])
        allow(role, ("glue:GetDatabase", "glue:GetTable"), catalog_arns(self, READ_DATABASES),
              wildcard_reason="The checks query the silver and ops tables, defined in iceberg_tables/; Athena "
                              "reads each one's metadata location from the catalog.")
        allow(role, ("glue:UpdateTable",), [arn(self, "glue", "catalog"), arn(self, "glue", "database/ops"),
                                             *(arn(self, "glue", f"table/ops/{t.name}") for t in WRITTEN_TABLES)])
        read = [warehouse_prefix(database) for database in READ_DATABASES]
        allow_list(role, warehouse, read)
        allow(role, ("s3:GetObject",), [objects_arn(self, warehouse, prefix) for prefix in read],
              wildcard_reason="Athena reads the silver and ops tables' data and metadata files as the caller; "
                              "their names are made at write time.")
        allow(role, WRITE_OBJECTS, [objects_arn(self, warehouse, f"{warehouse_prefix('ops')}{t.name}/")
                                    for t in WRITTEN_TABLES],
              wildcard_reason="Iceberg appends write new data and metadata files, named at run time, under "
                              "the two written tables' folders.")
        allow_list(role, results, [RESULTS_PREFIX])
        allow(role, ("s3:GetBucketLocation",), [bucket_arn(self, results)])
        allow(role, ("s3:GetObject", *WRITE_OBJECTS), [objects_arn(self, results, RESULTS_PREFIX)],
              wildcard_reason="Athena writes each query's result under the workgroup's results prefix as the "
                              "caller, and the function reads it back; names are query ids.")
        allow_key(role, key)
