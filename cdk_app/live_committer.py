"""The live committer: the one writer of the live tables (docs/decisions/0500), fed in order by an SQS FIFO queue.

The cleaners send each staged batch's notification (lambdas/contracts/live.py) to the queue, in its table's
message group: Lambda runs one invocation per group at a time, so commits to a table never conflict. The function
registers the clean staging files in the live tables (Iceberg add_files) and reports a failed table's messages
for redelivery; after MAX_RECEIVES receives a message goes to the FIFO dead-letter queue. With the environment's
live_commit_every_seconds (cdk.json, decision 0504) it defers a table's young notifications by their visibility, so
a table gets one commit per that many seconds at most (or per full delivery).

Least privilege: it reads the staged clean files of the sources with a live table, reads and updates the live
database's tables in the Glue catalog, and writes their data and metadata files under the warehouse's live folder.

Maintenance (decision 0503): EventBridge Scheduler sends a maintain message into each live table's own message
group every MAINTENANCE_SCHEDULE, so the committer trims, compacts and expires the table between its commits (one
writer). For it the committer also reads the batch ledger (ops.merged_batches) and deletes orphans under the live
folder; it can delete nothing in staging.
"""
from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk_app.config import EnvConfig
from cdk_app.grants import allow, allow_key, allow_list, arn, catalog_arns, objects_arn, scheduler_role
from cdk_app.lake import warehouse_prefix
from cdk_app.nag import acknowledge
from cdk_app.python_function import PythonFunction
from cdk_app.queues import RETENTION
from cdk_app.schedules import SCHEDULE_RETRIES
from cdk_app.secure_bucket import removal_policy
from iceberg_tables.catalogs import ENV_WAREHOUSE_URI
from lambdas.common.environment import LIVE_QUEUE_URL
from lambdas.contracts import live
from lambdas.contracts.lake_layout import clean_prefix
from lambdas.live_committer.settings import COMMIT_EVERY, FIFO_BATCH, MAX_RECEIVES
from lambdas.live_committer.maintenance import LEDGER, QUEUE_RETENTION, SCHEDULE_EVERY, maintain_body

FOLDER = "live_committer"  # lambdas/live_committer/
FIFO = ".fifo"  # SQS requires it at the end of a FIFO queue's name
TIMEOUT = Duration.minutes(1)  # a commit reads a few Parquet footers and writes three metadata files
# Lambda's advice for an SQS source: at least six times the function's timeout, so a message is not redelivered
# while its retries of a throttled invocation still run.
VISIBILITY_TIMEOUT = Duration.seconds(6 * TIMEOUT.to_seconds())
BATCH_SIZE = FIFO_BATCH  # SQS FIFO's maximum per delivery: everything waiting for a table becomes one commit
# What Lambda's SQS event source mapping calls as the function's role (AWS's AWSLambdaSQSQueueExecutionRole),
# and the deferral's ChangeMessageVisibilityBatch (IAM's sqs:ChangeMessageVisibility); CDK's SqsEventSource would
# add sqs:GetQueueUrl too, which nothing calls.
CONSUME = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility")
# How often each live table is maintained (decision 0503, maintenance.SCHEDULE_EVERY)
MAINTENANCE_SCHEDULE = f"rate({int(SCHEDULE_EVERY.total_seconds() // 60)} minutes)"
# a maintain message that cannot be sent is retried until the next one is due: no dead-letter queue, a lost one
# only delays the maintenance by one period
MAINTENANCE_MAX_EVENT_AGE = Duration.seconds(SCHEDULE_EVERY.total_seconds())


def maintenance_schedule_name(env: EnvConfig, table: str) -> str:
    """lakehouse-<env>-live-maintenance-<table> for 'live.<table>'."""
    return env.resource_name(f"live-maintenance-{table.split('.', 1)[1].replace('_', '-')}")


def dead_letter_queue_name(env: EnvConfig) -> str:
    """lakehouse-<env>-live-commits-dlq.fifo, beside the queue's env.live_commit_queue_name (as the local cloud's)."""
    return env.live_commit_queue_name.removesuffix(FIFO) + "-dlq" + FIFO


