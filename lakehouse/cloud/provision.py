"""Provision the local cloud from the same definitions CDK deploys: names from cdk.json, the same
ASL file with the same substitutions, the same handlers, the same job scripts and arguments.

Resources are created through the AWS APIs (on moto), and the local providers are told which
of our functions and Spark jobs stand behind each name (lakehouse/cloud/moto_patches.py).
"""
from __future__ import annotations

import importlib
import io
import json
import re
import zipfile
from dataclasses import dataclass
from typing import Any, Callable

import boto3

from cdk_app import run_limits
from cdk_app.config import KINESIS_SOURCES, PROJECT, PROJECT_ROOT, EnvConfig
from iceberg_tables.catalogs import ENV_CATALOG_DB, ENV_WAREHOUSE
from iceberg_tables.glue_conf import GLUE_VERSION
from lakehouse.analytics.quality_engine import StandInEngine
from lakehouse.cloud import moto_patches
from lakehouse.lake.layout import LocalLake
from lakehouse.sources import landing
from lakehouse.sources.fx_fixture import FIXTURE_API_KEY
from lambdas.common import environment
from lambdas.contracts import clickstream, lake_layout, live
from lambdas.data_quality.engines import DUCKDB, ENV_ENGINE, use_local_engine
from lambdas.data_quality.thresholds import ENV_THRESHOLDS
from lambdas.live_committer.settings import COMMIT_EVERY, MAX_RECEIVES
from lambdas.live_committer.maintenance import QUEUE_RETENTION

ASL_DIR = PROJECT_ROOT / "step_functions"

_TRUST = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Action": "sts:AssumeRole",
    "Principal": {"Service": ["lambda.amazonaws.com", "glue.amazonaws.com", "states.amazonaws.com"]}}]}


@dataclass(frozen=True)
class Provisioned:
    stream_name: str
    cleaner_function: str
    dlq_url: str
    state_machine_arn: str
    maintenance_state_machine_arn: str
    replay_state_machine_arn: str
    fx_connector_function: str
    file_loader_function: str
    # every Kinesis source (clickstream included): {"stream", "function", "dlq_url"}
    kinesis_sources: dict[str, dict[str, str]]
    alert_topic_arn: str  # the batch pipeline's alerts (failed steps, failed quality checks)
    alert_queue_url: str  # subscribed to the alert topic: the local stand-in for an operator's inbox
    live_queue_url: str  # the live committer's FIFO queue, which the cleaners notify (decision 0500)
    live_committer_function: str


_PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


def render_asl(name: str, substitutions: dict[str, str]) -> str:
    """An ASL file with CDK-style `${Name}` definition substitutions filled in; all must be given.

    (Not string.Template: ASL's own `$$.Execution` paths would be taken for its `$$` escape.)
    """
    text = (ASL_DIR / f"{name}.asl.json").read_text()
    missing = sorted(set(_PLACEHOLDER.findall(text)) - substitutions.keys())
    if missing:
        raise KeyError(f"{name}.asl.json needs definition substitutions {missing}")
    rendered = _PLACEHOLDER.sub(lambda match: substitutions[match.group(1)], text)
    json.loads(rendered)
    return rendered


