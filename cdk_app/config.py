"""Environment configuration: the one reader of `cdk.json`'s `lakehouse:environments`.

CDK stacks, the local runtime and the tests all get their settings and resource names from
here, so a name (a stream, a job, a state machine) is spelled once. No aws_cdk import: the
local runtime imports this module without loading the CDK.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from lambdas.data_quality.thresholds import ThresholdError, Thresholds

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CDK_JSON = PROJECT_ROOT / "cdk.json"
CONTEXT_KEY = "lakehouse:environments"
PROJECT = "lakehouse"

# Sources that arrive on Kinesis, each on its own stream with its own cleaner instance.
KINESIS_SOURCES = ("clickstream", "orders")

# Iceberg catalog name, identical in Spark (Glue catalog in AWS, JDBC locally), pyiceberg and SQL.
CATALOG_NAME = "lake"


class ConfigError(ValueError):
    """A bad value in cdk.json or an unknown environment: the message names it."""


# The values only the user knows: their AWS account and their FX-rates API (docs/deploy.md, decision 0223).
# cdk.json holds placeholders for them, so that synth works offline; a deploy must replace them.
USER_KEYS = ("account", "fx_api_base_url")
PLACEHOLDER_ACCOUNTS = frozenset({"123456789012", "210987654321"})
PLACEHOLDER_DOMAIN = "example.com"  # https://fx-rates.example.com/v1 and any other host under it


def user_env_var(env: str, key: str) -> str:
    """The environment variable that sets `key` for `env`, e.g. LAKEHOUSE_DEV_ACCOUNT, LAKEHOUSE_PROD_FX_API_BASE_URL."""
    return f"{PROJECT.upper()}_{env.upper()}_{key.upper()}"


def is_placeholder(key: str, value: object) -> bool:
    """Whether `value` of `key` (account, fx_api_base_url) is one of cdk.json's placeholders."""
    if key == "account":
        return value in PLACEHOLDER_ACCOUNTS
    if key == "fx_api_base_url" and isinstance(value, str):
        host = value.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0].lower()
        return host == PLACEHOLDER_DOMAIN or host.endswith("." + PLACEHOLDER_DOMAIN)
    return False


def user_values(env: str, context: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, str]:
    """The user's values of USER_KEYS for `env`: CDK context (`-c account=...`, which needs `-c env=NAME`
    since it names no environment) before the environment (LAKEHOUSE_<ENV>_ACCOUNT, ...); what neither
    sets is left out, so cdk.json's value stays."""
    found: dict[str, str] = {}
    for key in USER_KEYS:
        if context.get(key) is not None:
            found[key] = str(context[key])
        elif environ.get(user_env_var(env, key)):
            found[key] = environ[user_env_var(env, key)]
    return found


def refuse_placeholders(config: EnvConfig, keys: Sequence[str] = USER_KEYS) -> None:
    """Raise ConfigError naming each of `keys` of `config` that still holds a cdk.json placeholder, and how to
    set it."""
    for key in keys:
        value = getattr(config, key)
        if is_placeholder(key, value):
            raise ConfigError(
                f"environment '{config.name}': '{key}' is the placeholder {value!r} from cdk.json, not a real value. "
                f"Set it with `-c env={config.name} -c {key}=...` or the environment variable "
                f"{user_env_var(config.name, key)} (docs/deploy.md); to synthesize offline with placeholders, "
                "pass `-c offline=true`")


@dataclass(frozen=True)
class Rule:
    """What a setting's value must be: `holds(value)`, and `says` it in words (the error, the reference page)."""
    holds: Callable[[Any], bool]
    says: str


def between(low: int, high: int) -> Rule:
    return Rule(lambda v: low <= v <= high, f"{low} to {high}")


def at_least(low: int) -> Rule:
    return Rule(lambda v: v >= low, f"at least {low:,}")


def one_of(*values: str) -> Rule:
    return Rule(lambda v: v in values, "one of " + ", ".join(values))


def starting_with(*prefixes: str) -> Rule:
    return Rule(lambda v: v.startswith(prefixes), "starting with " + " or ".join(prefixes))


