"""Processing stack: Glue 5.1 jobs per environment, their security and logs, the state machines' wiring, the
batch pipeline's alerts and schedule, and the daily maintenance schedule."""
from __future__ import annotations

import json
import re

import pytest
from aws_cdk.assertions import Template

from cdk_app.config import PROJECT_ROOT, load
from cdk_app.lake import DATABASES
from cdk_app.secure_bucket import bucket_name
from tests.infra.helpers import as_list, flatten_arn, grants, logical_id, only, policy_statements, resources

JOBS = ("silver_merge", "gold_build")  # the batch pipeline's
# Glue's own job parameters that the jobs set, each one valid and in effect on Glue 5.x (Glue's "Using job
# parameters in AWS Glue jobs"; every 5.0 parameter exists in 5.1). The jobs' own inputs are snake_case.
GLUE_PARAMETERS = {"--datalake-formats", "--conf", "--extra-py-files", "--job-language", "--job-bookmark-option",
                   "--enable-metrics", "--enable-observability-metrics"}


@pytest.fixture(scope="module", params=["dev", "prod"])
def processing(request, synthesized) -> tuple[str, Template]:
    env = request.param
    return env, Template.from_stack(synthesized(env).stage.processing)


def _jobs(template: Template) -> dict[str, dict]:
    return {r["Properties"]["Name"]: r["Properties"] for r in resources(template, "AWS::Glue::Job").values()}


def test_glue_jobs_follow_config(processing) -> None:
    env, template = processing
    config = load(env)
    jobs = _jobs(template)
    assert set(jobs) == {config.glue_job_name(j) for j in (*JOBS, "maintenance")}
    for name, job in jobs.items():
        assert job["GlueVersion"] == "5.1"  # Iceberg 1.10, as the local tests run it (decision 0220)
        assert job["WorkerType"] == config.glue_worker_type
        assert job["NumberOfWorkers"] == config.glue_workers
        assert job["Timeout"] == config.glue_timeout_minutes
        assert job["Command"]["Name"] == "glueetl" and job["Command"]["ScriptLocation"].endswith(".py")
        args = job["DefaultArguments"]
        assert args["--datalake-formats"] == "iceberg"
        conf = dict(pair.split("=", 1) for pair in args["--conf"].split(" --conf "))
        assert conf["spark.sql.catalog.lake.catalog-impl"] == "org.apache.iceberg.aws.glue.GlueCatalog"
        assert conf["spark.sql.catalog.lake.warehouse"] == f"s3://{bucket_name(config, 'warehouse')}"
        # Glue 5.1 reads s3:// paths (the staging batches) with S3A, which assumes us-east-2 unless told
        assert conf["spark.hadoop.fs.s3a.endpoint.region"] == config.region
        assert args["--extra-py-files"].endswith(".zip")


def test_glue_jobs_pass_no_parameter_glue_5_ignores(processing) -> None:
    """`--enable-continuous-cloudwatch-log` and the `--continuous-log-*` options configure Glue 4.0's continuous
    logging; Glue 5.x logs every job in real time and takes none of them."""
    _, template = processing
    for name, job in _jobs(template).items():
        glue_own = {k for k in job["DefaultArguments"] if not re.fullmatch(r"--[a-z0-9_]+", k)}
        assert glue_own <= GLUE_PARAMETERS, (name, glue_own - GLUE_PARAMETERS)


