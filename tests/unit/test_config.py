"""Environment config: every environment in cdk.json loads, and bad config names the problem."""
from __future__ import annotations

import copy
import json

import pytest

from cdk_app import config


def _context() -> dict:
    return json.loads(config.CDK_JSON.read_text())["context"]


@pytest.mark.parametrize("env", ["local", "dev", "prod"])
def test_every_environment_in_cdk_json_is_valid(env: str) -> None:
    loaded = config.load(env)
    assert loaded.name == env
    assert loaded.stream_name == f"lakehouse-{env}-events"
    assert loaded.function_name("record_run") == f"lakehouse-{env}-record-run"
    assert loaded.glue_job_name("silver_merge") == f"lakehouse-{env}-silver-merge"


def test_unknown_environment_lists_the_known_ones() -> None:
    with pytest.raises(config.ConfigError, match="unknown environment 'qa': cdk.json defines dev, local, prod"):
        config.load("qa")


def test_missing_and_unknown_keys_are_named() -> None:
    context = copy.deepcopy(_context())
    dev = context[config.CONTEXT_KEY]["dev"]
    del dev["glue_workers"]
    dev["glue_wrokers"] = 3
    with pytest.raises(config.ConfigError, match=r"missing keys \['glue_workers'\], unknown keys \['glue_wrokers'\]"):
        config.load("dev", context)


@pytest.mark.parametrize(("key", "value"), [
    ("glue_workers", 1), ("glue_workers", "2"), ("glue_worker_type", "G.3X"), ("cleaner_batch_size", 0),
    ("account", "12345"), ("removal_policy", "keep"), ("kinesis_shards", True), ("snapshot_retention_hours", 0),
    ("staging_retention_days", 1),
])
def test_invalid_values_are_named(key: str, value: object) -> None:
    context = copy.deepcopy(_context())
    context[config.CONTEXT_KEY]["prod"][key] = value
    with pytest.raises(config.ConfigError, match=f"environment 'prod': invalid value .* for '{key}'"):
        config.load("prod", context)


def test_staging_cannot_outlive_raw() -> None:
    """Staging that expires unmerged is replayed from raw, so raw must keep it at least as long."""
    context = copy.deepcopy(_context())
    context[config.CONTEXT_KEY]["dev"].update(raw_retention_days=10, staging_retention_days=11)
    with pytest.raises(config.ConfigError, match=r"'staging_retention_days' \(11\) must not exceed 'raw_retention_days' \(10\)"):
        config.load("dev", context)


def test_missing_environment_table_is_explained() -> None:
    with pytest.raises(config.ConfigError, match="must map environment names"):
        config.load("dev", {})


def test_each_kinesis_source_has_its_stream_and_cleaner() -> None:
    env = config.load("dev")
    assert [env.stream_for(s) for s in config.KINESIS_SOURCES] == ["lakehouse-dev-events", "lakehouse-dev-orders"]
    assert [env.cleaner_for(s) for s in config.KINESIS_SOURCES] == ["lakehouse-dev-cleaner",
                                                                     "lakehouse-dev-cleaner-orders"]


def test_each_environment_has_a_batch_schedule_and_quality_limits() -> None:
    dev, prod = config.load("dev"), config.load("prod")
    assert dev.batch_schedule.startswith("cron(") and prod.batch_schedule.startswith("cron(")
    # production is held to a fresher lake and cleaner data than dev
    assert prod.quality.freshness_max_age_minutes < dev.quality.freshness_max_age_minutes
    assert prod.quality.order_freshness_max_age_minutes < dev.quality.order_freshness_max_age_minutes
    assert prod.quality.fx_rate_freshness_max_age_hours < dev.quality.fx_rate_freshness_max_age_hours
    assert prod.quality.min_volume_ratio > dev.quality.min_volume_ratio
    assert prod.quality.max_null_user_agent_rate <= dev.quality.max_null_user_agent_rate
    assert all(prod.quality.max_quarantine_rate[s] <= dev.quality.max_quarantine_rate[s]
               for s in dev.quality.max_quarantine_rate)


