"""The public layers' pins follow requirements.txt; a region without a pinned layer is a clear error."""
from __future__ import annotations

import pytest

from cdk_app.config import ConfigError, environments
from cdk_app.layers import POWERTOOLS_VERSION, pandas_layer_arn, powertools_layer_arn
from cdk_app.wheelhouse import pinned


def test_powertools_layer_is_the_tested_version() -> None:
    # bumping aws-lambda-powertools in requirements.txt must revisit the layer version
    assert pinned("aws-lambda-powertools") == f"aws-lambda-powertools=={POWERTOOLS_VERSION}"


def test_every_configured_region_has_its_layers() -> None:
    for settings in environments().values():
        region = settings["region"]
        assert powertools_layer_arn(region).startswith(f"arn:aws:lambda:{region}:017000801446:layer:")
        assert pandas_layer_arn(region).startswith(f"arn:aws:lambda:{region}:336392948345:layer:AWSSDKPandas-Python312:")


def test_unpinned_region_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="ap-south-2"):
        pandas_layer_arn("ap-south-2")
