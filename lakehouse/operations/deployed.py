"""The CLI's operations on a deployed environment (`--env dev|prod`): Athena queries in the environment's
workgroup, and the replays, by the names CDK gives the resources (cdk_app/config.py). The caller's AWS
credentials are used; the environment's account and region come from cdk.json or LAKEHOUSE_<ENV>_ACCOUNT /
_REGION, as `cdk deploy` takes them."""
from __future__ import annotations

import os
from typing import Any

import boto3

from cdk_app import config
from cdk_app.config import KINESIS_SOURCES, EnvConfig
from lambdas.common.athena import Values, run_query


def environment(name: str) -> EnvConfig:
    """The deployed environment `name`; raises config.ConfigError for an unknown one or a placeholder account
    (the account and region are what the commands need; the rest of its settings were the deploy's)."""
    env = config.load(name, overrides=config.user_values(name, {}, os.environ))
    config.refuse_placeholders(env, keys=("account",))
    # every client this process makes then goes to the environment's region (the staging and raw zones'
    # S3 filesystems of lambdas.common.storage included)
    os.environ["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"] = env.region
    return env


def query(env: EnvConfig, sql: str, athena: Any = None, poll_seconds: float = 0.5) -> tuple[list[str], list[Values]]:
    """(columns, rows) of one Athena statement in the environment's analytics workgroup."""
    athena = athena or boto3.client("athena", region_name=env.region)
    return run_query(athena, sql, env.workgroup_name, poll_seconds)


def replay_state_machine_arn(env: EnvConfig) -> str:
    return f"arn:aws:states:{env.region}:{env.account}:stateMachine:{env.replay_state_machine_name}"


def kinesis_sources(env: EnvConfig) -> dict[str, dict[str, str]]:
    """Per Kinesis source its cleaner's function and on-failure queue URL, as `lakehouse up` reports its own."""
    sqs = boto3.client("sqs", region_name=env.region)
    return {source: {"function": env.cleaner_for(source),
                     "dlq_url": sqs.get_queue_url(QueueName=env.cleaner_dead_letter_queue_for(source))["QueueUrl"]}
            for source in KINESIS_SOURCES}


def raw_uri(env: EnvConfig) -> str:
    from cdk_app.secure_bucket import bucket_name  # imports CDK: only needed for a deployed environment

    return f"s3://{bucket_name(env, 'raw')}"
