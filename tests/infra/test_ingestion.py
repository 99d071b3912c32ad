"""Ingestion stack: per Kinesis source an encrypted stream and a cleaner instance with its event source
mapping and grants, per environment; the PII hashing key they share."""
from __future__ import annotations

import pytest

from cdk_app.config import KINESIS_SOURCES, load
from cdk_app.layers import POWERTOOLS_PARAMETER
from cdk_app.secure_bucket import bucket_name
from lambdas.contracts.live import live_table
from tests.infra.helpers import (as_list, cleaner_mapping_settings, flatten_arn, grants, logical_id, resources,
                                 role_statements)


def _cleaner(env: str, source: str = "clickstream") -> str:
    return load(env).cleaner_for(source)


def _stream(env: str, template, source: str) -> str:
    return logical_id(template, "AWS::Kinesis::Stream", Name=load(env).stream_for(source))


def test_one_stream_and_one_cleaner_per_source(ingestion) -> None:
    env, template = ingestion
    config = load(env)
    streams = {s["Properties"]["Name"] for s in resources(template, "AWS::Kinesis::Stream").values()}
    assert streams == {f"lakehouse-{env}-events", f"lakehouse-{env}-orders"}
    cleaners = {f["Properties"]["FunctionName"] for f in resources(template, "AWS::Lambda::Function").values()
                if f["Properties"]["Handler"] == "lambdas.cleaner.handler.handler"}
    assert cleaners == {f"lakehouse-{env}-cleaner", f"lakehouse-{env}-cleaner-orders"}
    # the clickstream's keep the logical ids they were first deployed with
    assert _stream(env, template, "clickstream").startswith("Stream")
    assert logical_id(template, "AWS::Lambda::Function", FunctionName=config.cleaner_for("clickstream")
                      ).startswith("CleanerFunction")


