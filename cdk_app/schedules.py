"""A state machine started by EventBridge Scheduler, as the FX connector is (cdk_app/api_connector.py):
its own scheduler role, a retry policy, and a dead-letter queue for starts that never happened.

The batch pipeline runs on the environment's `batch_schedule` (cdk.json), maintenance daily
(cdk_app/maintenance.py). A start that fails (throttling, a missing machine) is retried for an hour,
then the event waits in the queue; a batch start that lands while a run holds the run lock is skipped
at once by design (recorded SKIPPED, no alert: decision 0113) and the next tick merges what is left.
"""
from __future__ import annotations

import json

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from cdk_app.config import EnvConfig
from cdk_app.grants import allow_key, scheduler_role
from cdk_app.queues import dead_letter_queue

SCHEDULE_RETRIES = 5
SCHEDULE_MAX_EVENT_AGE = Duration.hours(1)


class StateMachineSchedule(Construct):
    """`schedule` (CfnSchedule named `name`, UTC, input {}: the run id is the execution's name),
    `component` (`<its component>-schedule`), `dead_letters` (`lakehouse-<env>-<that component>-dlq`, alarmed
    by the caller) and `role`: may start `state_machine` and park a failed start, nothing else."""

    def __init__(self, scope: Construct, construct_id: str, *, env: EnvConfig, key: kms.IKey, component: str,
                 expression: str, description: str, state_machine: sfn.IStateMachine) -> None:
        super().__init__(scope, construct_id)
        self.component = f"{component}-schedule"
        self.dead_letters = dead_letter_queue(
            self, "DeadLetters", env=env, component=f"{self.component}-dlq", key=key,
            holds=f"starts of {env.resource_name(component)} the schedule could not make")
        self.role = scheduler_role(self, "Role")
        self.role.add_to_principal_policy(iam.PolicyStatement(
            actions=["states:StartExecution"], resources=[state_machine.state_machine_arn]))
        self.role.add_to_principal_policy(iam.PolicyStatement(
            actions=["sqs:SendMessage"], resources=[self.dead_letters.queue_arn]))
        allow_key(self.role, key)  # the dead-letter queue is SSE-KMS
        self.schedule = scheduler.CfnSchedule(
            self, "Schedule",
            name=env.resource_name(component), description=description,
            schedule_expression=expression, schedule_expression_timezone="UTC",
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            target=scheduler.CfnSchedule.TargetProperty(
                arn=state_machine.state_machine_arn, role_arn=self.role.role_arn, input=json.dumps({}),
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                    maximum_retry_attempts=SCHEDULE_RETRIES,
                    maximum_event_age_in_seconds=SCHEDULE_MAX_EVENT_AGE.to_seconds()),
                dead_letter_config=scheduler.CfnSchedule.DeadLetterConfigProperty(arn=self.dead_letters.queue_arn),
            ),
        )
        self.schedule.node.add_dependency(self.role)  # the role's policy must exist before the first run
