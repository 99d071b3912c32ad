"""Lake stack: the lake's KMS key, its zone buckets, the Glue databases and the Iceberg tables."""
from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cdk_app.config import EnvConfig
from cdk_app.file_loader import LANDING, landing_bucket_name
from cdk_app.audit_trail import RawDataEventsTrail
from cdk_app.cleaner import pii_key_readers, pii_key_secret_arn_pattern
from cdk_app.grants import bucket_arn, deploy_role_arn
from cdk_app.nag import acknowledge
from cdk_app.raw_zone import raw_readers, restrict_raw_access
from cdk_app.secure_bucket import access_log_bucket, bucket_name, removal_policy, secure_bucket
from cdk_app.table_migrator import TableMigrator
from iceberg_tables.specs import MIGRATED_TABLES
from lambdas.contracts.lake_layout import BATCH_SOURCES, staged_prefixes

# Iceberg namespaces = Glue databases, as the table specs name them (the batch's and the live tables').
DATABASES: tuple[str, ...] = tuple(sorted({table.namespace for table in MIGRATED_TABLES}))


def warehouse_prefix(database: str) -> str:
    """Folder of a database's tables in the warehouse bucket (tables default to their database's location)."""
    return f"{database}.db/"


# What a principal does with the key to read (Decrypt) or write (the rest) data under it.
KEY_DATA_ACTIONS = ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*")
ENCRYPTION_CONTEXT = "kms:EncryptionContext:"


def restrict_key_use(key: kms.Key, env: EnvConfig) -> None:
    """One key, each use kept to its own principals by the key policy (decision 0226): data under the raw
    bucket's encryption context only for the raw zone's roles, the PII key's plaintext only for its readers,
    a new PII key value only from CloudFormation. A deny in the key policy holds whatever an IAM policy allows
    (an admin's kms:* on *); every other use of the key is left to IAM, as the default key policy does."""
    stack = Stack.of(key)
    raw = bucket_arn(key, bucket_name(env, "raw")).value
    uses = (
        ("aws:s3:arn", [raw, f"{raw}/*"], KEY_DATA_ACTIONS, raw_readers(key, env)),
        ("SecretARN", [pii_key_secret_arn_pattern(stack, env)], ("kms:Decrypt",), pii_key_readers(stack, env)),
        ("SecretARN", [pii_key_secret_arn_pattern(stack, env)], tuple(a for a in KEY_DATA_ACTIONS if a != "kms:Decrypt"),
         [deploy_role_arn(stack).value]),
    )
    for context, values, actions, allowed in uses:
        key.add_to_resource_policy(iam.PolicyStatement(
            effect=iam.Effect.DENY, principals=[iam.AnyPrincipal()], actions=list(actions),
            resources=["*"],  # in a key policy, "*" is this key
            conditions={"StringLike": {f"{ENCRYPTION_CONTEXT}{context}": values},
                        "ArnNotEquals": {"aws:PrincipalArn": allowed}},
        ))


class LakeStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, env_config: EnvConfig, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        env = env_config
        self.key = kms.Key(
            self, "Key",
            alias=f"alias/{env.resource_name('lake')}",
            description=f"Encrypts the {env.name} lakehouse: buckets, stream, queues, logs",
            enable_key_rotation=True,
            removal_policy=removal_policy(env),
        )
        # CloudWatch Logs encrypts this account's log groups with the key, and only those
        self.key.add_to_resource_policy(iam.PolicyStatement(
            principals=[iam.ServicePrincipal(f"logs.{self.region}.amazonaws.com")],
            actions=["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
            resources=["*"],  # in a key policy, "*" is this key
            conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn":
                                    f"arn:{self.partition}:logs:{self.region}:{self.account}:log-group:*"}},
        ))
        # CloudWatch alarms publish to SNS topics encrypted with this key (cdk_app/alarms.py). The
        # statement AWS documents for it, unconditioned: the topics' own policies decide who publishes.
        self.key.add_to_resource_policy(iam.PolicyStatement(
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["kms:Decrypt", "kms:GenerateDataKey*"],
            resources=["*"],
        ))
        restrict_key_use(self.key, env)
        self.access_logs = access_log_bucket(self, "AccessLogs", env=env)
        # the landing bucket lives beside its loader in the ingestion stack (see cdk_app/file_loader.py)
        self.access_logs.add_to_resource_policy(iam.PolicyStatement(
            principals=[iam.ServicePrincipal("logging.s3.amazonaws.com")],
            actions=["s3:PutObject"],
            resources=[self.access_logs.arn_for_objects(f"{LANDING}/*")],
            conditions={"ArnLike": {"aws:SourceArn": bucket_arn(self, landing_bucket_name(env)).value},
                        "StringEquals": {"aws:SourceAccount": self.account}},
        ))
        acknowledge(self.access_logs, {
            "AwsSolutions-S1": "This is the server-access-log target of the other buckets; logging it into "
                               "itself would loop.",
        })

        def zone(construct_id: str, purpose: str, *rules: s3.LifecycleRule) -> s3.Bucket:
            return secure_bucket(self, construct_id, env=env, purpose=purpose, key=self.key,
                                 access_logs=self.access_logs, lifecycle_rules=rules)

        # literal names for policies in other stacks (see cdk_app/grants.py)
        self.bucket_names = {zone_: bucket_name(env, zone_) for zone_ in ("raw", "staging", "warehouse", "athena-results")}
        self.raw = zone("Raw", "raw", s3.LifecycleRule(id="expire-raw", expiration=Duration.days(env.raw_retention_days)))
        restrict_raw_access(self.raw, env)
        if env.raw_data_events_trail:
            self.raw_audit = RawDataEventsTrail(self, "RawAudit", env=env, key=self.key, raw=self.raw,
                                                access_logs=self.access_logs)
        # Staged batches expire once merged many times over; what a source could not merge in that time is replayed
        # from raw, which keeps it longer (config). The redelivery marks (positions/) stay: one per shard.
        self.staging = zone("Staging", "staging", *(
            s3.LifecycleRule(id=f"expire-{prefix.rstrip('/').replace('/', '-')}", prefix=prefix,
                             expiration=Duration.days(env.staging_retention_days))
            for source in BATCH_SOURCES for prefix in staged_prefixes(source)))
        self.warehouse = zone("Warehouse", "warehouse")
        self.athena_results = zone("AthenaResults", "athena-results",
                                   s3.LifecycleRule(id="expire-results", expiration=Duration.days(30)))

        self.databases = {
            name: glue.CfnDatabase(
                self, f"{name.capitalize()}Database",
                catalog_id=self.account,
                database_input=glue.CfnDatabase.DatabaseInputProperty(
                    name=name,
                    description=f"Iceberg tables of the {name} layer ({env.name})",
                    location_uri=f"s3://{self.bucket_names['warehouse']}/{warehouse_prefix(name)}",
                ),
            )
            for name in DATABASES
        }
        self.table_migrator = TableMigrator(
            self, "Tables", env=env, key=self.key, warehouse_bucket=self.bucket_names["warehouse"],
            databases=self.databases,
        )
        self.table_migrator.node.add_dependency(self.warehouse)
