"""Operating a lake: running and following workflows, alerts, the ledger, replays, the smoke test and the
live watch."""