@pytest.mark.parametrize(("quality", "match"), [
    ({"max_null_user_agent_rate": 2}, r"environment 'dev': quality: invalid value 2 for 'max_null_user_agent_rate'"),
    ({"freshness_max_age_minutes": 0.5}, "invalid value 0.5 for 'freshness_max_age_minutes'"),
    ({"max_orphans": 0}, r"unknown keys \['max_orphans'\]"),
    ({"max_quarantine_rate": {"clickstream": 0.1}},
     r"environment 'dev': quality: max_quarantine_rate: missing keys \['fx_rates', 'orders', 'products'\]"),
])
def test_bad_quality_limits_are_named(quality: dict, match: str) -> None:
    context = copy.deepcopy(_context())
    context[config.CONTEXT_KEY]["dev"]["quality"].update(quality)
    with pytest.raises(config.ConfigError, match=match):
        config.load("dev", context)


def test_a_bad_batch_schedule_is_named() -> None:
    context = copy.deepcopy(_context())
    context[config.CONTEXT_KEY]["dev"]["batch_schedule"] = "hourly"
    with pytest.raises(config.ConfigError, match="invalid value 'hourly' for 'batch_schedule'"):
        config.load("dev", context)


# The user's account and FX URL (docs/deploy.md, decision 0223): cdk.json holds placeholders for them.
REAL_ACCOUNT, REAL_FX_URL = "111122223333", "https://fx.internal.invalid/v1"


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_a_placeholder_account_is_refused_saying_how_to_set_it(env: str) -> None:
    with pytest.raises(config.ConfigError) as refused:
        config.refuse_placeholders(config.load(env))
    message = str(refused.value)
    assert f"environment '{env}': 'account' is the placeholder" in message
    assert f"-c env={env} -c account=..." in message and f"LAKEHOUSE_{env.upper()}_ACCOUNT" in message
    assert "-c offline=true" in message and "docs/deploy.md" in message


def test_a_placeholder_fx_url_is_refused_once_the_account_is_real() -> None:
    with pytest.raises(config.ConfigError, match=r"'fx_api_base_url' is the placeholder "
                                                 r"'https://fx-rates\.example\.com/v1'.*LAKEHOUSE_DEV_FX_API_BASE_URL"):
        config.refuse_placeholders(config.load("dev", overrides={"account": REAL_ACCOUNT}))


def test_the_users_values_replace_the_placeholders_context_before_environment() -> None:
    environ = {"LAKEHOUSE_DEV_ACCOUNT": "999988887777", "LAKEHOUSE_DEV_FX_API_BASE_URL": REAL_FX_URL,
               "LAKEHOUSE_PROD_ACCOUNT": "444455556666"}
    values = config.user_values("dev", {"account": REAL_ACCOUNT}, environ)
    assert values == {"account": REAL_ACCOUNT, "fx_api_base_url": REAL_FX_URL}
    dev = config.load("dev", overrides=values)
    assert (dev.account, dev.fx_api_base_url) == (REAL_ACCOUNT, REAL_FX_URL)
    config.refuse_placeholders(dev)  # nothing left to refuse
    assert config.user_values("dev", {}, {}) == {}  # neither set: cdk.json's value stays


def test_the_users_values_are_validated_like_cdk_jsons() -> None:
    with pytest.raises(config.ConfigError, match=r"environment 'dev': invalid value '12345' for 'account'"):
        config.load("dev", overrides={"account": "12345"})
    with pytest.raises(config.ConfigError, match=r"only \['account', 'fx_api_base_url'\] can be overridden"):
        config.load("dev", overrides={"region": "us-east-2"})


def test_the_local_environment_has_no_placeholder() -> None:
    config.refuse_placeholders(config.load("local"))  # moto's account and the fixture server are real locally
    assert not config.is_placeholder("fx_api_base_url", "https://example.community/v1")
    assert config.is_placeholder("fx_api_base_url", "https://EXAMPLE.com:8443/v1")


