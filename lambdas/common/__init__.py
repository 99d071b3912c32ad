"""Runtime code shared by the Lambda functions (shipped with each of them by CDK)."""
