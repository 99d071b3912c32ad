"""Lake stack: encryption, TLS-only private buckets, access logs, lifecycle, databases, tables."""
from __future__ import annotations

import pytest
from aws_cdk.assertions import Match, Template

from cdk_app.config import load
from cdk_app.secure_bucket import bucket_name
from lambdas.contracts.lake_layout import BATCH_SOURCES
from tests.infra.helpers import as_list, flatten_arn, logical_id, only, resources

DATA_BUCKETS = ("raw", "staging", "warehouse", "athena-results")


@pytest.fixture(scope="module", params=["dev", "prod"])
def lake(request, synthesized) -> tuple[str, Template]:
    env = request.param
    return env, Template.from_stack(synthesized(env).stage.lake)


def _buckets(template: Template) -> dict[str, dict]:
    """{bucket name: properties}."""
    return {r["Properties"]["BucketName"]: r["Properties"] for r in resources(template, "AWS::S3::Bucket").values()}


def test_key_rotates(lake) -> None:
    _, template = lake
    assert only(template, "AWS::KMS::Key")["EnableKeyRotation"] is True


def test_data_buckets_are_kms_encrypted_private_versioned_and_logged(lake) -> None:
    env, template = lake
    config = load(env)
    buckets = _buckets(template)
    logs = bucket_name(config, "access-logs")
    purposes = (*DATA_BUCKETS, "raw-audit") if config.raw_data_events_trail else DATA_BUCKETS  # prod: the trail's logs
    assert set(buckets) == {bucket_name(config, b) for b in purposes} | {logs}
    for purpose in purposes:
        props = buckets[bucket_name(config, purpose)]
        sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
        assert sse["SSEAlgorithm"] == "aws:kms"
        assert "Fn::GetAtt" in sse["KMSMasterKeyID"]  # the lake key, not the aws/s3 default
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
        assert props["LoggingConfiguration"]["LogFilePrefix"] == f"{purpose}/"
    # S3 can't deliver access logs into an SSE-KMS bucket
    log_sse = buckets[logs]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert log_sse == {"SSEAlgorithm": "AES256"}


def test_every_bucket_refuses_plain_http(lake) -> None:
    _, template = lake
    policies = resources(template, "AWS::S3::BucketPolicy")
    buckets = resources(template, "AWS::S3::Bucket")
    protected = set()
    for policy in policies.values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Deny" and statement.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}:
                assert statement["Action"] == "s3:*" and statement["Principal"] == {"AWS": "*"}
                protected.add(policy["Properties"]["Bucket"]["Ref"])
    assert protected == set(buckets)


def test_raw_zone_expires_after_the_configured_retention(lake) -> None:
    env, template = lake
    config = load(env)
    rules = _buckets(template)[bucket_name(config, "raw")]["LifecycleConfiguration"]["Rules"]
    expiry = [r for r in rules if r["Id"] == "expire-raw"]
    assert expiry == [{"Id": "expire-raw", "Status": "Enabled", "ExpirationInDays": config.raw_retention_days}]
    rules = _buckets(template)[bucket_name(config, "warehouse")]["LifecycleConfiguration"]["Rules"]
    assert all("ExpirationInDays" not in r for r in rules)  # the lake's tables are never expired by S3


def test_staged_batches_expire_after_the_configured_retention(lake) -> None:
    """Every prefix a writer stages batches into expires (silver_merge's listing stays bounded by the manifest
    index, not by this); the cleaners' redelivery marks do not."""
    env, template = lake
    config = load(env)
    rules = _buckets(template)[bucket_name(config, "staging")]["LifecycleConfiguration"]["Rules"]
    expiring = {r["Prefix"]: r["ExpirationInDays"] for r in rules if "ExpirationInDays" in r}
    assert expiring == {f"{zone}/{source}/": config.staging_retention_days for source in BATCH_SOURCES
                        for zone in ("clean", "quarantine", "manifests", "manifest-index")}
    assert config.staging_retention_days <= config.raw_retention_days  # what expires unmerged can be replayed


def test_removal_policy_follows_config(lake) -> None:
    env, template = lake
    expected = "Retain" if load(env).removal_policy == "retain" else "Delete"
    for cfn_type in ("AWS::S3::Bucket", "AWS::KMS::Key"):
        assert {r["DeletionPolicy"] for r in resources(template, cfn_type).values()} == {expected}


def test_glue_databases_point_into_the_warehouse(lake) -> None:
    env, template = lake
    warehouse = bucket_name(load(env), "warehouse")
    databases = {r["Properties"]["DatabaseInput"]["Name"]: r["Properties"]["DatabaseInput"]["LocationUri"]
                 for r in resources(template, "AWS::Glue::Database").values()}
    assert databases == {db: f"s3://{warehouse}/{db}.db/" for db in ("silver", "gold", "ops", "live")}
    # tables come from the migrator, never from CloudFormation (it drops table_type=ICEBERG)
    assert resources(template, "AWS::Glue::Table") == {}