# Who may assume the replay role (decision 0225): IAM role or user ARNs, `*` only inside a name.
@pytest.mark.parametrize("principals", [
    ["arn:aws:iam::111122223333:role/lakehouse-operator"],
    ["arn:aws:iam::111122223333:user/alice", "arn:aws-us-gov:iam::444455556666:role/ops/replayer"],
    ["arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_Ops_*"],
])
def test_replay_principals_are_role_or_user_arns(principals: list[str]) -> None:
    context = copy.deepcopy(_context())
    context[config.CONTEXT_KEY]["prod"]["replay_principals"] = principals
    assert config.load("prod", context).replay_principals == tuple(principals)


@pytest.mark.parametrize("principals", [
    "arn:aws:iam::111122223333:role/ops",  # not a list
    ["*"], ["111122223333"], ["arn:aws:iam::111122223333:root"], ["arn:aws:iam::111122223333:role/*"],
    ["arn:aws:sts::111122223333:assumed-role/ops/me"], ["arn:aws:iam::1111:role/ops"],
    ["arn:aws:iam::111122223333:role/ops", "arn:aws:iam::111122223333:role/ops"],
])
def test_a_bad_replay_principal_is_named(principals: object) -> None:
    context = copy.deepcopy(_context())
    context[config.CONTEXT_KEY]["prod"]["replay_principals"] = principals
    with pytest.raises(config.ConfigError, match="environment 'prod': 'replay_principals'"):
        config.load("prod", context)


def test_nobody_may_replay_by_default_and_only_prod_audits_raw_reads() -> None:
    assert {env: config.load(env).replay_principals for env in ("local", "dev", "prod")} == {
        "local": (), "dev": (), "prod": ()}
    assert {env: config.load(env).raw_data_events_trail for env in ("local", "dev", "prod")} == {
        "local": False, "dev": False, "prod": True}
    assert config.load("dev").quality_workgroup_name == "lakehouse-dev-data-quality"


def test_alerts_and_dashboards_settings_have_safe_defaults() -> None:
    settings = {env: config.load(env) for env in ("local", "dev", "prod")}
    assert {env: c.alert_emails for env, c in settings.items()} == {"local": (), "dev": (), "prod": ()}
    assert {env: c.dashboards.enabled for env, c in settings.items()} == {"local": False, "dev": True, "prod": True}
    assert all(c.dashboards.certificate_arn is None and c.dashboards.domain_name is None for c in settings.values())


CERTIFICATE = "arn:aws:acm:eu-west-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
OIDC = {"metadata_url": "https://idp.example.org/.well-known/openid-configuration", "client_id": "superset",
        "groups_claim": "groups"}


def test_https_dashboards_take_a_certificate_and_the_name_users_open() -> None:
    context = copy.deepcopy(_context())
    context[config.CONTEXT_KEY]["dev"]["dashboards"].update(certificate_arn=CERTIFICATE,
                                                             domain_name="dashboards.example.org")
    settings = config.load("dev", context).dashboards
    assert (settings.certificate_arn, settings.domain_name) == (CERTIFICATE, "dashboards.example.org")
    assert settings.oidc is None  # the stack's Cognito user pool


def test_dashboards_can_sign_in_through_another_oidc_provider() -> None:
    context = copy.deepcopy(_context())
    context[config.CONTEXT_KEY]["dev"]["dashboards"].update(certificate_arn=CERTIFICATE,
                                                             domain_name="dashboards.example.org", oidc=OIDC)
    assert config.load("dev", context).dashboards.oidc == config.OidcSettings(**OIDC)


def test_the_live_commit_cadence_is_off_locally_and_at_most_half_the_commit_lag_alarm_in_aws() -> None:
    assert config.load("local").live_commit_every_seconds == 0  # every delivery commits: local freshness unchanged
    assert all(0 < config.load(env).live_commit_every_seconds <= 60 for env in ("dev", "prod"))  # decision 0504


