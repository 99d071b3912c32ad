"""One deployable environment: the lake, ingestion, processing and analytics stacks of it."""
from __future__ import annotations

from aws_cdk import DefaultStackSynthesizer, Environment, Stage
from constructs import Construct

from cdk_app.config import PROJECT, EnvConfig
from cdk_app.analytics import AnalyticsStack
from cdk_app.ingestion import IngestionStack
from cdk_app.lake import DATABASES, LakeStack
from cdk_app.processing import ProcessingStack

# The embedded local cloud (moto) has no CDK bootstrap SSM parameter to check.
LOCAL_ENV = "local"


class LakehouseStage(Stage):
    def __init__(self, scope: Construct, env_config: EnvConfig) -> None:
        super().__init__(scope, env_config.name,
                         env=Environment(account=env_config.account, region=env_config.region))
        env = env_config

        def stack_args(component: str) -> dict:
            args: dict = {"stack_name": env.resource_name(component),
                          "description": f"{PROJECT} {env.name}: {component}"}
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
        # the buckets are named, not referenced, in other stacks' policies: order them explicitly
        for stack in (self.ingestion, self.processing, self.analytics):
            stack.add_stack_dependency(self.lake)
