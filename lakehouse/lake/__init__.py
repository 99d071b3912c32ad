"""The local lake: where it lives on disk, its Iceberg catalog, and the local Spark that writes it."""
