"""One deployable environment: the lake, ingestion, processing and analytics stacks of it."""
from __future__ import annotations

from aws_cdk import DefaultStackSynthesizer, Environment, Stack, Stage, Tags
from constructs import Construct

from cdk_app.config import PROJECT, EnvConfig
from cdk_app.analytics import AnalyticsStack
from cdk_app.dashboards import DashboardsStack
from cdk_app.ingestion import IngestionStack
from cdk_app.lake import DATABASES, LakeStack
from cdk_app.operations_dashboard import COMPONENT as OPERATIONS, OperationsStack
from cdk_app.processing import ProcessingStack
from cdk_app.secure_bucket import removal_policy

# The embedded local cloud (moto) has no CDK bootstrap SSM parameter to check.
LOCAL_ENV = "local"
# Tags every taggable resource carries: project and environment from the stage, component from its stack
# (or from a construct with a role of its own below it, e.g. cdk_app/glue_jobs.py).
PROJECT_TAG, ENVIRONMENT_TAG, COMPONENT_TAG = "project", "environment", "component"


class LakehouseStage(Stage):
    def __init__(self, scope: Construct, env_config: EnvConfig) -> None:
        super().__init__(scope, env_config.name,
                         env=Environment(account=env_config.account, region=env_config.region))
        env = env_config
        Tags.of(self).add(PROJECT_TAG, PROJECT)
        Tags.of(self).add(ENVIRONMENT_TAG, env.name)

        def stack_args(component: str) -> dict:
            args: dict = {"stack_name": env.resource_name(component),
                          "description": f"{PROJECT} {env.name}: {component}",
                          # an environment whose data is retained (prod) can't be deleted by one command either
                          "termination_protection": env.removal_policy == "retain"}
            if env.name == LOCAL_ENV:
                args["synthesizer"] = DefaultStackSynthesizer(generate_bootstrap_version_rule=False)
            return args

        self.lake = LakeStack(self, "Lake", env_config=env, **stack_args("lake"))
        lake_parts = {"key": self.lake.key, "bucket_names": self.lake.bucket_names}
        self.ingestion = IngestionStack(self, "Ingestion", env_config=env, **lake_parts, **stack_args("ingestion"))
        self.processing = ProcessingStack(self, "Processing", env_config=env, databases=DATABASES, **lake_parts,
                                          **stack_args("processing"))
        self.analytics = AnalyticsStack(self, "Analytics", env_config=env, key=self.lake.key,
                                        results_bucket=self.lake.bucket_names["athena-results"],
                                        **stack_args("analytics"))
        # its dashboard charts, and its alarm widget names, everything the stacks made above deploy
        self.operations = OperationsStack(self, "Operations", env_config=env, **stack_args(OPERATIONS),
                                          watched=[s for s in self.node.children if isinstance(s, Stack)])
        # Superset on Fargate over Athena, where cdk.json turns it on (not in local: make demo serves it);
        # after the operations stack, which watches only the pipeline's stacks above
        self.dashboards = (DashboardsStack(self, "Dashboards", env_config=env, **lake_parts,
                                           **stack_args("dashboards")) if env.dashboards.enabled else None)
        for component, stack in self.stacks.items():
            Tags.of(stack).add(COMPONENT_TAG, component)
        # the Glue databases hold the Iceberg tables' catalog entries: kept where the data is (prod)
        for database in self.lake.databases.values():
            database.apply_removal_policy(removal_policy(env))
        # the buckets are named, not referenced, in other stacks' policies: order them explicitly
        for stack in (self.ingestion, self.processing, self.analytics, *filter(None, [self.dashboards])):
            stack.add_stack_dependency(self.lake)

    @property
    def stacks(self) -> dict[str, Stack]:
        """{component: its stack}; the component is the stack name's last part."""
        return {"lake": self.lake, "ingestion": self.ingestion, "processing": self.processing,
                "analytics": self.analytics, OPERATIONS: self.operations,
                **({"dashboards": self.dashboards} if self.dashboards else {})}
