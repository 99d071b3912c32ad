"""Iceberg table specs (specs.py), the migrator (migrator.py) and catalog access (catalogs.py)."""
