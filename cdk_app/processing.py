"""Processing stack: the batch pipeline (Step Functions over the Glue Spark jobs, the data_quality,
record_run and run_lease functions; its run lock, alert topic and schedule), and the daily table
maintenance (its job, state machine and schedule: cdk_app/maintenance.py)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from cdk_app.config import EnvConfig
from cdk_app import maintenance, run_limits
from cdk_app.alarms import Alarms, alarm, encrypted_topic, failed_executions
from cdk_app.schedules import StateMachineSchedule
from cdk_app.state_machines import logged_state_machine
from cdk_app.data_quality import DataQuality
from cdk_app.glue_jobs import GlueJobs
from cdk_app.lake import warehouse_prefix
from cdk_app.grants import ENCRYPT_DECRYPT, allow, allow_key, allow_list, arn, catalog_arns, objects_arn
from cdk_app.python_function import PythonFunction
from iceberg_tables.catalogs import ENV_WAREHOUSE_URI
from lambdas.contracts.lake_layout import BATCH_SOURCES, glue_job_inputs, staged_prefixes

ASL_FILE = run_limits.BATCH_PIPELINE_ASL
BATCH_JOBS = ("silver_merge", "gold_build")  # the batch pipeline's; maintenance has its own machine
OPS_DATABASE = "ops"


class ProcessingStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        env_config: EnvConfig,
        key: kms.IKey,
        bucket_names: Mapping[str, str],
        databases: Sequence[str],
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        env = env_config
        staging_uri = f"s3://{bucket_names['staging']}"
        self.glue = GlueJobs(
            self, "Jobs", env=env, key=key, bucket_names=bucket_names, databases=databases,
            job_arguments=glue_job_inputs(staging_uri, env.snapshot_retention_hours),  # maintenance's too
            # silver_merge reads every source's staging batches
            staging_read_prefixes=[prefix for source in BATCH_SOURCES for prefix in staged_prefixes(source)],
        )

        warehouse = bucket_names["warehouse"]
        self.record_run = PythonFunction(
            self, "RecordRun", env=env, folder="record_run", key=key,
            # pyiceberg-core computes the day() partition of the rows it appends
            extra_sources=["iceberg_tables"], bundled=["pyiceberg", "pyiceberg-core"], with_pyarrow=True,
            timeout=Duration.minutes(2), memory_mb=1024,
            environment={ENV_WAREHOUSE_URI: f"s3://{warehouse}"},
        )
        role = self.record_run.role
        allow(role, ("glue:GetDatabase", "glue:GetTable", "glue:UpdateTable"), catalog_arns(self, [OPS_DATABASE]),
              wildcard_reason="record_run appends to the ops tables (pipeline_runs), defined in iceberg_tables/.")
        allow_list(role, warehouse, [warehouse_prefix(OPS_DATABASE)])
        allow(role, ("s3:GetObject", "s3:PutObject"), [objects_arn(self, warehouse, warehouse_prefix(OPS_DATABASE))],
              wildcard_reason="Iceberg appends write new data and metadata files, named at run time, under "
                              "the ops tables' folder.")
        allow_key(role, key)

        # The batch pipeline's run lock: one item, put on condition by the ASL's TakeRunLock, deleted by its
        # last states; so two runs never overlap (a guard, not luck). Its lease (run_lease) ends a stale one.
        # with_pyarrow: the lambdas/common it ships with holds storage.py (run_lease needs the stdlib only).
        self.run_lease = PythonFunction(self, "RunLease", env=env, folder="run_lease", key=key, environment={},
                                        with_pyarrow=True, timeout=Duration.seconds(10), memory_mb=128)
        self.run_lock = dynamodb.Table(
            self, "RunLock", table_name=env.resource_name("run-lock"),
            partition_key=dynamodb.Attribute(name="lock", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED, encryption_key=key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True),
            removal_policy=RemovalPolicy.DESTROY,  # holds one transient item, never data
        )
        self.quality = DataQuality(self, "DataQuality", env=env, key=key, bucket_names=bucket_names)
        # failed steps and failed checks, published by the state machine (subscribe people to it)
        self.alerts = encrypted_topic(self, "PipelineAlerts", env=env, name=env.alert_topic_name, key=key)
        self.state_machine = self._state_machine(
            env, key, ids=("BatchPipeline", "PipelineRole", "PipelineLogs"), name=env.state_machine_name,
            asl_file=ASL_FILE, jobs=BATCH_JOBS,
            functions=[self.record_run.function, self.quality.function.function, self.run_lease.function],
            substitutions={
                "RunLockTableName": self.run_lock.table_name,
                "RunLeaseFunctionArn": self.run_lease.function.function_arn,
                **run_limits.substitutions(env),
                "SilverMergeJobName": env.glue_job_name("silver_merge"),
                "GoldBuildJobName": env.glue_job_name("gold_build"),
                "DataQualityFunctionArn": self.quality.function.function.function_arn,
                "AlertTopicArn": self.alerts.topic_arn,
                "RecordRunFunctionArn": self.record_run.function.function_arn,
            })
        pipeline_role = self.state_machine.role
        pipeline_role.add_to_principal_policy(iam.PolicyStatement(
            actions=["dynamodb:PutItem", "dynamodb:DeleteItem"], resources=[self.run_lock.table_arn]))
        pipeline_role.add_to_principal_policy(iam.PolicyStatement(
            actions=["sns:Publish"], resources=[self.alerts.topic_arn]))
        pipeline_role.add_to_principal_policy(iam.PolicyStatement(  # the topic is SSE-KMS
            actions=list(ENCRYPT_DECRYPT), resources=[key.key_arn]))
        # Runs the ASL cannot alert for itself: stopped by hand, timed out, ended by States.Runtime. A run
        # refused by the run lock succeeds as skipped (recorded, no alert), so it is not counted.
        self.failed_runs = alarm(
            self, "FailedRuns", name=env.resource_name("batch-pipeline-failed-runs"), topic=self.alerts, threshold=1,
            description="a batch pipeline run ended FAILED, ABORTED or TIMED_OUT: docs/runbooks/failed-batch-run.md",
            metric=failed_executions(self.state_machine, "runs that did not succeed"))
        self.batch_schedule = StateMachineSchedule(
            self, "BatchSchedule", env=env, key=key, component="batch-pipeline", expression=env.batch_schedule,
            description="Merge the new staging batches into silver, rebuild gold, check data quality",
            state_machine=self.state_machine)
        self.maintenance = self._state_machine(
            env, key, ids=("Maintenance", "MaintenanceRole", "MaintenanceLogs"),
            name=env.resource_name(maintenance.JOB), asl_file=maintenance.ASL_FILE, jobs=[maintenance.JOB],
            substitutions={"MaintenanceJobName": env.glue_job_name(maintenance.JOB)})
        self.maintenance_schedule = StateMachineSchedule(
            self, "MaintenanceSchedule", env=env, key=key, component=maintenance.JOB,
            expression=maintenance.SCHEDULE, state_machine=self.maintenance,
            description="Maintain every lake table: expire snapshots, compact, rewrite manifests, remove orphans")
        # the batch side's other alarms, to the same topic (decision 0236)
        self.alarms = Alarms(self, "Alarms", env=env, key=key, topic=self.alerts)
        self.alarms.failed_runs(self.maintenance, maintenance.JOB, "docs/infrastructure.md, Table maintenance")
        self.alarms.heartbeat(self.state_machine, "batch-pipeline", env.batch_heartbeat_hours)
        for schedule in (self.batch_schedule, self.maintenance_schedule):
            self.alarms.dead_letters(schedule.dead_letters, schedule.component)
        self.alarms.every_throttle(self)

    def _state_machine(self, env: EnvConfig, key: kms.IKey, *, ids: tuple[str, str, str], name: str,
                       asl_file: Path, jobs: Sequence[str], substitutions: Mapping[str, str],
                       functions: Sequence[lambda_.IFunction] = ()) -> sfn.StateMachine:
        """A logged state machine (cdk_app/state_machines.py) whose role may run exactly `jobs` and invoke
        exactly `functions`. `ids`: the machine's, its role's, its logs'."""
        machine_id, role_id, logs_id = ids
        role = iam.Role(self, role_id, assumed_by=iam.ServicePrincipal("states.amazonaws.com"))
        allow(role, ("glue:StartJobRun", "glue:GetJobRun", "glue:GetJobRuns", "glue:BatchStopJobRun"),
              [arn(self, "glue", f"job/{env.glue_job_name(job)}") for job in jobs])
        for function in functions:
            role.add_to_principal_policy(iam.PolicyStatement(
                actions=["lambda:InvokeFunction"], resources=[function.function_arn]))
        machine = logged_state_machine(self, ids=(machine_id, logs_id), env=env, key=key, name=name,
                                       asl_file=asl_file, substitutions=substitutions, role=role)
        for job in jobs:
            machine.node.add_dependency(self.glue.jobs[job])
        return machine
