"""Ingestion stack: encrypted stream, the cleaner's event source mapping per environment, its grants."""
from __future__ import annotations

import pytest
from aws_cdk.assertions import Template

from cdk_app.config import load
from cdk_app.layers import pandas_layer_arn, powertools_layer_arn
from cdk_app.secure_bucket import bucket_name
from tests.infra.helpers import as_list, flatten_arn, only, policy_statements


@pytest.fixture(scope="module", params=["dev", "prod"])
def ingestion(request, synthesized) -> tuple[str, Template]:
    env = request.param
    return env, Template.from_stack(synthesized(env).stage.ingestion)


def test_stream_is_kms_encrypted_and_sized_per_environment(ingestion) -> None:
    env, template = ingestion
    config = load(env)
    stream = only(template, "AWS::Kinesis::Stream")
    assert stream["Name"] == config.stream_name
    assert stream["StreamEncryption"]["EncryptionType"] == "KMS"
    assert "Fn::ImportValue" in stream["StreamEncryption"]["KeyId"]  # the lake key
    if config.kinesis_shards == 0:
        assert stream["StreamModeDetails"] == {"StreamMode": "ON_DEMAND"}
        assert "ShardCount" not in stream
    else:
        assert stream["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
        assert stream["ShardCount"] == config.kinesis_shards


def test_event_source_mapping_follows_config(ingestion) -> None:
    env, template = ingestion
    config = load(env)
    mapping = only(template, "AWS::Lambda::EventSourceMapping")
    queue_id = next(iter(template.find_resources("AWS::SQS::Queue")))
    assert mapping["BatchSize"] == config.cleaner_batch_size
    assert mapping["MaximumBatchingWindowInSeconds"] == config.cleaner_batching_window_seconds
    assert mapping["MaximumRetryAttempts"] == config.cleaner_max_retries
    assert mapping["BisectBatchOnFunctionError"] is True
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["DestinationConfig"] == {"OnFailure": {"Destination": {"Fn::GetAtt": [queue_id, "Arn"]}}}


def test_dead_letter_queue_is_encrypted_and_tls_only(ingestion) -> None:
    _, template = ingestion
    queue = only(template, "AWS::SQS::Queue")
    assert "Fn::ImportValue" in queue["KmsMasterKeyId"]
    statements = only(template, "AWS::SQS::QueuePolicy")["PolicyDocument"]["Statement"]
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
               for s in statements)


def test_cleaner_function_settings(ingestion) -> None:
    env, template = ingestion
    config = load(env)
    function = only(template, "AWS::Lambda::Function")
    assert function["FunctionName"] == config.function_name("cleaner")
    assert function["Handler"] == "lambdas.cleaner.handler.handler"
    assert function["Runtime"] == "python3.12"
    assert function["TracingConfig"] == {"Mode": "Active"}
    assert function["Layers"] == [powertools_layer_arn(config.region), pandas_layer_arn(config.region)]
    assert function["Environment"]["Variables"] == {
        "RAW_URI": f"s3://{bucket_name(config, 'raw')}",
        "STAGING_URI": f"s3://{bucket_name(config, 'staging')}",
        "SOURCE": "clickstream",
        "POWERTOOLS_SERVICE_NAME": "cleaner",
        "POWERTOOLS_METRICS_NAMESPACE": "lakehouse",
        "LAKEHOUSE_ENV": env,
    }


def test_cleaner_writes_only_its_raw_and_staging_prefixes(ingestion) -> None:
    env, template = ingestion
    config = load(env)
    s3 = {}
    for statement in policy_statements(template, "CleanerRole"):
        actions = as_list(statement["Action"])
        if any(a.startswith("s3:") for a in actions):
            for resource in as_list(statement["Resource"]):
                s3[flatten_arn(resource)] = sorted(actions)
    raw, staging = bucket_name(config, "raw"), bucket_name(config, "staging")
    write = ["s3:AbortMultipartUpload", "s3:PutObject"]
    assert s3 == {
        f"arn:aws:s3:::{raw}/clickstream/*": write,
        f"arn:aws:s3:::{staging}/clean/clickstream/*": write,
        f"arn:aws:s3:::{staging}/quarantine/clickstream/*": write,
        f"arn:aws:s3:::{staging}/manifests/clickstream/*": write,
    }


def test_cleaner_reads_the_stream_and_nothing_uses_wildcard_actions(ingestion) -> None:
    _, template = ingestion
    statements = policy_statements(template, "CleanerRole")
    stream_id = next(iter(template.find_resources("AWS::Kinesis::Stream")))
    reads = [s for s in statements if "kinesis:GetRecords" in as_list(s["Action"])]
    assert [s["Resource"] for s in reads] == [{"Fn::GetAtt": [stream_id, "Arn"]}]
    assert not any("*" in a for s in statements for a in as_list(s["Action"]))
