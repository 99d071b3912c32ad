"""Ingestion stack: encrypted stream, the cleaner's event source mapping per environment, its grants,
its PII hashing key."""
from __future__ import annotations

from cdk_app.config import load
from cdk_app.layers import pandas_layer_arn, powertools_layer_arn
from cdk_app.secure_bucket import bucket_name
from tests.infra.helpers import as_list, cleaner_mapping_settings, grants, logical_id, only, resources, role_statements


def _cleaner(env: str) -> str:
    return load(env).function_name("cleaner")


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


def test_kinesis_mapping_follows_config(ingestion) -> None:
    env, template = ingestion
    config = load(env)
    stream = logical_id(template, "AWS::Kinesis::Stream")
    [mapping] = [r["Properties"] for r in resources(template, "AWS::Lambda::EventSourceMapping").values()
                 if r["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [stream, "Arn"]}]
    queue = logical_id(template, "AWS::SQS::Queue", QueueName=config.resource_name("cleaner-dlq"))
    expected = cleaner_mapping_settings(config, queue)
    assert {k: mapping.get(k) for k in expected} == expected


def test_every_dead_letter_queue_is_encrypted_tls_only_and_kept_two_weeks(ingestion) -> None:
    env, template = ingestion
    config = load(env)
    queues = resources(template, "AWS::SQS::Queue")
    assert {q["Properties"]["QueueName"] for q in queues.values()} == {
        config.resource_name(f"{part}-dlq") for part in ("cleaner", "api-connector", "file-loader")}
    for queue in queues.values():
        assert "Fn::ImportValue" in queue["Properties"]["KmsMasterKeyId"]
        assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    tls_only = {policy["Properties"]["Queues"][0]["Ref"] for policy in resources(template, "AWS::SQS::QueuePolicy").values()
                if any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
                       for s in policy["Properties"]["PolicyDocument"]["Statement"])}
    assert tls_only == set(queues)


def test_cleaner_function_settings(ingestion) -> None:
    env, template = ingestion
    config = load(env)
    function = template.find_resources("AWS::Lambda::Function", {"Properties": {"FunctionName": _cleaner(env)}})
    [function] = [f["Properties"] for f in function.values()]
    assert function["Handler"] == "lambdas.cleaner.handler.handler"
    assert function["Runtime"] == "python3.12"
    assert function["TracingConfig"] == {"Mode": "Active"}
    assert function["Layers"] == [powertools_layer_arn(config.region), pandas_layer_arn(config.region)]
    assert function["Environment"]["Variables"] == {
        "RAW_URI": f"s3://{bucket_name(config, 'raw')}",
        "STAGING_URI": f"s3://{bucket_name(config, 'staging')}",
        "SOURCE": "clickstream",
        "PII_KEY_SECRET_NAME": config.resource_name("pii-hash-key"),
        "POWERTOOLS_SERVICE_NAME": "cleaner",
        "POWERTOOLS_METRICS_NAMESPACE": "lakehouse",
        "LAKEHOUSE_ENV": env,
    }


def test_cleaner_writes_only_its_raw_and_staging_prefixes(ingestion) -> None:
    env, template = ingestion
    config = load(env)
    raw, staging = bucket_name(config, "raw"), bucket_name(config, "staging")
    write = ["s3:AbortMultipartUpload", "s3:PutObject"]
    assert grants(role_statements(template, _cleaner(env)), "s3") == {
        f"arn:aws:s3:::{raw}/clickstream/*": write,
        f"arn:aws:s3:::{staging}/clean/clickstream/*": write,
        f"arn:aws:s3:::{staging}/quarantine/clickstream/*": write,
        f"arn:aws:s3:::{staging}/manifests/clickstream/*": write,
    }


def test_cleaner_reads_the_stream_and_nothing_uses_wildcard_actions(ingestion) -> None:
    env, template = ingestion
    statements = role_statements(template, _cleaner(env))
    stream = logical_id(template, "AWS::Kinesis::Stream")
    reads = [s for s in statements if "kinesis:GetRecords" in as_list(s["Action"])]
    assert [s["Resource"] for s in reads] == [{"Fn::GetAtt": [stream, "Arn"]}]
    assert not any("*" in a for s in statements for a in as_list(s["Action"]))


def test_pii_key_is_generated_encrypted_and_readable_by_the_cleaner_only(ingestion) -> None:
    env, template = ingestion
    config = load(env)
    secret_id = logical_id(template, "AWS::SecretsManager::Secret", Name=config.resource_name("pii-hash-key"))
    secret = template.to_json()["Resources"][secret_id]["Properties"]
    assert "Fn::ImportValue" in secret["KmsKeyId"]  # the lake key
    assert secret["GenerateSecretString"]["PasswordLength"] >= 32
    assert "SecretString" not in secret  # generated at deploy: no value in the template or the repo
    role = logical_id(template, "AWS::IAM::Role", RoleName=_cleaner(env))
    [policy] = [p["Properties"] for p in resources(template, "AWS::SecretsManager::ResourcePolicy").values()
                if p["Properties"]["SecretId"] == {"Ref": secret_id}]
    assert policy["ResourcePolicy"]["Statement"] == [{
        "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "secretsmanager:GetSecretValue", "Resource": "*",
        "Condition": {"ArnNotEquals": {"aws:PrincipalArn": {"Fn::GetAtt": [role, "Arn"]}}},
    }]
    readers = [p["Properties"]["Roles"] for p in resources(template, "AWS::IAM::Policy").values()
               for s in p["Properties"]["PolicyDocument"]["Statement"] if {"Ref": secret_id} in as_list(s["Resource"])]
    assert readers == [[{"Ref": role}]]
    assert grants(role_statements(template, _cleaner(env)), "secretsmanager") == {
        repr({"Ref": secret_id}): ["secretsmanager:GetSecretValue"]}
