"""Processing stack: Glue 5.0 jobs per environment, their security, and the state machine wiring."""
from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Template

from cdk_app.config import PROJECT_ROOT, load
from cdk_app.secure_bucket import bucket_name
from tests.infra.helpers import as_list, flatten_arn, only, policy_statements, resources

JOBS = ("silver_merge", "gold_build")


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
    assert set(jobs) == {config.glue_job_name(j) for j in JOBS}
    for name, job in jobs.items():
        assert job["GlueVersion"] == "5.0"
        assert job["WorkerType"] == config.glue_worker_type
        assert job["NumberOfWorkers"] == config.glue_workers
        assert job["Timeout"] == config.glue_timeout_minutes
        assert job["Command"]["Name"] == "glueetl" and job["Command"]["ScriptLocation"].endswith(".py")
        args = job["DefaultArguments"]
        assert args["--datalake-formats"] == "iceberg"
        conf = dict(pair.split("=", 1) for pair in args["--conf"].split(" --conf "))
        assert conf["spark.sql.catalog.lake.catalog-impl"] == "org.apache.iceberg.aws.glue.GlueCatalog"
        assert conf["spark.sql.catalog.lake.warehouse"] == f"s3://{bucket_name(config, 'warehouse')}"
        assert args["--extra-py-files"].endswith(".zip")


def test_silver_merge_reads_the_cleaners_staging_prefixes(processing) -> None:
    env, template = processing
    config = load(env)
    staging = bucket_name(config, "staging")
    args = _jobs(template)[config.glue_job_name("silver_merge")]["DefaultArguments"]
    assert "--clean_path" not in args  # the manifests name their files
    assert args["--manifest_path"] == f"s3://{staging}/manifests/clickstream"
    reads = {flatten_arn(r) for s in policy_statements(template, "JobsRole")
             if as_list(s["Action"]) == ["s3:GetObject"] for r in as_list(s["Resource"])}
    prefixes = ("clean", "quarantine", "manifests")  # quarantine: loaded into ops.quarantine
    assert {f"arn:aws:s3:::{staging}/{p}/clickstream/*" for p in prefixes} <= reads
    assert not any(staging in r and "/raw" in r for r in reads)


def test_glue_security_configuration_encrypts_everything(processing) -> None:
    _, template = processing
    config_id = next(iter(template.find_resources("AWS::Glue::SecurityConfiguration")))
    encryption = only(template, "AWS::Glue::SecurityConfiguration")["EncryptionConfiguration"]
    assert encryption["S3Encryptions"][0]["S3EncryptionMode"] == "SSE-KMS"
    assert encryption["CloudWatchEncryption"]["CloudWatchEncryptionMode"] == "SSE-KMS"
    assert encryption["JobBookmarksEncryption"]["JobBookmarksEncryptionMode"] == "CSE-KMS"
    for job in _jobs(template).values():
        assert job["SecurityConfiguration"] == {"Ref": config_id}


def test_state_machine_is_the_asl_file_with_real_names(processing) -> None:
    env, template = processing
    config = load(env)
    machine = only(template, "AWS::StepFunctions::StateMachine")
    record_run = next(k for k, v in resources(template, "AWS::Lambda::Function").items()
                      if v["Properties"]["FunctionName"] == config.function_name("record_run"))
    assert machine["StateMachineName"] == config.state_machine_name
    assert json.loads(machine["DefinitionString"]) == json.loads(
        (PROJECT_ROOT / "step_functions" / "batch_pipeline.asl.json").read_text())
    assert machine["DefinitionSubstitutions"] == {
        "SilverMergeJobName": config.glue_job_name("silver_merge"),
        "GoldBuildJobName": config.glue_job_name("gold_build"),
        "RecordRunFunctionArn": {"Fn::GetAtt": [record_run, "Arn"]},
    }
    placeholders = {p.split("}")[0] for p in machine["DefinitionString"].split("${")[1:]}
    assert placeholders == set(machine["DefinitionSubstitutions"])
    assert machine["LoggingConfiguration"]["Level"] == "ALL"
    assert machine["TracingConfiguration"] == {"Enabled": True}


def test_state_machine_may_run_exactly_those_jobs_and_that_function(processing) -> None:
    env, template = processing
    config = load(env)
    record_run = next(k for k, v in resources(template, "AWS::Lambda::Function").items()
                      if v["Properties"]["FunctionName"] == config.function_name("record_run"))
    glue, invoke = set(), []
    for statement in policy_statements(template, "PipelineRole"):
        actions = as_list(statement["Action"])
        if any(a.startswith("glue:") for a in actions):
            glue |= {flatten_arn(r) for r in as_list(statement["Resource"])}
        if "lambda:InvokeFunction" in actions:
            invoke += as_list(statement["Resource"])
    prefix = f"arn:aws:glue:{config.region}:{config.account}:job"
    assert glue == {f"{prefix}/{config.glue_job_name(j)}" for j in JOBS}
    assert invoke == [{"Fn::GetAtt": [record_run, "Arn"]}]


def test_record_run_writes_only_the_ops_tables(processing) -> None:
    env, template = processing
    config = load(env)
    writes = {flatten_arn(r) for s in policy_statements(template, "RecordRunRole")
              if "s3:PutObject" in as_list(s["Action"]) for r in as_list(s["Resource"])}
    assert writes == {f"arn:aws:s3:::{bucket_name(config, 'warehouse')}/ops.db/*"}