def test_silver_merge_reads_every_sources_staging_prefixes_and_no_more(processing) -> None:
    env, template = processing
    config = load(env)
    staging = bucket_name(config, "staging")
    args = _jobs(template)[config.glue_job_name("silver_merge")]["DefaultArguments"]
    assert "--clean_path" not in args and "--manifest_path" not in args  # the manifests name their files
    # one manifest prefix and one manifest index prefix per source whose batches silver_merge merges
    assert {k: v for k, v in args.items() if k.endswith(("_manifest_path", "_manifest_index_path"))} == {
        f"--{source}_{argument}": f"s3://{staging}/{prefix}/{source}"
        for source in ("clickstream", "orders", "products", "fx_rates")
        for argument, prefix in (("manifest_path", "manifests"), ("manifest_index_path", "manifest-index"))}
    reads = {flatten_arn(r) for s in policy_statements(template, "JobsRole")
             if as_list(s["Action"]) == ["s3:GetObject"] for r in as_list(s["Resource"])}
    prefixes = ("clean", "quarantine", "manifests", "manifest-index")  # quarantine: loaded into ops.quarantine
    staged = {r for r in reads if r.startswith(f"arn:aws:s3:::{staging}/")}
    assert staged == {f"arn:aws:s3:::{staging}/{p}/{source}/*" for p in prefixes
                      for source in ("clickstream", "orders", "products", "fx_rates")}


def test_glue_security_configuration_encrypts_everything(processing) -> None:
    _, template = processing
    config_id = next(iter(template.find_resources("AWS::Glue::SecurityConfiguration")))
    encryption = only(template, "AWS::Glue::SecurityConfiguration")["EncryptionConfiguration"]
    assert encryption["S3Encryptions"][0]["S3EncryptionMode"] == "SSE-KMS"
    assert encryption["CloudWatchEncryption"]["CloudWatchEncryptionMode"] == "SSE-KMS"
    assert encryption["JobBookmarksEncryption"]["JobBookmarksEncryptionMode"] == "CSE-KMS"
    for job in _jobs(template).values():
        assert job["SecurityConfiguration"] == {"Ref": config_id}


def _glue_role(template: Template) -> dict:
    [role] = [r["Properties"] for k, r in resources(template, "AWS::IAM::Role").items() if k.startswith("JobsRole")]
    return role


