#!/usr/bin/env python3
"""CDK entry point: `npx cdk synth -c env=dev 'dev/*'` (without -c env, every environment)."""
from aws_cdk import App

from cdk_app.app_builder import build

app = App()
build(app)
app.synth()
