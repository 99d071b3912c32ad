"""Daily table maintenance in AWS: the Glue job's arguments and the schedule that starts its state machine.

The job (glue_jobs/maintenance.py) runs in the processing stack's GlueJobs, whose role already
reads, writes and deletes every table's files; the state machine is step_functions/maintenance.asl.json.
"""
from __future__ import annotations

import json

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from cdk_app.config import PROJECT_ROOT, EnvConfig
from cdk_app.grants import scheduler_role

JOB = "maintenance"
ASL_FILE = PROJECT_ROOT / "step_functions" / "maintenance.asl.json"
# 02:30 UTC: after the night's batch runs have settled; a commit race with one is retried by the ASL.
SCHEDULE = "cron(30 2 * * ? *)"
# A start that fails (throttling) is retried for an hour; a day missed is caught up by the next run.
SCHEDULE_RETRIES = 5
SCHEDULE_MAX_EVENT_AGE = Duration.hours(1)


class MaintenanceSchedule(Construct):
    """`schedule` (CfnSchedule, daily, UTC) and `role`: may start `state_machine`, nothing else."""

    def __init__(self, scope: Construct, construct_id: str, *, env: EnvConfig, state_machine: sfn.IStateMachine) -> None:
        super().__init__(scope, construct_id)
        self.role = scheduler_role(self, "Role")
        self.role.add_to_principal_policy(iam.PolicyStatement(
            actions=["states:StartExecution"], resources=[state_machine.state_machine_arn]))
        self.schedule = scheduler.CfnSchedule(
            self, "Schedule",
            name=env.resource_name(JOB),
            description="Maintain every lake table: expire snapshots, compact, rewrite manifests, remove orphans",
            schedule_expression=SCHEDULE,
            schedule_expression_timezone="UTC",
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            target=scheduler.CfnSchedule.TargetProperty(
                arn=state_machine.state_machine_arn,
                role_arn=self.role.role_arn,
                input=json.dumps({}),  # the run id is the execution's name (the ASL reads it)
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                    maximum_retry_attempts=SCHEDULE_RETRIES,
                    maximum_event_age_in_seconds=SCHEDULE_MAX_EVENT_AGE.to_seconds()),
            ),
        )
        self.schedule.node.add_dependency(self.role)  # the role's policy must exist before the first run