def test_glue_role_may_use_the_lake_key_for_glues_encryption_and_no_other_key(processing) -> None:
    """The security configuration's SSE-KMS writes to S3 need Decrypt, Encrypt and GenerateDataKey, its CSE-KMS job
    bookmarks Decrypt and Encrypt (Glue's "Setting up encryption"): on the key it encrypts with, nothing more."""
    _, template = processing
    encryption = only(template, "AWS::Glue::SecurityConfiguration")["EncryptionConfiguration"]
    keys = {json.dumps(k) for k in (encryption["S3Encryptions"][0]["KmsKeyArn"],
                                   encryption["CloudWatchEncryption"]["KmsKeyArn"],
                                   encryption["JobBookmarksEncryption"]["KmsKeyArn"])}
    assert len(keys) == 1 and "Fn::ImportValue" in next(iter(keys))  # the lake key, from the lake stack
    statements = [s for s in policy_statements(template, "JobsRole")
                  if any(a.startswith("kms:") for a in as_list(s["Action"]))]
    assert {json.dumps(r) for s in statements for r in as_list(s["Resource"])} == keys
    assert sorted(a for s in statements for a in as_list(s["Action"])) == [
        "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]


def test_glue_logs_go_to_log_groups_cdk_owns_with_a_retention_and_the_lake_key(processing) -> None:
    """With CloudWatch encryption in its security configuration, a Glue 5.x job writes to
    `/aws-glue/jobs/<security configuration>-role/<role name>/error|output` (Glue's "Logging for AWS Glue jobs").
    Those exist before any job does (else Glue makes them, kept forever), and the role may write nowhere else."""
    env, template = processing
    config = load(env)
    role = _glue_role(template)
    security = only(template, "AWS::Glue::SecurityConfiguration")
    prefix = f"/aws-glue/jobs/{security['Name']}-role/{role['RoleName']}"
    groups = {r["Properties"]["LogGroupName"]: (k, r) for k, r in resources(template, "AWS::Logs::LogGroup").items()
              if r["Properties"]["LogGroupName"].startswith("/aws-glue/")}
    assert set(groups) == {f"{prefix}/error", f"{prefix}/output"}
    key = security["EncryptionConfiguration"]["CloudWatchEncryption"]["KmsKeyArn"]
    jobs = list(resources(template, "AWS::Glue::Job").values())
    for group_id, group in groups.values():
        assert group["Properties"]["RetentionInDays"] == 90
        assert group["Properties"]["KmsKeyId"] == key
        assert group["DeletionPolicy"] == ("Retain" if config.removal_policy == "retain" else "Delete")
        assert all(group_id in job["DependsOn"] for job in jobs)
    logs = grants(policy_statements(template, "JobsRole"), "logs")
    arn = f"arn:aws:logs:{config.region}:{config.account}:log-group"
    assert logs == {f"{arn}:{name}{suffix}": ["logs:AssociateKmsKey", "logs:CreateLogGroup", "logs:CreateLogStream",
                                              "logs:PutLogEvents"] for name in groups for suffix in ("", ":*")}


def _machine(template: Template, name: str) -> dict:
    [machine] = [m["Properties"] for m in resources(template, "AWS::StepFunctions::StateMachine").values()
                 if m["Properties"]["StateMachineName"] == name]
    return machine


def _glue_and_invoke(template: Template, role_prefix: str) -> tuple[set[str], list]:
    """(Glue resources, Lambda resources) the role whose logical id starts with the prefix may use."""
    glue, invoke = set(), []
    for statement in policy_statements(template, role_prefix):
        actions = as_list(statement["Action"])
        if any(a.startswith("glue:") for a in actions):
            glue |= {flatten_arn(r) for r in as_list(statement["Resource"])}
        if "lambda:InvokeFunction" in actions:
            invoke += as_list(statement["Resource"])
    return glue, invoke


def test_state_machine_is_the_asl_file_with_real_names(processing) -> None:
    env, template = processing
    config = load(env)
    machine = _machine(template, config.state_machine_name)
    record_run = next(k for k, v in resources(template, "AWS::Lambda::Function").items()
                      if v["Properties"]["FunctionName"] == config.function_name("record_run"))
    assert machine["StateMachineName"] == config.state_machine_name
    assert json.loads(machine["DefinitionString"]) == json.loads(
        (PROJECT_ROOT / "step_functions" / "batch_pipeline.asl.json").read_text())
    job_timeout = _jobs(template)[config.glue_job_name("silver_merge")]["Timeout"] * 60
    assert machine["DefinitionSubstitutions"] == {
        "SilverMergeJobName": config.glue_job_name("silver_merge"),
        "GoldBuildJobName": config.glue_job_name("gold_build"),
        "DataQualityFunctionArn": {"Fn::GetAtt": [_function(template, config, "data_quality"), "Arn"]},
        "AlertTopicArn": {"Ref": _alert_topic(template, config)},
        "RecordRunFunctionArn": {"Fn::GetAtt": [record_run, "Arn"]},
        "RunLeaseFunctionArn": {"Fn::GetAtt": [_function(template, config, "run_lease"), "Arn"]},
        "RunLockTableName": {"Ref": _run_lock(template, config)},
        # the Glue tasks time out with their job; the lock's lease outlasts the run and a job it started last
        "GlueJobTimeoutSeconds": str(job_timeout),
        "RunLeaseSeconds": str(_asl()["TimeoutSeconds"] + job_timeout),
    }
    placeholders = {p.split("}")[0] for p in machine["DefinitionString"].split("${")[1:]}
    assert placeholders == set(machine["DefinitionSubstitutions"])
    assert machine["LoggingConfiguration"]["Level"] == "ALL"
    assert machine["TracingConfiguration"] == {"Enabled": True}


def _run_lock(template, config) -> str:  # noqa: ANN001 - assertions Template and EnvConfig
    [(logical_id, table)] = resources(template, "AWS::DynamoDB::Table").items()
    assert table["Properties"]["TableName"] == config.resource_name("run-lock")
    return logical_id


def test_run_lock_is_encrypted_and_only_the_batch_pipeline_may_take_it(processing) -> None:
    env, template = processing
    config = load(env)
    lock = _run_lock(template, config)
    table = resources(template, "AWS::DynamoDB::Table")[lock]["Properties"]
    assert table["KeySchema"] == [{"AttributeName": "lock", "KeyType": "HASH"}]
    assert table["SSESpecification"]["SSEEnabled"] is True and table["SSESpecification"]["SSEType"] == "KMS"
    holders = {role for role in resources(template, "AWS::IAM::Role")
               for s in policy_statements(template, role)
               if any(a.startswith("dynamodb:") for a in as_list(s["Action"]))}
    assert holders == {next(r for r in resources(template, "AWS::IAM::Role") if r.startswith("PipelineRole"))}
    statement = next(s for s in policy_statements(template, "PipelineRole")
                     if any(a.startswith("dynamodb:") for a in as_list(s["Action"])))
    assert sorted(as_list(statement["Action"])) == ["dynamodb:DeleteItem", "dynamodb:PutItem"]


def _function(template: Template, config, folder: str) -> str:  # noqa: ANN001 - EnvConfig
    return logical_id(template, "AWS::Lambda::Function", FunctionName=config.function_name(folder))


def _alert_topic(template: Template, config) -> str:  # noqa: ANN001 - EnvConfig
    return logical_id(template, "AWS::SNS::Topic", TopicName=config.alert_topic_name)


def test_state_machine_may_run_exactly_those_jobs_and_functions(processing) -> None:
    env, template = processing
    config = load(env)
    glue, invoke = _glue_and_invoke(template, "PipelineRole")
    prefix = f"arn:aws:glue:{config.region}:{config.account}:job"
    assert glue == {f"{prefix}/{config.glue_job_name(j)}" for j in JOBS}
    assert sorted(i["Fn::GetAtt"][0] for i in invoke) == sorted(
        _function(template, config, f) for f in ("record_run", "data_quality", "run_lease"))


def test_alerts_go_to_an_encrypted_topic_only_the_batch_pipeline_publishes_to(processing) -> None:
    env, template = processing
    config = load(env)
    topic_id = _alert_topic(template, config)
    topic = resources(template, "AWS::SNS::Topic")[topic_id]["Properties"]
    assert "Fn::ImportValue" in json.dumps(topic["KmsMasterKeyId"])  # the lake key, from the lake stack
    [policy] = [p["Properties"] for p in resources(template, "AWS::SNS::TopicPolicy").values()
                if {"Ref": topic_id} in p["Properties"]["Topics"]]
    deny, alarms = policy["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    # and the environment's CloudWatch alarms (the failed-runs alarm below), from this account only
    assert (alarms["Effect"], alarms["Principal"], alarms["Action"]) == (
        "Allow", {"Service": "cloudwatch.amazonaws.com"}, "sns:Publish")
    assert flatten_arn(alarms["Condition"]["ArnLike"]["aws:SourceArn"]) == \
        f"arn:aws:cloudwatch:{config.region}:{config.account}:alarm:lakehouse-{env}-*"
    assert alarms["Condition"]["StringEquals"] == {"aws:SourceAccount": config.account}
    publishers = {role for role in resources(template, "AWS::IAM::Role")
                  for s in policy_statements(template, role) if "sns:Publish" in as_list(s["Action"])}
    assert [p.startswith("PipelineRole") for p in publishers] == [True]
    [statement] = [s for s in policy_statements(template, "PipelineRole") if "sns:Publish" in as_list(s["Action"])]
    assert statement["Resource"] == {"Ref": topic_id}
    asl = (PROJECT_ROOT / "step_functions" / "batch_pipeline.asl.json").read_text()
    publish = [name for name, state in json.loads(asl)["States"].items()
               if state.get("Resource") == "arn:aws:states:::sns:publish"]
    assert publish == ["PublishAlert"]


def test_a_run_ends_within_the_machines_timeout_even_if_each_job_and_function_takes_its_whole_timeout(
        processing) -> None:
    """The state machine's TimeoutSeconds, from which the run lock's lease is derived: every step once at its
    limit fits, so a run times out only when retries pile up (and is then a failed run, alarmed)."""
    env, template = processing
    config = load(env)
    functions = {f["Properties"]["FunctionName"]: f["Properties"].get("Timeout", 3)
                 for f in resources(template, "AWS::Lambda::Function").values()}
    steps = 2 * config.glue_timeout_minutes * 60 + sum(
        functions[config.function_name(f)] for f in ("run_lease", "data_quality", "record_run"))
    assert steps < _asl()["TimeoutSeconds"]


def test_a_run_that_did_not_succeed_alarms_to_the_alert_topic(processing) -> None:
    """Also the runs the ASL cannot alert for: stopped by hand, timed out, ended by States.Runtime. (A run refused
    by the run lock succeeds as skipped: not counted.)"""
    env, template = processing
    config = load(env)
    machine = logical_id(template, "AWS::StepFunctions::StateMachine", StateMachineName=config.state_machine_name)
    [alarm] = [a["Properties"] for a in resources(template, "AWS::CloudWatch::Alarm").values()
               if a["Properties"]["AlarmName"] == config.resource_name("batch-pipeline-failed-runs")]
    assert alarm["AlarmActions"] == [{"Ref": _alert_topic(template, config)}]
    assert (alarm["Threshold"], alarm["ComparisonOperator"], alarm["TreatMissingData"]) == (
        1, "GreaterThanOrEqualToThreshold", "notBreaching")
    [expression] = [m for m in alarm["Metrics"] if "Expression" in m]
    assert expression["Expression"] == "failed + aborted + timed_out"
    metrics = {m["Id"]: m["MetricStat"] for m in alarm["Metrics"] if "MetricStat" in m}
    assert {i: (m["Metric"]["Namespace"], m["Metric"]["MetricName"], m["Stat"]) for i, m in metrics.items()} == {
        "failed": ("AWS/States", "ExecutionsFailed", "Sum"), "aborted": ("AWS/States", "ExecutionsAborted", "Sum"),
        "timed_out": ("AWS/States", "ExecutionsTimedOut", "Sum")}
    assert all(m["Metric"]["Dimensions"] == [{"Name": "StateMachineArn", "Value": {"Ref": machine}}]
               for m in metrics.values())


def test_every_catch_of_the_batch_pipeline_alerts_before_it_records_the_failure() -> None:
    states = json.loads((PROJECT_ROOT / "step_functions" / "batch_pipeline.asl.json").read_text())["States"]
    catches = {name: [c["Next"] for c in state.get("Catch", [])] for name, state in states.items()}
    steps = ("SilverMerge", "GoldBuild", "Quality", "RecordSuccess")
    assert {name: catches[name] for name in steps} == {name: ["PublishAlert"] for name in steps}
    assert states["QualityFailed"]["Next"] == "PublishAlert" and states["PublishAlert"]["Next"] == "RecordFailure"
    assert states["QualityCheckFailed"] == {"Type": "Fail", "Error": "QualityCheckFailed", "CausePath": "$.error.Cause"}
    assert states["RecordFailure"]["Next"] == states["RecordFailure"]["Catch"][0]["Next"] == "ReleaseRunLockAfterFailure"


def _asl() -> dict:
    return json.loads((PROJECT_ROOT / "step_functions" / "batch_pipeline.asl.json").read_text())


def _successors(state: dict) -> list[str]:
    """The states a state can hand over to: Next, its Catch targets, a Choice's rules and Default."""
    rules = [*state.get("Catch", []), *state.get("Choices", [])]
    return [*([state["Next"]] if "Next" in state else []), *(r["Next"] for r in rules),
            *([state["Default"]] if "Default" in state else [])]


def _reachable(states: dict[str, dict], start: str, *, through_none_of: set[str] = frozenset()) -> set[str]:
    """The states reachable from `start` (itself included) on paths that enter none of `through_none_of`."""
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name not in seen and name not in through_none_of:
            seen.add(name)
            todo += _successors(states[name])
    return seen


def _ends(states: dict[str, dict], names: set[str]) -> set[str]:
    return {n for n in names if states[n]["Type"] in ("Succeed", "Fail") or states[n].get("End")}


def test_every_path_that_took_the_run_lock_releases_it_and_only_if_it_is_still_this_runs() -> None:
    states = _asl()["States"]
    releases = {n for n, s in states.items() if s.get("Resource") == "arn:aws:states:::dynamodb:deleteItem"}
    assert releases == {"ReleaseRunLock", "ReleaseRunLockAfterFailure"}
    held = _reachable(states, states["TakeRunLock"]["Next"], through_none_of=releases)
    assert _ends(states, held) == set(), "a path ends while it still holds the lock"
    assert {n for n in held if releases & set(_successors(states[n]))} == {"RecordSuccess", "RecordFailure"}
    for name in releases:  # a late release never deletes another run's lock
        parameters = states[name]["Parameters"]
        assert parameters["ConditionExpression"] == "run_id = :me"
        assert parameters["ExpressionAttributeValues"] == {":me": {"S.$": "$$.Execution.Name"}}


def test_a_run_refused_by_the_lock_is_recorded_as_skipped_and_succeeds_without_an_alert() -> None:
    """So a schedule tick during a long run pages nobody, and the failed-runs alarm counts only real failures."""
    states = _asl()["States"]
    [refused] = [c["Next"] for c in states["TakeRunLock"]["Catch"]
                 if c["ErrorEquals"] == ["DynamoDB.ConditionalCheckFailedException"]]
    path = _reachable(states, refused)
    assert {states[n]["Type"] for n in _ends(states, path)} == {"Succeed"}
    assert not any(states[n].get("Resource") == "arn:aws:states:::sns:publish" for n in path)
    recorded = [states[n]["Parameters"]["Payload"] for n in path
                if states[n].get("Parameters", {}).get("FunctionName") == "${RecordRunFunctionArn}"]
    assert [(p["status"], p["steps"]["error"]["Error"]) for p in recorded] == [("SKIPPED", "BatchAlreadyRunning")]


def test_a_glue_task_times_out_with_its_job_and_a_timeout_is_not_retried() -> None:
    """Glue reports its own job timeout as States.TaskFailed, which the retrier matches. The task's own timeout,
    equal to the job's, fires first (its clock starts at StartJobRun) as States.Timeout, which no retrier may
    match: a job that timed out would time out again, holding the run lock three times as long."""
    asl = _asl()
    states = asl["States"]
    glue = {n: s for n, s in states.items() if s.get("Resource") == "arn:aws:states:::glue:startJobRun.sync"}
    assert set(glue) == {"SilverMerge", "GoldBuild"}
    [limits] = [n for n, s in states.items() if s.get("ResultPath") == "$.limits"]  # set before any task runs
    assert limits == asl["StartAt"] and states[limits]["Type"] == "Pass"
    assert states[limits]["Parameters"]["job_timeout_seconds.$"] == "States.StringToJson('${GlueJobTimeoutSeconds}')"
    for name, state in glue.items():
        assert state["TimeoutSecondsPath"] == "$.limits.job_timeout_seconds", name
        assert not {"States.Timeout", "States.ALL"} & {e for r in state["Retry"] for e in r["ErrorEquals"]}, name


@pytest.mark.parametrize("workflow", ["batch-pipeline", "maintenance"])
def test_each_workflow_runs_on_its_schedule_with_retries_and_dead_letters(processing, workflow: str) -> None:
    env, template = processing
    config = load(env)
    expression = {"batch-pipeline": config.batch_schedule, "maintenance": "cron(30 2 * * ? *)"}[workflow]
    name = config.resource_name(workflow)
    machine = logical_id(template, "AWS::StepFunctions::StateMachine", StateMachineName=name)
    [schedule] = [s["Properties"] for s in resources(template, "AWS::Scheduler::Schedule").values()
                  if s["Properties"]["Name"] == name]
    assert (schedule["ScheduleExpression"], schedule["ScheduleExpressionTimezone"]) == (expression, "UTC")
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert schedule.get("State", "ENABLED") == "ENABLED"  # absent: CloudFormation's default
    target = schedule["Target"]
    queue = logical_id(template, "AWS::SQS::Queue", QueueName=config.resource_name(f"{workflow}-schedule-dlq"))
    assert target["Arn"] == {"Ref": machine} and json.loads(target["Input"]) == {}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 5, "MaximumEventAgeInSeconds": 3600}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue, "Arn"]}}
    role = target["RoleArn"]["Fn::GetAtt"][0]
    trust = template.to_json()["Resources"][role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust == [{"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "scheduler.amazonaws.com"},
                      "Condition": {"StringEquals": {"aws:SourceAccount": config.account}}}]
    actions = {a: s["Resource"] for s in policy_statements(template, role) for a in as_list(s["Action"])}
    assert actions["states:StartExecution"] == {"Ref": machine}
    assert actions["sqs:SendMessage"] == {"Fn::GetAtt": [queue, "Arn"]}
    assert set(actions) == {"states:StartExecution", "sqs:SendMessage", "kms:Decrypt", "kms:GenerateDataKey"}


def test_record_run_writes_only_the_ops_tables(processing) -> None:
    env, template = processing
    config = load(env)
    writes = {flatten_arn(r) for s in policy_statements(template, "RecordRunRole")
              if "s3:PutObject" in as_list(s["Action"]) for r in as_list(s["Resource"])}
    assert writes == {f"arn:aws:s3:::{bucket_name(config, 'warehouse')}/ops.db/*"}


def test_maintenance_job_keeps_the_environments_time_travel_and_may_rewrite_every_table(processing) -> None:
    env, template = processing
    config = load(env)
    assert {load(e).snapshot_retention_hours for e in ("dev", "prod")} == {72, 720}  # per environment
    job = _jobs(template)[config.glue_job_name("maintenance")]
    assert job["Command"]["ScriptLocation"].endswith(".py")
    expected = {"--snapshot_retention_hours": str(config.snapshot_retention_hours), "--retain_last": "1",
                "--orphan_min_age_hours": "72"}
    assert {k: job["DefaultArguments"].get(k) for k in expected} == expected
    warehouse = bucket_name(config, "warehouse")
    statements = policy_statements(template, "JobsRole")  # the role of every job, maintenance's too
    assert job["Role"] == {"Fn::GetAtt": [next(k for k in resources(template, "AWS::IAM::Role") if k.startswith("JobsRole")),
                                          "Arn"]}
    writes = {flatten_arn(r): set(as_list(s["Action"])) for s in statements for r in as_list(s["Resource"])
              if flatten_arn(r).startswith(f"arn:aws:s3:::{warehouse}/")}
    assert writes == {f"arn:aws:s3:::{warehouse}/*": {"s3:GetObject", "s3:PutObject", "s3:DeleteObject",
                                                      "s3:AbortMultipartUpload"}}
    tables = {flatten_arn(r) for s in statements if "glue:UpdateTable" in as_list(s["Action"])
              for r in as_list(s["Resource"]) if ":table/" in flatten_arn(r)}
    assert {t.rsplit(":table/", 1)[1] for t in tables} == {f"{db}/*" for db in DATABASES}


def test_maintenance_state_machine_runs_only_the_maintenance_job(processing) -> None:
    env, template = processing
    config = load(env)
    machine = _machine(template, config.resource_name("maintenance"))
    assert json.loads(machine["DefinitionString"]) == json.loads(
        (PROJECT_ROOT / "step_functions" / "maintenance.asl.json").read_text())
    assert machine["DefinitionSubstitutions"] == {"MaintenanceJobName": config.glue_job_name("maintenance")}
    assert machine["LoggingConfiguration"]["Level"] == "ALL"
    assert machine["TracingConfiguration"] == {"Enabled": True}
    prefix = f"arn:aws:glue:{config.region}:{config.account}:job"
    assert _glue_and_invoke(template, "MaintenanceRole") == ({f"{prefix}/{config.glue_job_name('maintenance')}"}, [])
