"""Analytics and serving: the Athena stand-in (DuckDB over the local Iceberg catalog), the serving file,
and the local Superset with its dashboards."""