ANY = Rule(lambda v: True, "")
TYPE_WORDS = {int: "a whole number", str: "a string", bool: "true or false", float: "a number"}
SCHEDULE = starting_with("cron(", "rate(")

@dataclass(frozen=True)
class OidcSettings:
    """cdk.json `dashboards.oidc`: an OIDC provider of your own in place of the stack's Cognito user pool. Its
    client secret goes into the secret `lakehouse-<env>-dashboards-oidc-client` after the deploy (docs/dashboards.md)."""
    metadata_url: str  # https://<issuer>/.well-known/openid-configuration
    client_id: str
    groups_claim: str  # the ID token claim listing the user's groups, e.g. "groups"


_OIDC_KEYS = tuple(f.name for f in fields(OidcSettings))


def _oidc(env: str, value: Any) -> OidcSettings | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != set(_OIDC_KEYS) or not all(
            isinstance(v, str) and v.strip() for v in value.values()):
        raise ConfigError(f"environment '{env}': 'dashboards.oidc' must be null (the stack's Cognito user pool) or "
                          f"an object of non-empty strings {list(_OIDC_KEYS)}, got {value!r}")
    if not (value["metadata_url"].startswith("https://")
            and value["metadata_url"].endswith("/.well-known/openid-configuration")):
        raise ConfigError(f"environment '{env}': 'dashboards.oidc.metadata_url' must be the provider's https://"
                          f".../.well-known/openid-configuration, got {value['metadata_url']!r}")
    return OidcSettings(**value)


@dataclass(frozen=True)
class DashboardsSettings:
    """cdk.json `dashboards`: the environment's Superset service."""
    enabled: bool = False
    certificate_arn: str | None = None  # an ACM certificate: HTTPS on the load balancer, HTTP redirected
    # the host name users open (a DNS record pointing at the load balancer, made outside the stack): the
    # certificate's name and the host of the sign-in callback. Set with certificate_arn, or neither.
    domain_name: str | None = None
    min_tasks: int = 1
    max_tasks: int = 1
    oidc: OidcSettings | None = None  # None: sign-in through the stack's Cognito user pool (with HTTPS)