def test_tables_are_migrated_by_the_custom_resource(lake) -> None:
    env, template = lake
    config = load(env)
    migration = only(template, "Custom::IcebergTables")
    assert migration["Databases"] == ["gold", "live", "ops", "silver"]
    assert len(migration["CodeHash"]) == 64
    template.has_resource_properties("AWS::Lambda::Function", {
        "FunctionName": config.function_name("table_migrator"),
        "Handler": "lambdas.table_migrator.handler.handler",
        "Runtime": "python3.12",
        "Environment": {"Variables": Match.object_like({"WAREHOUSE_URI": f"s3://{bucket_name(config, 'warehouse')}"})},
    })


def test_migrator_may_change_only_the_lake_databases(lake) -> None:
    env, template = lake
    config = load(env)
    glue_resources: set[str] = set()
    for policy in resources(template, "AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if any(a.startswith("glue:") for a in as_list(statement["Action"])):
                glue_resources |= {flatten_arn(r) for r in as_list(statement["Resource"])}
    prefix = f"arn:aws:glue:{config.region}:{config.account}"
    expected = {f"{prefix}:catalog"}
    for db in ("silver", "gold", "ops", "live"):
        expected |= {f"{prefix}:database/{db}", f"{prefix}:table/{db}/*"}
    assert glue_resources == expected


def _key_denies(template: Template) -> dict[str, dict]:
    """The lake key policy's deny statements, by the encryption-context key each conditions on."""
    policy = only(template, "AWS::KMS::Key")["KeyPolicy"]["Statement"]
    return {f"{next(iter(s['Condition']['StringLike']))} {sorted(as_list(s['Action']))}": s
            for s in policy if s["Effect"] == "Deny"}


def test_the_key_decrypts_raw_data_and_the_pii_key_for_their_own_roles_only(lake) -> None:
    """One key, each use kept to its roles by the key policy, which holds whatever IAM allows (decision 0226)."""
    env, template = lake
    config = load(env)
    account, region = config.account, config.region

    def roles(*names: str) -> list[str]:
        return [f"arn:aws:iam::{account}:role/{name}" for name in names]

    writers = roles(config.cleaner_for("clickstream"), config.cleaner_for("orders"),
                    config.function_name("api_connector"), config.function_name("file_loader"))
    raw_readers = [*roles(config.resource_name("raw-replay"), config.function_name("replay")), *writers]
    pii_readers = roles(config.cleaner_for("clickstream"), config.cleaner_for("orders"), config.function_name("replay"))
    deploy = roles(f"cdk-hnb659fds-cfn-exec-role-{account}-{region}")
    raw, secret = f"arn:aws:s3:::{bucket_name(config, 'raw')}", \
        f"arn:aws:secretsmanager:{region}:{account}:secret:{config.resource_name('pii-hash-key')}-??????"
    data = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"]
    expected = {
        f"kms:EncryptionContext:aws:s3:arn {data}": ([raw, f"{raw}/*"], raw_readers),
        "kms:EncryptionContext:SecretARN ['kms:Decrypt']": ([secret], pii_readers),
        f"kms:EncryptionContext:SecretARN {data[1:]}": ([secret], deploy),
    }
    denies = _key_denies(template)
    assert set(denies) == set(expected)
    for name, (values, allowed) in expected.items():
        statement = denies[name]
        assert (statement["Principal"], statement["Resource"]) == ({"AWS": "*"}, "*")
        [(context, patterns)] = statement["Condition"]["StringLike"].items()
        assert [flatten_arn(v) for v in as_list(patterns)] == values, name
        assert [flatten_arn(a) for a in statement["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]] == allowed, name


def test_only_prod_logs_the_raw_zones_data_events_to_an_encrypted_private_bucket(lake) -> None:
    env, template = lake
    config = load(env)
    trails = resources(template, "AWS::CloudTrail::Trail")
    if not config.raw_data_events_trail:
        assert env == "dev" and trails == {}
        return
    [trail] = [t["Properties"] for t in trails.values()]
    assert trail["TrailName"] == config.resource_name("raw-audit")
    assert trail["IsLogging"] and trail["EnableLogFileValidation"]
    assert "KMSKeyId" in trail and not trail["IsMultiRegionTrail"]
    [selector] = trail["EventSelectors"]
    assert (selector["IncludeManagementEvents"], selector["ReadWriteType"]) == (False, "All")
    [data] = selector["DataResources"]
    assert data["Type"] == "AWS::S3::Object"
    raw = logical_id(template, "AWS::S3::Bucket", BucketName=bucket_name(config, "raw"))
    assert raw in str(data["Values"])
    audit = logical_id(template, "AWS::S3::Bucket", BucketName=bucket_name(config, "raw-audit"))
    assert trail["S3BucketName"] == {"Ref": audit}
    bucket = resources(template, "AWS::S3::Bucket")[audit]["Properties"]
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"][
        "SSEAlgorithm"] == "aws:kms"
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    assert "LoggingConfiguration" in bucket
    key_policy = only(template, "AWS::KMS::Key")["KeyPolicy"]["Statement"]
    assert any(s.get("Principal") == {"Service": "cloudtrail.amazonaws.com"} and s["Effect"] == "Allow"
               for s in key_policy)
