"""Product-catalog file drops: the landing bucket, its notification to the loader, the loader's grants."""
from __future__ import annotations

import pytest
from aws_cdk.assertions import Template

from cdk_app.config import load
from cdk_app.secure_bucket import bucket_name
from tests.infra.helpers import as_list, flatten_arn, grants, logical_id, only, resources, role_statements


def _landing(env: str, template: Template) -> tuple[str, dict]:
    bucket_id = logical_id(template, "AWS::S3::Bucket", BucketName=bucket_name(load(env), "landing"))
    return bucket_id, template.to_json()["Resources"][bucket_id]


def _loader(env: str, template: Template) -> str:
    return logical_id(template, "AWS::Lambda::Function", FunctionName=load(env).function_name("file_loader"))


def test_landing_bucket_is_encrypted_private_tls_only_logged_and_expires(ingestion) -> None:
    env, template = ingestion
    config = load(env)
    bucket_id, bucket = _landing(env, template)
    props = bucket["Properties"]
    sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert sse["SSEAlgorithm"] == "aws:kms" and "Fn::ImportValue" in sse["KMSMasterKeyID"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    assert props["LoggingConfiguration"] == {"DestinationBucketName": bucket_name(config, "access-logs"),
                                             "LogFilePrefix": "landing/"}
    expiry = [r for r in props["LifecycleConfiguration"]["Rules"] if "ExpirationInDays" in r]
    # files are copied to raw when loaded; a landed one outlives any event parked in the dead-letter queue
    assert expiry == [{"Id": "expire-landed-files", "Status": "Enabled", "ExpirationInDays": 30}]
    queue = logical_id(template, "AWS::SQS::Queue", QueueName=config.resource_name("file-loader-dlq"))
    assert 30 * 24 * 3600 > template.to_json()["Resources"][queue]["Properties"]["MessageRetentionPeriod"]
    policy = only(template, "AWS::S3::BucketPolicy")
    assert policy["Bucket"] == {"Ref": bucket_id}
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
               for s in policy["PolicyDocument"]["Statement"])
    assert bucket["DeletionPolicy"] == ("Retain" if config.removal_policy == "retain" else "Delete")


def test_csv_drops_under_the_landing_prefix_notify_the_loader(ingestion) -> None:
    env, template = ingestion
    config = load(env)
    _, bucket = _landing(env, template)
    loader = _loader(env, template)
    assert bucket["Properties"]["NotificationConfiguration"] == {"LambdaConfigurations": [{
        "Event": "s3:ObjectCreated:*",
        "Function": {"Fn::GetAtt": [loader, "Arn"]},
        "Filter": {"S3Key": {"Rules": [{"Name": "prefix", "Value": "products/"},
                                       {"Name": "suffix", "Value": ".csv"}]}},
    }]}
    permission_id = logical_id(template, "AWS::Lambda::Permission", Principal="s3.amazonaws.com")
    permission = template.to_json()["Resources"][permission_id]["Properties"]
    assert permission["FunctionName"] == {"Fn::GetAtt": [loader, "Arn"]}
    assert flatten_arn(permission["SourceArn"]) == f"arn:aws:s3:::{bucket_name(config, 'landing')}"
    assert permission["SourceAccount"] == config.account
    # S3 checks it may invoke the function when the notification is created
    assert permission_id in bucket["DependsOn"]


def test_failed_loads_are_retried_then_parked(ingestion) -> None:
    env, template = ingestion
    config = load(env)
    queue = logical_id(template, "AWS::SQS::Queue", QueueName=config.resource_name("file-loader-dlq"))
    [invoke] = [c["Properties"] for c in resources(template, "AWS::Lambda::EventInvokeConfig").values()
                if c["Properties"]["FunctionName"] == {"Ref": _loader(env, template)}]
    assert invoke["MaximumRetryAttempts"] == 2
    assert invoke["DestinationConfig"] == {"OnFailure": {"Destination": {"Fn::GetAtt": [queue, "Arn"]}}}


def test_loader_reads_landing_and_writes_only_its_staging_prefixes(ingestion) -> None:
    env, template = ingestion
    config = load(env)
    landing, raw, staging = (bucket_name(config, zone) for zone in ("landing", "raw", "staging"))
    function = template.to_json()["Resources"][_loader(env, template)]["Properties"]
    assert function["Handler"] == "lambdas.file_loader.handler.handler"
    variables = function["Environment"]["Variables"]
    assert {k: variables[k] for k in ("LANDING_URI", "RAW_URI", "STAGING_URI", "SOURCE")} == {
        "LANDING_URI": f"s3://{landing}", "RAW_URI": f"s3://{raw}", "STAGING_URI": f"s3://{staging}",
        "SOURCE": "products"}
    statements = role_statements(template, config.function_name("file_loader"))
    write = ["s3:AbortMultipartUpload", "s3:PutObject"]
    assert grants(statements, "s3") == {
        f"arn:aws:s3:::{landing}": ["s3:ListBucket"],
        f"arn:aws:s3:::{landing}/products/*": ["s3:GetObject"],
        f"arn:aws:s3:::{raw}/products/*": write,  # the copy of the file as read
        f"arn:aws:s3:::{staging}": ["s3:ListBucket"],
        f"arn:aws:s3:::{staging}/clean/products/*": write,
        f"arn:aws:s3:::{staging}/quarantine/products/*": write,
        f"arn:aws:s3:::{staging}/manifests/products/*": sorted([*write, "s3:GetObject"]),  # loaded already?
        f"arn:aws:s3:::{staging}/manifest-index/products/*": write,
    }
    lists = sorted(s["Condition"]["StringLike"]["s3:prefix"] for s in statements if s["Action"] == "s3:ListBucket")
    assert lists == [["manifests/products/*"], ["products/*"]]
    assert not any("*" in a for s in statements for a in as_list(s["Action"]))


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_lake_access_log_bucket_admits_the_landing_buckets_logs_only_from_it(synthesized, env: str) -> None:
    config = load(env)
    lake = Template.from_stack(synthesized(env).stage.lake)
    logs = logical_id(lake, "AWS::S3::Bucket", BucketName=bucket_name(config, "access-logs"))
    [policy] = [p["Properties"] for p in resources(lake, "AWS::S3::BucketPolicy").values()
                if p["Properties"]["Bucket"] == {"Ref": logs}]
    [statement] = [s for s in policy["PolicyDocument"]["Statement"]
                   if s["Effect"] == "Allow" and "landing/*" in flatten_arn(s["Resource"])]
    assert statement["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert statement["Action"] == "s3:PutObject"
    assert flatten_arn(statement["Condition"]["ArnLike"]["aws:SourceArn"]) == \
        f"arn:aws:s3:::{bucket_name(config, 'landing')}"
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": config.account}
