"""The Iceberg tables of iceberg_tables/ applied to the Glue catalog by a CDK custom resource.

CloudFormation's own Glue table resource drops `table_type=ICEBERG` on update, so the tables
are created and evolved by the project's migrator (pyiceberg), run in a Lambda on every deploy
that changes the table specs. Deleting the stack keeps the tables and their data.
"""
from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import CustomResource, Duration
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import custom_resources as cr
from constructs import Construct

from cdk_app.config import EnvConfig
from cdk_app.grants import allow, allow_key, allow_list, catalog_arns, objects_arn
from cdk_app.nag import acknowledge, nag_ref
from cdk_app.python_function import PythonFunction, encrypted_log_group
from iceberg_tables.catalogs import ENV_WAREHOUSE_URI

CATALOG_ACTIONS = ("glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:CreateTable", "glue:UpdateTable")


class TableMigrator(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        env: EnvConfig,
        key: kms.IKey,
        warehouse_bucket: str,
        databases: Mapping[str, glue.CfnDatabase],
    ) -> None:
        super().__init__(scope, construct_id)
        warehouse_uri = f"s3://{warehouse_bucket}"
        self.handler = PythonFunction(
            self, "Handler", env=env, folder="table_migrator", key=key,
            extra_sources=["iceberg_tables"], bundled=["pyiceberg"], with_pyarrow=True,
            timeout=Duration.minutes(5), memory_mb=1024,
            environment={ENV_WAREHOUSE_URI: warehouse_uri},
        )
        role = self.handler.role
        allow(role, CATALOG_ACTIONS, catalog_arns(self, list(databases)),
              wildcard_reason="The migrator creates and evolves every table of these databases; their names "
                              "live in iceberg_tables/, not in CloudFormation.")
        allow_list(role, warehouse_bucket)
        allow(role, ("s3:GetObject", "s3:PutObject"), [objects_arn(self, warehouse_bucket)],
              wildcard_reason="Iceberg metadata files go under each table's own folder of the warehouse, "
                              "created by the migration itself.")
        allow_key(role, key)

        framework_role = iam.Role(self, "ProviderRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        provider_logs = encrypted_log_group(
            self, "ProviderLogs", env=env, name=f"/aws/lambda/{env.function_name('table_migrator')}-provider", key=key,
        )
        provider_logs.grant_write(framework_role)
        provider = cr.Provider(
            self, "Provider",
            on_event_handler=self.handler.function,
            framework_on_event_role=framework_role,
            log_group=provider_logs,
            provider_function_name=f"{env.function_name('table_migrator')}-provider",
        )
        self.resource = CustomResource(
            self, "Resource",
            service_token=provider.service_token,
            resource_type="Custom::IcebergTables",
            properties={
                "Databases": sorted(databases),
                # a new hash of the migrator and table specs re-runs the migration on deploy
                "CodeHash": self.handler.code_hash,
            },
        )
        for database in databases.values():
            self.resource.node.add_dependency(database)
        acknowledge(framework_role, {
            f"AwsSolutions-IAM5[Resource::{nag_ref(self.handler.function)}:*]": "Granted by CDK's provider "
                "framework: it may invoke any version of the migrator function, which it owns alone.",
        })
