"""The local runtime of Serverless Lakehouse and the `lakehouse` CLI."""