class LiveCommitter(Construct):
    """`function` (PythonFunction lambdas/live_committer), `queue` (SQS FIFO, what the cleaners notify) and
    `dead_letter_queue` (FIFO: what failed MAX_RECEIVES times, to replay)."""

    def __init__(self, scope: Construct, construct_id: str, *, env: EnvConfig, key: kms.IKey,
                 bucket_names: dict[str, str]) -> None:
        super().__init__(scope, construct_id)
        fifo = {"fifo": True, "encryption": sqs.QueueEncryption.KMS, "encryption_master_key": key,
                "enforce_ssl": True, "removal_policy": removal_policy(env)}
        self.dead_letter_queue = sqs.Queue(self, "DeadLetters", queue_name=dead_letter_queue_name(env),
                                           retention_period=RETENTION, **fifo)
        acknowledge(self.dead_letter_queue, {
            "AwsSolutions-SQS3": "This queue is itself the dead-letter queue of the live commits; it has no consumer "
                                 "to fail.",
        })
        self.queue = sqs.Queue(
            self, "Queue", queue_name=env.live_commit_queue_name, visibility_timeout=VISIBILITY_TIMEOUT,
            # the cleaner sends each notification's deduplication id (lambdas/contracts/live.py), which SQS uses
            # over the content; EventBridge Scheduler sends none, and a FIFO target must deduplicate by content
            content_based_deduplication=True,
            # A redelivery is checked against the snapshots the live table keeps (decision 0500): the maintenance
            # keeps them longer than this (maintenance.SNAPSHOT_RETENTION, decision 0503).
            retention_period=Duration.seconds(min(QUEUE_RETENTION.total_seconds(), RETENTION.to_seconds())),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dead_letter_queue, max_receive_count=MAX_RECEIVES),
            **fifo)
        warehouse = bucket_names["warehouse"]
        self.function = PythonFunction(
            self, "Function", env=env, folder=FOLDER, key=key, extra_sources=["iceberg_tables"],
            bundled=["pyiceberg"],  # an unpartitioned table: no transforms, so no pyiceberg-core
            with_pyarrow=True, timeout=TIMEOUT, memory_mb=1024,
            environment={ENV_WAREHOUSE_URI: f"s3://{warehouse}", LIVE_QUEUE_URL: self.queue.queue_url,
                         COMMIT_EVERY: str(env.live_commit_every_seconds)},
        )
        self.mapping = lambda_.EventSourceMapping(
            self, "Mapping", target=self.function.function, event_source_arn=self.queue.queue_arn,
            batch_size=BATCH_SIZE, report_batch_item_failures=True)
        role = self.function.role
        allow(role, CONSUME, [arn(self, "sqs", env.live_commit_queue_name)])  # and the key's decryption, below
        self.mapping.node.add_dependency(role)  # the mapping checks the role's permissions when it is created
        allow(role, ("s3:GetObject",),
              [objects_arn(self, bucket_names["staging"], clean_prefix(source)) for source in live.TABLE_OF_SOURCE],
              wildcard_reason="The committer reads the footers of the clean staging files it registers, one per "
                              "cleaned batch under the clean prefix of each source with a live table; the keys are "
                              "made at run time.")
        allow(role, ("glue:GetDatabase", "glue:GetTable", "glue:UpdateTable"), catalog_arns(self, [live.NAMESPACE]),
              wildcard_reason="The committer commits to every live table (lambdas/contracts/live.py), defined in "
                              "iceberg_tables/.")
        allow_list(role, warehouse, [warehouse_prefix(live.NAMESPACE)])
        allow(role, ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"),
              [objects_arn(self, warehouse, warehouse_prefix(live.NAMESPACE))],
              wildcard_reason="Iceberg commits read the live tables' metadata and write new manifests and metadata "
                              "files, named at run time, under the live tables' folder; their maintenance writes "
                              "compacted files there and deletes the files no retained snapshot references.")
        ledger_database, ledger_table = LEDGER.split(".")
        allow(role, ("glue:GetTable",), [arn(self, "glue", "catalog"), arn(self, "glue", f"database/{ledger_database}"),
                                         arn(self, "glue", f"table/{ledger_database}/{ledger_table}")])
        allow(role, ("s3:GetObject",),
              [objects_arn(self, warehouse, f"{warehouse_prefix(ledger_database)}{ledger_table}/")],
              wildcard_reason="The maintenance reads the batch ledger (which batches silver merged), an Iceberg "
                              "table whose metadata and data files are named at run time.")
        allow_key(role, key)
        self.schedules = [self._maintenance_schedule(env, key, table) for table in
                          sorted(f"{live.NAMESPACE}.{name}" for name in live.TABLE_OF_SOURCE.values())]

    def _maintenance_schedule(self, env: EnvConfig, key: kms.IKey, table: str) -> scheduler.CfnSchedule:
        """A maintain message for `table` into its own message group every MAINTENANCE_SCHEDULE; its role may send
        to the queue only (SSE-KMS: the key's data key)."""
        suffix = table.split(".", 1)[1].title().replace("_", "")
        role = scheduler_role(self, f"Maintenance{suffix}Role")
        allow(role, ("sqs:SendMessage",), [arn(self, "sqs", env.live_commit_queue_name)])
        allow_key(role, key)
        schedule = scheduler.CfnSchedule(
            self, f"Maintenance{suffix}", name=maintenance_schedule_name(env, table),
            description=f"Maintain {table}: a message into its group of the live commits queue (decision 0503)",
            schedule_expression=MAINTENANCE_SCHEDULE, schedule_expression_timezone="UTC",
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            target=scheduler.CfnSchedule.TargetProperty(
                arn=self.queue.queue_arn, role_arn=role.role_arn, input=maintain_body(table),
                sqs_parameters=scheduler.CfnSchedule.SqsParametersProperty(message_group_id=table),
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                    maximum_retry_attempts=SCHEDULE_RETRIES,
                    maximum_event_age_in_seconds=MAINTENANCE_MAX_EVENT_AGE.to_seconds())))
        schedule.node.add_dependency(role)  # the role's policy must exist before the first send
        return schedule

