"""The replay workflow in the ingestion stack: its function re-cleans the raw zone (the only function besides
the writers that may read it) and its state machine runs that, then the batch pipeline as a child."""
from __future__ import annotations

import json

from cdk_app.config import KINESIS_SOURCES, PROJECT_ROOT, load
from cdk_app.secure_bucket import bucket_name
from tests.infra.helpers import flatten_arn, grants, logical_id, policy_statements, resources, role_statements

ASL = json.loads((PROJECT_ROOT / "step_functions" / "replay.asl.json").read_text())


def _machine(template, name: str) -> dict:
    return resources(template, "AWS::StepFunctions::StateMachine")[
        logical_id(template, "AWS::StepFunctions::StateMachine", StateMachineName=name)]["Properties"]


def test_the_function_reads_the_stream_sources_raw_and_writes_their_staging_only(ingestion) -> None:
    env, template = ingestion
    config = load(env)
    raw, staging = bucket_name(config, "raw"), bucket_name(config, "staging")
    name = config.function_name("replay")
    [function] = [f["Properties"] for f in resources(template, "AWS::Lambda::Function").values()
                  if f["Properties"]["FunctionName"] == name]
    assert function["Handler"] == "lambdas.replay.handler.handler" and function["Timeout"] == 900
    variables = function["Environment"]["Variables"]
    assert (variables["RAW_URI"], variables["STAGING_URI"]) == (f"s3://{raw}", f"s3://{staging}")
    assert variables["PII_KEY_SECRET_NAME"] == config.resource_name("pii-hash-key")  # hashes IPs like the cleaners
    s3 = grants(role_statements(template, name), "s3")
    write = ["s3:AbortMultipartUpload", "s3:PutObject"]
    assert s3 == {
        f"arn:aws:s3:::{raw}": ["s3:ListBucket"],
        **{f"arn:aws:s3:::{raw}/{source}/*": ["s3:GetObject"] for source in KINESIS_SOURCES},
        **{f"arn:aws:s3:::{staging}/{zone}/{source}/*": write
           for source in KINESIS_SOURCES for zone in ("clean", "quarantine", "manifests", "manifest-index")},
    }


def test_the_state_machine_is_the_asl_file_and_may_start_only_the_batch_pipeline(ingestion) -> None:
    env, template = ingestion
    config = load(env)
    machine = _machine(template, config.replay_state_machine_name)
    assert json.loads(machine["DefinitionString"]) == ASL  # the file as written; names come as substitutions
    substitutions = machine["DefinitionSubstitutions"]
    function = logical_id(template, "AWS::Lambda::Function", FunctionName=config.function_name("replay"))
    assert substitutions["ReplayFunctionArn"] == {"Fn::GetAtt": [function, "Arn"]}
    batch = f"arn:aws:states:{config.region}:{config.account}:stateMachine:{config.state_machine_name}"
    assert flatten_arn(substitutions["BatchPipelineArn"]) == batch
    role = machine["RoleArn"]["Fn::GetAtt"][0]
    statements = policy_statements(template, role)
    states = grants(statements, "states")
    assert states == {batch: ["states:StartExecution"],
                      f"arn:aws:states:{config.region}:{config.account}:execution:{config.state_machine_name}:*":
                          ["states:DescribeExecution", "states:StopExecution"]}
    rule = f"arn:aws:events:{config.region}:{config.account}:rule/StepFunctionsGetEventsForStepFunctionsExecutionRule"
    assert grants(statements, "events") == {rule: ["events:DescribeRule", "events:PutRule", "events:PutTargets"]}
    [invoke] = grants(statements, "lambda").values()
    assert invoke == ["lambda:InvokeFunction"] and len(grants(statements, "lambda")) == 1
    assert machine["TracingConfiguration"] == {"Enabled": True}