@pytest.mark.parametrize("source", KINESIS_SOURCES)
def test_stream_is_kms_encrypted_and_sized_per_environment(ingestion, source: str) -> None:
    env, template = ingestion
    config = load(env)
    stream = template.to_json()["Resources"][_stream(env, template, source)]["Properties"]
    assert stream["StreamEncryption"]["EncryptionType"] == "KMS"
    assert "Fn::ImportValue" in stream["StreamEncryption"]["KeyId"]  # the lake key
    if config.kinesis_shards == 0:
        assert stream["StreamModeDetails"] == {"StreamMode": "ON_DEMAND"}
        assert "ShardCount" not in stream
    else:
        assert stream["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
        assert stream["ShardCount"] == config.kinesis_shards


@pytest.mark.parametrize("source", KINESIS_SOURCES)
def test_kinesis_mapping_follows_config(ingestion, source: str) -> None:
    env, template = ingestion
    config = load(env)
    stream = _stream(env, template, source)
    [mapping] = [r["Properties"] for r in resources(template, "AWS::Lambda::EventSourceMapping").values()
                 if r["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [stream, "Arn"]}]
    function = logical_id(template, "AWS::Lambda::Function", FunctionName=_cleaner(env, source))
    assert mapping["FunctionName"] == {"Ref": function}
    queue = logical_id(template, "AWS::SQS::Queue", QueueName=config.cleaner_dead_letter_queue_for(source))
    expected = cleaner_mapping_settings(config, queue)
    assert {k: mapping.get(k) for k in expected} == expected


def test_every_dead_letter_queue_is_encrypted_tls_only_and_kept_two_weeks(ingestion) -> None:
    env, template = ingestion
    config = load(env)
    # the live commits' FIFO queues are tested in tests/infra/test_live_committer.py
    queues = {k: q for k, q in resources(template, "AWS::SQS::Queue").items() if not q["Properties"].get("FifoQueue")}
    assert {q["Properties"]["QueueName"] for q in queues.values()} == {
        config.resource_name(f"{part}-dlq") for part in ("cleaner", "cleaner-orders", "api-connector", "file-loader")}
    for queue in queues.values():
        assert "Fn::ImportValue" in queue["Properties"]["KmsMasterKeyId"]
        assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    tls_only = {policy["Properties"]["Queues"][0]["Ref"] for policy in resources(template, "AWS::SQS::QueuePolicy").values()
                if any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
                       for s in policy["Properties"]["PolicyDocument"]["Statement"])}
    assert set(queues) <= tls_only


@pytest.mark.parametrize("source", KINESIS_SOURCES)
def test_cleaner_function_settings(ingestion, source: str) -> None:
    env, template = ingestion
    config = load(env)
    function = template.find_resources("AWS::Lambda::Function", {"Properties": {"FunctionName": _cleaner(env, source)}})
    [function] = [f["Properties"] for f in function.values()]
    assert function["Handler"] == "lambdas.cleaner.handler.handler"
    assert function["Runtime"] == "python3.12"
    assert function["TracingConfig"] == {"Mode": "Active"}
    # Powertools from its public SSM parameter at deploy; pyarrow and numpy from the stack's own layers (0224)
    [powertools, pyarrow, numpy] = function["Layers"]
    assert template.to_json()["Parameters"][powertools["Ref"]]["Default"] == POWERTOOLS_PARAMETER
    assert {pyarrow["Ref"], numpy["Ref"]} == set(template.find_resources("AWS::Lambda::LayerVersion"))
    assert function["Environment"]["Variables"] == {
        "RAW_URI": f"s3://{bucket_name(config, 'raw')}",
        "STAGING_URI": f"s3://{bucket_name(config, 'staging')}",
        "SOURCE": source,
        "PII_KEY_SECRET_NAME": config.resource_name("pii-hash-key"),
        "POWERTOOLS_SERVICE_NAME": "cleaner",
        "POWERTOOLS_METRICS_NAMESPACE": "lakehouse",
        "LAKEHOUSE_ENV": env,
        # a source with a live table notifies the live committer's queue (tests/infra/test_live_committer.py)
        **({"LIVE_QUEUE_URL": {"Ref": logical_id(template, "AWS::SQS::Queue", QueueName=config.live_commit_queue_name)}}
           if live_table(source) else {}),
    }


@pytest.mark.parametrize("source", KINESIS_SOURCES)
def test_cleaner_writes_only_its_raw_and_staging_prefixes(ingestion, source: str) -> None:
    env, template = ingestion
    config = load(env)
    raw, staging = bucket_name(config, "raw"), bucket_name(config, "staging")
    write = ["s3:AbortMultipartUpload", "s3:PutObject"]
    statements = role_statements(template, _cleaner(env, source))
    assert grants(statements, "s3") == {
        f"arn:aws:s3:::{raw}/{source}/*": write,
        f"arn:aws:s3:::{staging}/clean/{source}/*": write,
        f"arn:aws:s3:::{staging}/quarantine/{source}/*": write,
        f"arn:aws:s3:::{staging}/manifests/{source}/*": write,
        f"arn:aws:s3:::{staging}/manifest-index/{source}/*": write,
        # its shards' redelivery marks, read and written; listing only its manifests and marks
        f"arn:aws:s3:::{staging}/positions/{source}/*": ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"],
        f"arn:aws:s3:::{staging}": ["s3:ListBucket"],
    }
    (listing,) = [s for s in statements if "s3:ListBucket" in as_list(s["Action"])]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": [f"manifests/{source}/*", f"positions/{source}/*"]}}
    queue = logical_id(template, "AWS::SQS::Queue", QueueName=config.cleaner_dead_letter_queue_for(source))
    own_queue = repr({"Fn::GetAtt": [queue, "QueueName"]})
    assert grants(role_statements(template, _cleaner(env, source)), "sqs") == {
        f"arn:aws:sqs:{config.region}:{config.account}:{name}": ["sqs:SendMessage"]
        for name in (own_queue, *([config.live_commit_queue_name] if live_table(source) else []))}


@pytest.mark.parametrize("source", KINESIS_SOURCES)
def test_cleaner_reads_only_its_stream_and_nothing_uses_wildcard_actions(ingestion, source: str) -> None:
    env, template = ingestion
    statements = role_statements(template, _cleaner(env, source))
    reads = [s for s in statements if "kinesis:GetRecords" in as_list(s["Action"])]
    assert [s["Resource"] for s in reads] == [{"Fn::GetAtt": [_stream(env, template, source), "Arn"]}]
    assert not any("*" in a for s in statements for a in as_list(s["Action"]))


def test_pii_key_is_changed_by_cloudformation_only(ingestion) -> None:
    """A new value would re-key every hash silently, a new policy would open the reads: every write of the
    secret is denied to all but the CDK bootstrap's CloudFormation execution role (decision 0227)."""
    env, template = ingestion
    config = load(env)
    secret_id = logical_id(template, "AWS::SecretsManager::Secret", Name=config.resource_name("pii-hash-key"))
    [policy] = [p["Properties"] for p in resources(template, "AWS::SecretsManager::ResourcePolicy").values()
                if p["Properties"]["SecretId"] == {"Ref": secret_id}]
    [writes] = [s for s in policy["ResourcePolicy"]["Statement"] if "secretsmanager:PutSecretValue" in s["Action"]]
    assert (writes["Effect"], writes["Principal"], writes["Resource"]) == ("Deny", {"AWS": "*"}, "*")
    assert set(writes["Action"]) >= {
        "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecret", "secretsmanager:UpdateSecretVersionStage",
        "secretsmanager:RotateSecret", "secretsmanager:DeleteSecret", "secretsmanager:PutResourcePolicy",
        "secretsmanager:DeleteResourcePolicy", "secretsmanager:ReplicateSecretToRegions"}
    account, region = config.account, config.region
    assert [flatten_arn(a) for a in writes["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]] == [
        f"arn:aws:iam::{account}:role/cdk-hnb659fds-cfn-exec-role-{account}-{region}"]


def test_pii_key_is_generated_encrypted_and_readable_by_the_cleaners_and_replay_only(ingestion) -> None:
    env, template = ingestion
    config = load(env)
    secret_id = logical_id(template, "AWS::SecretsManager::Secret", Name=config.resource_name("pii-hash-key"))
    secret = template.to_json()["Resources"][secret_id]["Properties"]
    assert "Fn::ImportValue" in secret["KmsKeyId"]  # the lake key
    assert secret["GenerateSecretString"]["PasswordLength"] >= 32
    assert "SecretString" not in secret  # generated at deploy: no value in the template or the repo
    assert secret_id.startswith("CleanerPiiKey")  # its first logical id: a new one would be a new key
    names = [*(_cleaner(env, s) for s in KINESIS_SOURCES), config.function_name("replay")]
    roles = {logical_id(template, "AWS::IAM::Role", RoleName=name): name for name in names}
    [policy] = [p["Properties"] for p in resources(template, "AWS::SecretsManager::ResourcePolicy").values()
                if p["Properties"]["SecretId"] == {"Ref": secret_id}]
    deny, _ = policy["ResourcePolicy"]["Statement"]  # the second: test_pii_key_is_changed_by_cloudformation_only
    assert {k: v for k, v in deny.items() if k != "Condition"} == {
        "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "secretsmanager:GetSecretValue", "Resource": "*"}
    assert [flatten_arn(a) for a in deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]] == [
        f"arn:aws:iam::{config.account}:role/{name}" for name in roles.values()]
    readers = [r["Ref"] for p in resources(template, "AWS::IAM::Policy").values() for r in p["Properties"]["Roles"]
               for s in p["Properties"]["PolicyDocument"]["Statement"] if {"Ref": secret_id} in as_list(s["Resource"])]
    assert sorted(readers) == sorted(roles)
    for name in roles.values():
        assert grants(role_statements(template, name), "secretsmanager") == {
            repr({"Ref": secret_id}): ["secretsmanager:GetSecretValue"]}