def _code_zip(function: str) -> bytes:
    """The function's source folder, zipped (it runs in-process; the zip only makes the API call real)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted((PROJECT_ROOT / "lambdas" / function).rglob("*.py")):
            archive.write(path, str(path.relative_to(PROJECT_ROOT)))
    return buffer.getvalue()


def _handler(function: str, function_name: str) -> Callable[[dict[str, Any], Any], Any]:
    with moto_patches.function_output(function_name):
        return importlib.import_module(f"lambdas.{function}.handler").handler


def _create_function(role: str, folder: str, name: str, variables: dict[str, str]) -> str:
    """A function whose invokes run lambdas/<folder>/handler.py in-process; returns its ARN.
    Its environment: `variables` and Powertools' names, as CDK's PythonFunction sets them."""
    variables = {**environment.powertools(folder, PROJECT), **variables}
    arn = boto3.client("lambda").create_function(
        FunctionName=name, Runtime="python3.12", Role=role, Handler=f"lambdas.{folder}.handler.handler",
        Code={"ZipFile": _code_zip(folder)}, Environment={"Variables": variables}, Timeout=900,
    )["FunctionArn"]
    moto_patches.LAMBDA_HANDLERS[name] = _handler(folder, name)
    return arn


def _spark_job(job: str, lake: LocalLake) -> Callable[[dict[str, str]], Any]:
    def run(args: dict[str, str]) -> Any:
        from lakehouse.lake.spark import get_spark  # Spark starts only when a job first runs
        module = importlib.import_module(f"glue_jobs.{job}")
        return module.run(get_spark(lake.warehouse, lake.catalog_db), args)
    return run


def _alerts(env: EnvConfig) -> tuple[str, str]:
    """The alert topic and a queue subscribed to it, where a published alert can be read; (topic ARN, queue URL)."""
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic = sns.create_topic(Name=env.alert_topic_name)["TopicArn"]
    queue = sqs.create_queue(QueueName=f"{env.alert_topic_name}-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    return topic, queue


def provision(env: EnvConfig, lake: LocalLake, fx_api_base_url: str) -> Provisioned:
    """Create every local resource of the pipeline and register the code behind it.

    `fx_api_base_url` replaces cdk.json's URL: locally the FX API is a fixture server on a free port.
    """
    iam, kinesis, sqs = boto3.client("iam"), boto3.client("kinesis"), boto3.client("sqs")
    glue, sfn = boto3.client("glue"), boto3.client("stepfunctions")

    role = iam.create_role(RoleName=env.resource_name("local-role"),
                           AssumeRolePolicyDocument=json.dumps(_TRUST))["Role"]["Arn"]

    sources: dict[str, dict[str, str]] = {}
    for source in KINESIS_SOURCES:
        stream, function = env.stream_for(source), env.cleaner_for(source)
        kinesis.create_stream(StreamName=stream, ShardCount=max(1, env.kinesis_shards))
        kinesis.get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig={"Delay": 0.1})
        dlq = sqs.create_queue(QueueName=env.cleaner_dead_letter_queue_for(source))["QueueUrl"]
        sources[source] = {"stream": stream, "function": function, "dlq_url": dlq}
    fx_secret = boto3.client("secretsmanager").create_secret(
        Name=env.resource_name("fx-api-key"), SecretString=json.dumps({"api_key": FIXTURE_API_KEY}))["Name"]

    live_queue = _live_queue(env)
    for source, names in sources.items():  # one cleaner instance per Kinesis source, as in CDK
        # no PII key secret: offline, the cleaner uses the fixed local key
        _create_function(role, "cleaner", names["function"], environment.cleaner(
            lake.raw_uri, lake.staging_uri, source, live_queue_url=live_queue if live.live_table(source) else None))
    local_catalog = {ENV_WAREHOUSE: str(lake.warehouse), ENV_CATALOG_DB: str(lake.catalog_db)}
    use_local_engine(StandInEngine)  # what the data-quality function's QUALITY_ENGINE=duckdb runs on
    function_env = {
        "record_run": local_catalog,
        "data_quality": {**local_catalog, ENV_ENGINE: DUCKDB, ENV_THRESHOLDS: env.quality.to_json()},
        "api_connector": environment.api_connector(fx_api_base_url, fx_secret, lake.raw_uri, lake.staging_uri),
        "file_loader": landing.function_environment(lake),
        "run_lease": {},
        # its cadence (decision 0504), 0 locally: every delivery commits
        "live_committer": {**local_catalog, environment.LIVE_QUEUE_URL: live_queue,
                           COMMIT_EVERY: str(env.live_commit_every_seconds)},
    }
    arns = {function: _create_function(role, function, env.function_name(function), variables)
            for function, variables in function_env.items()}

    for job, inputs in lake_layout.glue_job_inputs(lake.staging_uri, env.snapshot_retention_hours).items():
        name = env.glue_job_name(job)
        glue.create_job(
            Name=name, Role=role, GlueVersion=GLUE_VERSION, WorkerType=env.glue_worker_type,
            NumberOfWorkers=env.glue_workers, Timeout=env.glue_timeout_minutes,
            Command={"Name": "glueetl", "ScriptLocation": str(PROJECT_ROOT / "glue_jobs" / f"{job}.py"),
                     "PythonVersion": "3"},
            DefaultArguments={f"--{key}": value for key, value in inputs.items()},
        )
        moto_patches.GLUE_JOBS[name] = _spark_job(job, lake)

    lock_table = env.resource_name("run-lock")
    boto3.client("dynamodb").create_table(
        TableName=lock_table, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "lock", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "lock", "AttributeType": "S"}])
    alert_topic, alert_queue = _alerts(env)
    definition = render_asl("batch_pipeline", {
        "RunLockTableName": lock_table,
        "SilverMergeJobName": env.glue_job_name("silver_merge"),
        "GoldBuildJobName": env.glue_job_name("gold_build"),
        "DataQualityFunctionArn": arns["data_quality"],
        "AlertTopicArn": alert_topic,
        "RecordRunFunctionArn": arns["record_run"],
        "RunLeaseFunctionArn": arns["run_lease"],
        **run_limits.substitutions(env),
    })
    state_machine = sfn.create_state_machine(name=env.state_machine_name, definition=definition,
                                             roleArn=role)["stateMachineArn"]
    maintenance = sfn.create_state_machine(
        name=env.resource_name("maintenance"), roleArn=role,
        definition=render_asl("maintenance", {"MaintenanceJobName": env.glue_job_name("maintenance")}),
    )["stateMachineArn"]
    replay = _replay_workflow(env, role, lake, state_machine)
    clicks = sources[clickstream.SOURCE]
    return Provisioned(stream_name=clicks["stream"], cleaner_function=clicks["function"],
                       fx_connector_function=env.function_name("api_connector"),
                       file_loader_function=env.function_name("file_loader"), kinesis_sources=sources,
                       dlq_url=clicks["dlq_url"], state_machine_arn=state_machine,
                       maintenance_state_machine_arn=maintenance, replay_state_machine_arn=replay,
                       alert_topic_arn=alert_topic, alert_queue_url=alert_queue, live_queue_url=live_queue,
                       live_committer_function=env.function_name("live_committer"))


def _live_queue(env: EnvConfig) -> str:
    """The live committer's FIFO queue, with its FIFO dead-letter queue after MAX_RECEIVES receives (as CDK's)."""
    sqs = boto3.client("sqs")
    fifo = {"FifoQueue": "true", "ContentBasedDeduplication": "false"}
    dlq = sqs.create_queue(QueueName=env.live_commit_queue_name.replace(".fifo", "-dlq.fifo"), Attributes=fifo)
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq["QueueUrl"], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    # as CDK's: deduplicated by content for the maintain messages, kept less long than the live tables' snapshots
    return sqs.create_queue(QueueName=env.live_commit_queue_name, Attributes={
        **fifo, "ContentBasedDeduplication": "true",
        "MessageRetentionPeriod": str(int(QUEUE_RETENTION.total_seconds())),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVES)}),
    })["QueueUrl"]


def _replay_workflow(env: EnvConfig, role: str, lake: LocalLake, batch_pipeline_arn: str) -> str:
    """The replay function (as CDK's ReplayWorkflow configures it) and its state machine; returns its ARN."""
    function = _create_function(role, "replay", env.function_name("replay"),
                                environment.replay(lake.raw_uri, lake.staging_uri))
    definition = render_asl("replay", {"ReplayFunctionArn": function, "BatchPipelineArn": batch_pipeline_arn})
    return boto3.client("stepfunctions").create_state_machine(
        name=env.resource_name("replay"), definition=definition, roleArn=role)["stateMachineArn"]
