"""The FX-rates API connector: a Lambda run daily by EventBridge Scheduler, its API key, its failures.

A pull that never happens must not go unnoticed: the schedule retries invoking the function and
then sends the event to the dead-letter queue; the function's own failed attempts (Lambda retries
an asynchronous invocation twice) end in the same queue. One queue, one place to look and replay.
"""
from __future__ import annotations

import json

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from cdk_app.config import EnvConfig
from cdk_app.generated_secret import generated_secret
from cdk_app.grants import WRITE_OBJECTS, allow, allow_key, allow_list, arn, objects_arn, scheduler_role
from cdk_app.python_function import PythonFunction
from cdk_app.queues import dead_letter_queue, park_failed_invocations
from lambdas.common import environment
from lambdas.contracts import fx_rates
from lambdas.contracts.lake_layout import raw_prefix, staged_prefixes

FOLDER = "api_connector"
API_KEY_SECRET = "fx-api-key"  # the secret's component name: lakehouse-<env>-fx-api-key
# The scheduler passes this as the event: the connector fetches the day before the scheduled one,
# so a late or retried run still fetches the right day (lambdas/api_connector/schedule.py).
SCHEDULE_INPUT = {"scheduled_time": "<aws.scheduler.scheduled-time>"}
# Scheduler retries failed invocations (throttling, a missing function) for up to an hour.
SCHEDULE_RETRIES = 5
SCHEDULE_MAX_EVENT_AGE = Duration.hours(1)
# The connector starts a day only while a worst-case fetch still fits (it reads the time left).
TIMEOUT = Duration.minutes(5)


class ApiConnector(Construct):
    """`function`, `api_key` (secret), `dead_letters`, `schedule` (CfnSchedule), `scheduler_role`."""

    def __init__(self, scope: Construct, construct_id: str, *, env: EnvConfig, key: kms.IKey,
                 bucket_names: dict[str, str]) -> None:
        super().__init__(scope, construct_id)
        source = fx_rates.SOURCE
        self.api_key = generated_secret(
            self, "ApiKey", env=env, component=API_KEY_SECRET, key=key,
            description='FX-rates API key as {"api_key": "..."}: a generated placeholder until an operator '
                        "stores the provider's key (put-secret-value)",
            value=secretsmanager.SecretStringGenerator(
                secret_string_template=json.dumps({"api_key": ""}), generate_string_key="api_key",
                exclude_punctuation=True),
            not_rotated_because="The key is issued by the FX-rates provider: it is rotated at the provider and "
                                "stored with put-secret-value; no rotation Lambda can mint one. The connector "
                                "re-reads the secret when the API refuses the cached key.",
        )
        self.dead_letters = dead_letter_queue(
            self, "DeadLetters", env=env, component="api-connector-dlq", key=key,
            holds="FX pulls the schedule could not start, or whose every attempt failed")
        self.function = PythonFunction(
            self, "Function", env=env, folder=FOLDER, key=key,
            with_pyarrow=True, timeout=TIMEOUT,
            # the secret's name as a literal: its attribute is a token
            environment=environment.api_connector(env.fx_api_base_url, env.resource_name(API_KEY_SECRET),
                                                  f"s3://{bucket_names['raw']}", f"s3://{bucket_names['staging']}"),
        )
        function = self.function.function
        park_failed_invocations(function, self.dead_letters)
        role = self.function.role
        raw, staging = bucket_names["raw"], bucket_names["staging"]
        # raw bodies are written once (a HEAD first: s3:GetObject, and s3:ListBucket so a missing
        # key answers 404, not 403); a day's staging files are rewritten or removed on a re-run
        allow_list(role, raw, [raw_prefix(source)])
        allow(role, ("s3:GetObject", *WRITE_OBJECTS), [objects_arn(self, raw, raw_prefix(source))],
              wildcard_reason="The connector writes each API response once, under its source's raw prefix, "
                              "named by day, page and content hash at run time.")
        staged = staged_prefixes(source)
        allow_list(role, staging, staged)
        allow(role, ("s3:GetObject", *WRITE_OBJECTS, "s3:DeleteObject"),
              [objects_arn(self, staging, prefix) for prefix in staged],
              wildcard_reason="The connector keeps one folder per day under its source's clean, quarantine and "
                              "manifest prefixes, rewriting or removing that day's files on a re-run.")
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["secretsmanager:GetSecretValue"], resources=[self.api_key.secret_arn]))
        allow(role, ("sqs:SendMessage",), [arn(self, "sqs", self.dead_letters.queue_name)])
        allow_key(role, key)

        self.scheduler_role = scheduler_role(self, "SchedulerRole")
        self.scheduler_role.add_to_principal_policy(iam.PolicyStatement(
            actions=["lambda:InvokeFunction"], resources=[function.function_arn]))
        allow(self.scheduler_role, ("sqs:SendMessage",), [arn(self, "sqs", self.dead_letters.queue_name)])
        allow_key(self.scheduler_role, key)  # the dead-letter queue is SSE-KMS
        self.schedule = scheduler.CfnSchedule(
            self, "Schedule",
            name=env.resource_name("fx-rates"),
            description="Pull yesterday's FX rates (UTC) into the lake",
            schedule_expression=env.fx_schedule,
            schedule_expression_timezone="UTC",
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            target=scheduler.CfnSchedule.TargetProperty(
                arn=function.function_arn,
                role_arn=self.scheduler_role.role_arn,
                input=json.dumps(SCHEDULE_INPUT),
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                    maximum_retry_attempts=SCHEDULE_RETRIES,
                    maximum_event_age_in_seconds=SCHEDULE_MAX_EVENT_AGE.to_seconds()),
                dead_letter_config=scheduler.CfnSchedule.DeadLetterConfigProperty(arn=self.dead_letters.queue_arn),
            ),
        )
        # the role's policy must exist before the first run
        self.schedule.node.add_dependency(self.scheduler_role)
