"""The FX connector's configuration: every required variable named, TLS enforced, numbers checked."""
from __future__ import annotations

import pytest

from lambdas.api_connector.handler import ConfigurationError, Settings
from lambdas.api_connector.retry import RetryPolicy

REQUIRED = {
    "FX_API_BASE_URL": "https://fx-rates.example.com/v1", "FX_API_SECRET_ID": "lakehouse-dev-fx-api-key",
    "RAW_URI": "s3://raw-bucket", "STAGING_URI": "s3://staging-bucket", "POWERTOOLS_METRICS_NAMESPACE": "lakehouse",
}
OPTIONAL = ("FX_API_TIMEOUT_SECONDS", "FX_API_MAX_ATTEMPTS", "FX_API_BACKOFF_BASE_SECONDS", "FX_API_BACKOFF_MAX_SECONDS")


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for key, value in REQUIRED.items():
        monkeypatch.setenv(key, value)
    for key in OPTIONAL:
        monkeypatch.delenv(key, raising=False)
    return monkeypatch


def test_defaults(env: pytest.MonkeyPatch) -> None:
    settings = Settings.from_env()
    assert (settings.base_url, settings.secret_id) == (REQUIRED["FX_API_BASE_URL"], REQUIRED["FX_API_SECRET_ID"])
    assert (settings.locations.raw_uri, settings.locations.staging_uri) == ("s3://raw-bucket", "s3://staging-bucket")
    assert settings.timeout == 10.0 and settings.policy == RetryPolicy()


def test_the_retry_policy_and_timeout_come_from_the_environment(env: pytest.MonkeyPatch) -> None:
    for key, value in zip(OPTIONAL, ("2.5", "6", "0.1", "3")):
        env.setenv(key, value)
    settings = Settings.from_env()
    assert settings.timeout == 2.5
    assert (settings.policy.max_attempts, settings.policy.base_delay, settings.policy.max_delay) == (6, 0.1, 3.0)


def test_every_missing_variable_is_named(env: pytest.MonkeyPatch) -> None:
    env.delenv("FX_API_SECRET_ID")
    env.delenv("STAGING_URI")
    with pytest.raises(ConfigurationError, match="not set: FX_API_SECRET_ID, STAGING_URI"):
        Settings.from_env()


@pytest.mark.parametrize("url", ["http://fx-rates.example.com/v1", "http://10.0.0.5/v1", "ftp://127.0.0.1/v1",
                                 "https:///v1", "fx-rates.example.com"])
def test_the_key_never_travels_without_tls_except_to_the_loopback_fixture(env: pytest.MonkeyPatch, url: str) -> None:
    env.setenv("FX_API_BASE_URL", url)
    with pytest.raises(ConfigurationError, match="FX_API_BASE_URL must be https://"):
        Settings.from_env()


@pytest.mark.parametrize("url", ["http://127.0.0.1:8123/v1", "http://localhost:8123/v1"])
def test_plain_http_is_allowed_on_loopback(env: pytest.MonkeyPatch, url: str) -> None:
    env.setenv("FX_API_BASE_URL", url)
    assert Settings.from_env().base_url == url


@pytest.mark.parametrize("key, value, fragment", [
    ("FX_API_TIMEOUT_SECONDS", "ten", "FX_API_TIMEOUT_SECONDS must be a number, got 'ten'"),
    ("FX_API_TIMEOUT_SECONDS", "0", "FX_API_TIMEOUT_SECONDS must be > 0"),
    ("FX_API_MAX_ATTEMPTS", "0", "max_attempts must be >= 1"),
    ("FX_API_BACKOFF_BASE_SECONDS", "60", "need 0 <= base_delay <= max_delay"),
])
def test_a_bad_number_is_named(env: pytest.MonkeyPatch, key: str, value: str, fragment: str) -> None:
    env.setenv(key, value)
    with pytest.raises(ConfigurationError) as error:
        Settings.from_env()
    assert fragment in str(error.value)
