#!/usr/bin/env python3
"""CDK entry point: `npx cdk synth -c env=dev 'dev/*'` (without -c env, every environment).

cdk.json's placeholder account and FX URL are refused here: set the real ones (docs/deploy.md), or pass
`-c offline=true` to synthesize with them offline. A config error ends the app with its message alone."""
import sys

from aws_cdk import App

from cdk_app.app_builder import build
from cdk_app.config import ConfigError

app = App()
try:
    build(app, deploy=True)
except ConfigError as err:
    sys.exit(f"lakehouse config: {err}")
app.synth()
