"""Each function's environment, as CDK and the local runtime build it (lambdas/common/environment.py),
is what its handler reads: set it alone, and the handler's settings come out of it."""
from __future__ import annotations

import pytest

from lambdas.api_connector.handler import Settings as ConnectorSettings
from lambdas.cleaner.handler import ConfigurationError
from lambdas.cleaner.handler import Settings as CleanerSettings
from lambdas.common import environment
from lambdas.file_loader.handler import Settings as LoaderSettings

RAW, STAGING, LANDING = "s3://example-raw", "s3://example-staging", "s3://example-landing"
POWERTOOLS = environment.powertools("a-function", "Example")


def _only(monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]) -> None:
    for name in vars(environment).values():
        if isinstance(name, str) and name.isupper():
            monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)


def test_the_cleaners_environment_gives_its_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    _only(monkeypatch, {**environment.cleaner(RAW, STAGING, "orders"), **POWERTOOLS})
    settings = CleanerSettings.from_env()
    assert (settings.locations.raw_uri, settings.locations.staging_uri) == (RAW, STAGING)
    assert settings.source.name == "orders" and settings.metrics_namespace == "Example"


def test_outside_local_the_cleaner_needs_the_secret_the_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    _only(monkeypatch, {**environment.cleaner(RAW, STAGING, "clickstream"), **POWERTOOLS,
                        environment.LAKEHOUSE_ENV: "dev"})
    with pytest.raises(ConfigurationError, match=environment.PII_KEY_SECRET_NAME):
        CleanerSettings.from_env()
    with_secret = environment.cleaner(RAW, STAGING, "clickstream", pii_key_secret="lakehouse-dev-pii-hash-key")
    assert with_secret[environment.PII_KEY_SECRET_NAME] == "lakehouse-dev-pii-hash-key"
    assert environment.replay(RAW, STAGING, "k") == {environment.RAW_URI: RAW, environment.STAGING_URI: STAGING,
                                                      environment.PII_KEY_SECRET_NAME: "k"}


def test_the_connectors_environment_gives_its_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    _only(monkeypatch, {**environment.api_connector("https://fx.example.com/v1", "fx-secret", RAW, STAGING),
                        **POWERTOOLS})
    settings = ConnectorSettings.from_env()
    assert (settings.base_url, settings.secret_id) == ("https://fx.example.com/v1", "fx-secret")
    assert (settings.locations.raw_uri, settings.locations.staging_uri) == (RAW, STAGING)


def test_the_loaders_environment_gives_its_settings() -> None:
    settings = LoaderSettings.from_mapping({**environment.file_loader(LANDING, RAW, STAGING, "products"),
                                            **POWERTOOLS})
    assert settings.metrics_namespace == "Example"
    assert (settings.locations.landing_uri, settings.locations.raw_uri, settings.locations.staging_uri) == (
        LANDING, RAW, STAGING)  # each in its own place: swapped zones would fail
