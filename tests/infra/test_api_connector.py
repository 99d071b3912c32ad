"""FX-rates API connector: the function's settings and grants, its API key, the schedule and its role."""
from __future__ import annotations

import json

from aws_cdk.assertions import Template

from cdk_app.config import load
from cdk_app.secure_bucket import bucket_name
from tests.infra.helpers import as_list, grants, logical_id, only, resources, role_statements


def _fx_schedule(template: Template, name: str) -> dict:
    """The FX connector's schedule, by its name: the stack has the live tables' maintenance schedules too."""
    [schedule] = [r["Properties"] for r in resources(template, "AWS::Scheduler::Schedule").values()
                  if r["Properties"]["Name"] == name]
    return schedule


def _ids(env: str, template: Template) -> dict[str, str]:
    config = load(env)
    return {
        "function": logical_id(template, "AWS::Lambda::Function", FunctionName=config.function_name("api_connector")),
        "queue": logical_id(template, "AWS::SQS::Queue", QueueName=config.resource_name("api-connector-dlq")),
        "secret": logical_id(template, "AWS::SecretsManager::Secret", Name=config.resource_name("fx-api-key")),
    }


def test_function_runs_the_connector_with_its_configuration(ingestion) -> None:
    env, template = ingestion
    config = load(env)
    function = template.to_json()["Resources"][_ids(env, template)["function"]]["Properties"]
    assert function["Handler"] == "lambdas.api_connector.handler.handler"
    variables = function["Environment"]["Variables"]
    assert variables["FX_API_BASE_URL"] == config.fx_api_base_url
    assert variables["FX_API_SECRET_ID"] == config.resource_name("fx-api-key")
    assert variables["RAW_URI"] == f"s3://{bucket_name(config, 'raw')}"
    assert variables["STAGING_URI"] == f"s3://{bucket_name(config, 'staging')}"
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "lakehouse"


def test_api_key_is_a_generated_placeholder_under_the_lake_key(ingestion) -> None:
    env, template = ingestion
    secret = template.to_json()["Resources"][_ids(env, template)["secret"]]["Properties"]
    assert "Fn::ImportValue" in secret["KmsKeyId"]
    assert "SecretString" not in secret  # nothing in the template or the repo
    generated = secret["GenerateSecretString"]
    # the shape the connector reads: {"api_key": "..."}
    assert json.loads(generated["SecretStringTemplate"]) == {"api_key": ""}
    assert generated["GenerateStringKey"] == "api_key"


def test_schedule_follows_config_with_retries_and_a_dead_letter_queue(ingestion) -> None:
    env, template = ingestion
    config = load(env)
    ids = _ids(env, template)
    schedule = _fx_schedule(template, config.resource_name("fx-rates"))
    assert schedule["ScheduleExpression"] == config.fx_schedule
    assert schedule["ScheduleExpressionTimezone"] == "UTC"
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    target = schedule["Target"]
    assert target["Arn"] == {"Fn::GetAtt": [ids["function"], "Arn"]}
    assert json.loads(target["Input"]) == {"scheduled_time": "<aws.scheduler.scheduled-time>"}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    assert 60 <= target["RetryPolicy"]["MaximumEventAgeInSeconds"] <= 86400
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [ids["queue"], "Arn"]}}


def test_scheduler_role_may_invoke_the_connector_and_reach_its_queue_only(ingestion) -> None:
    env, template = ingestion
    config = load(env)
    ids = _ids(env, template)
    role_arn = _fx_schedule(template, config.resource_name("fx-rates"))["Target"]["RoleArn"]
    role = template.to_json()["Resources"][role_arn["Fn::GetAtt"][0]]["Properties"]
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": config.account}}  # no confused deputy
    statements = [s for p in resources(template, "AWS::IAM::Policy").values()
                  if p["Properties"]["Roles"] == [{"Ref": role_arn["Fn::GetAtt"][0]}]
                  for s in p["Properties"]["PolicyDocument"]["Statement"]]
    actions = {a: s["Resource"] for s in statements for a in as_list(s["Action"])}
    assert actions.keys() == {"lambda:InvokeFunction", "sqs:SendMessage", "kms:Decrypt", "kms:GenerateDataKey"}
    assert actions["lambda:InvokeFunction"] == {"Fn::GetAtt": [ids["function"], "Arn"]}
    assert "QueueName" in json.dumps(actions["sqs:SendMessage"]) and ids["queue"] in json.dumps(actions["sqs:SendMessage"])


def test_failed_runs_end_in_the_same_queue(ingestion) -> None:
    env, template = ingestion
    ids = _ids(env, template)
    [config] = [c["Properties"] for c in resources(template, "AWS::Lambda::EventInvokeConfig").values()
                if c["Properties"]["FunctionName"] == {"Ref": ids["function"]}]
    assert config["MaximumRetryAttempts"] == 2
    assert config["DestinationConfig"] == {"OnFailure": {"Destination": {"Fn::GetAtt": [ids["queue"], "Arn"]}}}


def test_connector_reads_its_key_and_touches_only_its_own_prefixes(ingestion) -> None:
    env, template = ingestion
    config = load(env)
    ids = _ids(env, template)
    statements = role_statements(template, config.function_name("api_connector"))
    raw, staging = bucket_name(config, "raw"), bucket_name(config, "staging")
    write = ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"]
    assert grants(statements, "s3") == {
        f"arn:aws:s3:::{raw}": ["s3:ListBucket"],
        f"arn:aws:s3:::{raw}/fx_rates/*": write,  # never a delete: raw bodies are written once
        f"arn:aws:s3:::{staging}": ["s3:ListBucket"],
        **{f"arn:aws:s3:::{staging}/{zone}/fx_rates/*": sorted([*write, "s3:DeleteObject"])
           for zone in ("clean", "quarantine", "manifests", "manifest-index")},
    }
    lists = {json.dumps(s["Resource"]): s["Condition"]["StringLike"]["s3:prefix"]
             for s in statements if s["Action"] == "s3:ListBucket"}
    assert sorted(lists.values()) == [["clean/fx_rates/*", "quarantine/fx_rates/*", "manifests/fx_rates/*",
                                          "manifest-index/fx_rates/*"],
                                      ["fx_rates/*"]]
    assert grants(statements, "secretsmanager") == {repr({"Ref": ids["secret"]}): ["secretsmanager:GetSecretValue"]}
    assert not any("*" in a for s in statements for a in as_list(s["Action"]))