_NULLABLE_DASHBOARDS_KEYS = ("certificate_arn", "domain_name", "oidc")
HOST_NAME = re.compile(r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")
_DASHBOARDS_CHECKS: dict[str, tuple[type | tuple[type, ...], Rule]] = {
    "enabled": (bool, ANY),
    "certificate_arn": ((str, type(None)), Rule(lambda v: v is None or v.startswith("arn:aws") and ":acm:" in v,
                                                "null, or an ACM certificate's ARN (with domain_name)")),
    "domain_name": ((str, type(None)), Rule(lambda v: v is None or bool(HOST_NAME.fullmatch(v)),
                                            "null, or the host name users open (with certificate_arn)")),
    "min_tasks": (int, between(1, 10)),
    "max_tasks": (int, Rule(lambda v: 1 <= v <= 10, "1 to 10, at least min_tasks")),
}


def _dashboards(env: str, value: Any) -> DashboardsSettings:
    """cdk.json's `dashboards` object, or ConfigError naming the bad key."""
    wanted = {f.name for f in fields(DashboardsSettings)}
    if isinstance(value, dict):  # the CDK context (jsii) drops keys whose value is null: null is their default
        value = {**dict.fromkeys(_NULLABLE_DASHBOARDS_KEYS), **value}
    if not isinstance(value, dict) or value.keys() != wanted:
        raise ConfigError(f"environment '{env}': 'dashboards' must be an object with exactly the keys "
                          f"{sorted(wanted)}, got {value!r}")
    for key, (typ, rule) in _DASHBOARDS_CHECKS.items():
        item = value[key]
        if not isinstance(item, typ) or (typ is int and isinstance(item, bool)) or not rule.holds(item):
            raise ConfigError(f"environment '{env}': invalid value {item!r} for 'dashboards.{key}' "
                              f"(expected {rule.says or typ.__name__})")
    if (value["certificate_arn"] is None) != (value["domain_name"] is None):
        raise ConfigError(f"environment '{env}': 'dashboards.certificate_arn' and 'dashboards.domain_name' go "
                          "together (HTTPS needs the name users open), set both or neither")
    if value["min_tasks"] > value["max_tasks"]:
        raise ConfigError(f"environment '{env}': 'dashboards.min_tasks' ({value['min_tasks']}) exceeds "
                          f"'dashboards.max_tasks' ({value['max_tasks']})")
    oidc = _oidc(env, value["oidc"])
    if oidc and value["certificate_arn"] is None:
        raise ConfigError(f"environment '{env}': 'dashboards.oidc' needs 'dashboards.certificate_arn' and "
                          "'dashboards.domain_name': OIDC sign-in is served over HTTPS only")
    return DashboardsSettings(**{**value, "oidc": oidc})


EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")


def _emails(env: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and EMAIL.fullmatch(v) for v in value):
        raise ConfigError(f"environment '{env}': 'alert_emails' must be a list of e-mail addresses, got {value!r}")
    if len(set(value)) != len(value):
        raise ConfigError(f"environment '{env}': 'alert_emails' lists an address twice")
    return tuple(value)


@dataclass(frozen=True)
class EnvConfig:
    name: str
    account: str  # the AWS account the environment deploys to (a placeholder until set: decision 0223)
    region: str  # the AWS region of every stack of the environment
    kinesis_shards: int  # 0 = on-demand capacity
    cleaner_batch_size: int  # records per cleaner invocation, at most (the event source mapping's BatchSize)
    cleaner_batching_window_seconds: int  # how long the mapping gathers records before it invokes
    cleaner_max_retries: int  # retries of a failing batch before it goes to the on-failure queue
    glue_worker_type: Literal["G.1X", "G.2X", "G.4X", "G.8X"]  # the Glue jobs' worker size
    glue_workers: int  # workers per Glue job run
    glue_timeout_minutes: int  # a Glue job run is stopped after this long
    raw_retention_days: int  # the raw zone's records expire after this long (replays reach back this far)
    staging_retention_days: int  # staging's files expire by lifecycle; raw keeps them replayable (decision 0114)
    snapshot_retention_hours: int  # time travel the daily maintenance keeps on every table
    athena_bytes_scanned_cutoff: int  # the analytics workgroup cancels a query that scans more bytes
    removal_policy: Literal["destroy", "retain"]  # what a stack's deletion does to buckets, keys and tables
    msk_enabled: bool  # also ingest from MSK Serverless (Kafka)
    cleaner_max_record_age_seconds: int  # older records go to the on-failure queue unprocessed (-1: never)
    fx_api_base_url: str  # the FX-rates HTTP API; locally a fixture server replaces it
    fx_schedule: str  # EventBridge Scheduler expression of the FX connector
    batch_schedule: str  # EventBridge Scheduler expression of the batch pipeline
    quality: Thresholds  # the data-quality limits (lambdas/data_quality/thresholds.py)
    # IAM role/user ARNs (ArnLike patterns) that may assume the operators' replay role, which reads raw PII;
    # empty: nobody can (docs/security.md, decision 0225)
    replay_principals: tuple[str, ...] = ()
    # CloudTrail data events (every read and write) on the raw bucket, to an encrypted private bucket (decision 0229)
    raw_data_events_trail: bool = False
    # e-mail addresses subscribed to the alarm and alert topics (each confirms by e-mail); none by default
    alert_emails: tuple[str, ...] = ()
    # the heartbeat alarm fires when no batch run has succeeded for this many hours
    batch_heartbeat_hours: int = 3
    # Superset on ECS Fargate (cdk_app/dashboards.py, docs/dashboards.md)
    dashboards: DashboardsSettings = field(default_factory=lambda: DashboardsSettings())
    # the live committer's cadence per live table (decision 0504): a delivery whose oldest notification is younger
    # waits until it is this old, then commits with what arrived meanwhile. 0..60 s; 0 (the default) commits every
    # delivery. At most 60, so a deferred message stays well under the commit-lag alarm (oldest message >= 120 s).
    live_commit_every_seconds: int = 0

    def resource_name(self, component: str) -> str:
        """Physical name of a resource, e.g. `lakehouse-dev-cleaner`."""
        return f"{PROJECT}-{self.name}-{component}"

    @property
    def stream_name(self) -> str:
        """The clickstream's Kinesis stream."""
        return self.stream_for("clickstream")

    def stream_for(self, source: str) -> str:
        """Each Kinesis source has its own stream (one contract per stream): clickstream, orders."""
        return self.resource_name("events" if source == "clickstream" else source)

    def cleaner_for(self, source: str) -> str:
        """Each Kinesis source has its own instance of the cleaner (lambdas/cleaner/, SOURCE=source)."""
        return self.function_name("cleaner") if source == "clickstream" else self.function_name(f"cleaner_{source}")

    def cleaner_dead_letter_queue_for(self, source: str) -> str:
        """The on-failure queue of a Kinesis source's cleaner mapping: the batches it gave up on."""
        return f"{self.cleaner_for(source)}-dlq"

    @property
    def state_machine_name(self) -> str:
        return self.resource_name("batch-pipeline")

    @property
    def replay_state_machine_name(self) -> str:
        """The replay workflow: a time range of the raw zone re-cleaned and merged again (cdk_app/replay.py)."""
        return self.resource_name("replay")

    @property
    def workgroup_name(self) -> str:
        """Athena workgroup of the analytics stack: queries of people, dashboards and the quality checks."""
        return self.resource_name("analytics")

    @property
    def quality_workgroup_name(self) -> str:
        """Athena workgroup of the data_quality function alone: its own results prefix (decision 0228)."""
        return self.resource_name("data-quality")

    @property
    def live_commit_queue_name(self) -> str:
        """The live committer's SQS FIFO queue (a FIFO queue's name must end in .fifo), decision 0500."""
        return self.resource_name("live-commits") + ".fifo"

    @property
    def alert_topic_name(self) -> str:
        """SNS topic of the batch pipeline's alerts: a failed step, failed data-quality checks."""
        return self.resource_name("pipeline-alerts")

    def function_name(self, function: str) -> str:
        """Lambda function name; `function` is the folder name under lambdas/."""
        return self.resource_name(function.replace("_", "-"))

    def glue_job_name(self, job: str) -> str:
        """Glue job name; `job` is the script name under glue_jobs/ (without .py)."""
        return self.resource_name(job.replace("_", "-"))


# Every scalar setting of an environment: its type and its rule (docs/reference/config.md is made from these).
_CHECKS: dict[str, tuple[type, Rule]] = {
    "kinesis_shards": (int, Rule(lambda v: 0 <= v <= 500, "0 (on-demand) to 500")),
    "cleaner_batch_size": (int, between(1, 10000)),
    "cleaner_batching_window_seconds": (int, between(0, 300)),
    "cleaner_max_retries": (int, between(0, 10000)),
    "glue_worker_type": (str, one_of("G.1X", "G.2X", "G.4X", "G.8X")),
    "glue_workers": (int, between(2, 299)),
    "glue_timeout_minutes": (int, between(1, 2880)),
    "raw_retention_days": (int, at_least(1)),
    "staging_retention_days": (int, Rule(lambda v: v >= 2, "at least 2, at most raw_retention_days")),
    "snapshot_retention_hours": (int, at_least(1)),
    "athena_bytes_scanned_cutoff": (int, at_least(10_000_000)),
    "removal_policy": (str, one_of("destroy", "retain")),
    "msk_enabled": (bool, ANY),
    "cleaner_max_record_age_seconds": (int, Rule(lambda v: v == -1 or 60 <= v <= 604800,
                                                 "-1 (no limit) or 60 to 604800")),
    "fx_api_base_url": (str, starting_with("https://", "http://127.0.0.1")),
    "fx_schedule": (str, SCHEDULE),
    "batch_schedule": (str, SCHEDULE),
    "account": (str, Rule(lambda v: len(v) == 12 and v.isdigit(), "12 digits")),
    "region": (str, Rule(bool, "an AWS region")),
    "raw_data_events_trail": (bool, ANY),
    "batch_heartbeat_hours": (int, between(1, 24)),  # a CloudWatch alarm looks back one day at most
    "live_commit_every_seconds": (int, between(0, 60)),  # at most half the commit-lag alarm's 120 s
}

# A role or user of some account, by ARN; `*` allowed in the path or name (ArnLike: SSO roles carry a random suffix)
# but not as the whole name, which would trust every role of that account.
PRINCIPAL_ARN = re.compile(r"arn:aws(?:-[a-z]+)*:iam::\d{12}:(?:role|user)/(?:[\w+=,.@-]+/)*[\w+=,.@-][\w+=,.@*-]*")


def _principals(env: str, key: str, value: Any) -> tuple[str, ...]:
    """`value` as a tuple of principal ARNs, or ConfigError naming the bad entry."""
    if not isinstance(value, list):
        raise ConfigError(f"environment '{env}': '{key}' must be a list of IAM role or user ARNs, got {value!r}")
    for item in value:
        if not isinstance(item, str) or not PRINCIPAL_ARN.fullmatch(item):
            raise ConfigError(f"environment '{env}': '{key}' holds {item!r}, which is not an IAM role or user ARN "
                              "(arn:aws:iam::<12 digits>:role/NAME or :user/NAME; `*` only inside the name)")
    if len(set(value)) != len(value):
        raise ConfigError(f"environment '{env}': '{key}' lists a principal twice")
    return tuple(value)


def environments(context: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """The raw environment table, from a CDK context dict or from cdk.json."""
    if context is None:
        context = json.loads(CDK_JSON.read_text())["context"]
    envs = context.get(CONTEXT_KEY)
    if not isinstance(envs, dict) or not envs:
        raise ConfigError(f"cdk.json: context '{CONTEXT_KEY}' must map environment names to settings")
    return envs


def load(env: str, context: dict[str, Any] | None = None, overrides: Mapping[str, str] | None = None) -> EnvConfig:
    """Validated settings of one environment; raises ConfigError naming the bad key.

    `overrides` (the user's values, see `user_values`) replace cdk.json's values of USER_KEYS, and are
    validated like them."""
    envs = environments(context)
    if env not in envs:
        raise ConfigError(f"unknown environment '{env}': cdk.json defines {', '.join(sorted(envs))}")
    raw = envs[env]
    if overrides:
        if not overrides.keys() <= set(USER_KEYS):
            raise ConfigError(f"environment '{env}': only {list(USER_KEYS)} can be overridden, "
                              f"not {sorted(overrides.keys() - set(USER_KEYS))}")
        raw = {**raw, **overrides}
    wanted = {f.name for f in fields(EnvConfig)} - {"name"}
    missing, unknown = wanted - raw.keys(), raw.keys() - wanted
    if missing or unknown:
        raise ConfigError(f"environment '{env}': missing keys {sorted(missing)}, unknown keys {sorted(unknown)}")
    for key, (typ, rule) in _CHECKS.items():
        value = raw[key]
        if not isinstance(value, typ) or (typ is int and isinstance(value, bool)) or not rule.holds(value):
            expected = ", ".join(filter(None, (TYPE_WORDS[typ], rule.says)))
            raise ConfigError(f"environment '{env}': invalid value {value!r} for '{key}' (expected {expected})")
    if raw["staging_retention_days"] > raw["raw_retention_days"]:
        raise ConfigError(f"environment '{env}': 'staging_retention_days' ({raw['staging_retention_days']}) must not "
                          f"exceed 'raw_retention_days' ({raw['raw_retention_days']}): staging that expires before "
                          "it is merged is replayed from raw")
    try:
        quality = Thresholds.from_mapping(raw["quality"], f"environment '{env}': quality")
    except ThresholdError as err:
        raise ConfigError(str(err)) from None
    return EnvConfig(name=env, **{**raw, "quality": quality,
                                  "replay_principals": _principals(env, "replay_principals", raw["replay_principals"]),
                                  "alert_emails": _emails(env, raw["alert_emails"]),
                                  "dashboards": _dashboards(env, raw["dashboards"])})
