"""Glue Spark jobs: each script has `run(spark, args) -> dict` and a thin Glue entry point."""