@pytest.mark.parametrize(("key", "value", "message"), [
    ("alert_emails", "ops@example.org", "'alert_emails' must be a list of e-mail addresses"),
    ("alert_emails", ["not-an-address"], "'alert_emails' must be a list of e-mail addresses"),
    ("alert_emails", ["a@example.org", "a@example.org"], "'alert_emails' lists an address twice"),
    ("batch_heartbeat_hours", 0, "invalid value 0 for 'batch_heartbeat_hours'"),
    ("batch_heartbeat_hours", 25, "invalid value 25 for 'batch_heartbeat_hours'"),
    ("live_commit_every_seconds", -1, "invalid value -1 for 'live_commit_every_seconds'"),
    ("live_commit_every_seconds", 61, "invalid value 61 for 'live_commit_every_seconds'"),  # the alarm is 120 s
    ("live_commit_every_seconds", 2.5, "invalid value 2.5 for 'live_commit_every_seconds'"),
    ("dashboards", True, "'dashboards' must be an object with exactly the keys"),
    ("dashboards", {"enabled": True}, "'dashboards' must be an object with exactly the keys"),
    ("dashboards", {"enabled": "yes", "certificate_arn": None, "domain_name": None, "min_tasks": 1, "max_tasks": 1},
     "invalid value 'yes' for 'dashboards.enabled'"),
    ("dashboards", {"enabled": True, "certificate_arn": "my-cert", "domain_name": None, "min_tasks": 1, "max_tasks": 1},
     "invalid value 'my-cert' for 'dashboards.certificate_arn'"),
    ("dashboards", {"enabled": True, "certificate_arn": None, "domain_name": None, "min_tasks": 3, "max_tasks": 2},
     "'dashboards.min_tasks' \\(3\\) exceeds 'dashboards.max_tasks' \\(2\\)"),
    ("dashboards", {"enabled": True, "certificate_arn": None, "domain_name": "Not A Host", "min_tasks": 1,
                    "max_tasks": 1}, "invalid value 'Not A Host' for 'dashboards.domain_name'"),
    ("dashboards", {"enabled": True, "certificate_arn": None, "domain_name": "dashboards.example.org",
                    "min_tasks": 1, "max_tasks": 1},
     "'dashboards.certificate_arn' and 'dashboards.domain_name' go together"),
    ("dashboards", {"enabled": True, "certificate_arn": CERTIFICATE, "domain_name": None, "min_tasks": 1,
                    "max_tasks": 1}, "'dashboards.certificate_arn' and 'dashboards.domain_name' go together"),
    ("dashboards", {"enabled": True, "certificate_arn": None, "domain_name": None, "min_tasks": 1, "max_tasks": 1,
                    "oidc": OIDC}, "'dashboards.oidc' needs 'dashboards.certificate_arn'"),
    ("dashboards", {"enabled": True, "certificate_arn": CERTIFICATE, "domain_name": "dashboards.example.org",
                    "min_tasks": 1, "max_tasks": 1, "oidc": {**OIDC, "client_id": ""}},
     "'dashboards.oidc' must be null \\(the stack's Cognito user pool\\) or an object"),
    ("dashboards", {"enabled": True, "certificate_arn": CERTIFICATE, "domain_name": "dashboards.example.org",
                    "min_tasks": 1, "max_tasks": 1, "oidc": {**OIDC, "metadata_url": "http://idp.example.org"}},
     "'dashboards.oidc.metadata_url' must be the provider's https://"),
])
def test_a_bad_alerts_or_dashboards_setting_is_named(key: str, value: object, message: str) -> None:
    context = copy.deepcopy(_context())
    context[config.CONTEXT_KEY]["dev"][key] = value
    with pytest.raises(config.ConfigError, match=f"environment 'dev': {message}"):
        config.load("dev", context)


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("glue_workers", 1, "(expected a whole number, 2 to 299)"),
    ("glue_worker_type", "G.3X", "(expected a string, one of G.1X, G.2X, G.4X, G.8X)"),
    ("kinesis_shards", True, "(expected a whole number, 0 (on-demand) to 500)"),
    ("msk_enabled", "yes", "(expected true or false)"),
])
def test_a_bad_value_is_refused_with_what_is_expected(key: str, value: object, expected: str) -> None:
    raw = config.environments()
    context = {config.CONTEXT_KEY: {**raw, "dev": {**raw["dev"], key: value}}}
    with pytest.raises(config.ConfigError) as refused:
        config.load("dev", context)
    assert str(refused.value) == f"environment 'dev': invalid value {value!r} for '{key}' {expected}"
