"""Session fixtures shared across tiers live in tests/fixtures/ and are registered here."""
pytest_plugins = [
    "tests.fixtures.local_cloud",
    "tests.fixtures.batch_runs",
    "tests.fixtures.spark",
    "tests.fixtures.cdk",
    "tests.fixtures.superset",
    "tests.fixtures.fx_fixture",
    "tests.fixtures.least_privilege",
    "tests.fixtures.demo_run",
]
