"""`lakehouse watch`'s numbers on real files: the real cleaner stages batches, the live committer registers them,
and the per-minute counts equal the generator's own clean events; the alerts flag what the AWS alarms page on."""
from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from pyiceberg.catalog import Catalog

from cdk_app import config
from iceberg_tables.catalogs import local_catalog
from iceberg_tables.migrator import migrate
from iceberg_tables.specs import ALL_TABLES, LIVE_EVENTS, LIVE_TABLES
from lakehouse.operations.watch import COMMIT_LAG_LIMIT, look, render
from lambdas.live_committer.committer import commit
from tests.fixtures.kinesis_events import cleaner_lake as lake  # noqa: F401 (a fixture)
from tests.fixtures.staged_batches import stage, staged

ENV = config.load("local")
ALL_TIME = 60 * 24 * 365  # minutes: every minute of the generator's events


@pytest.fixture
def catalog(lake: Path) -> Catalog:  # noqa: F811 (the fixture above)
    both = local_catalog(lake / "warehouse", lake / "catalog.db")
    migrate(both, (*ALL_TABLES, *LIVE_TABLES))
    return both


def staging(lake: Path) -> Path:  # noqa: F811
    return lake / "staging"


def test_minutes_count_each_clean_event_once_and_the_rates_are_the_batches(catalog: Catalog, lake: Path) -> None:  # noqa: F811
    written, _ = stage(3)
    commit(catalog.load_table(LIVE_EVENTS.full_name), staged(written))
    from lakehouse.sources.generator import generate
    from tests.fixtures.kinesis_events import ARRIVAL

    clean = generate(3 * 400, seed=5, now=ARRIVAL).clean_events  # what stage(3) sent
    view = look(catalog, staging(lake), ENV, datetime.now(timezone.utc), minutes=ALL_TIME)

    def minute(at: datetime) -> datetime:
        return at.astimezone(timezone.utc).replace(second=0, microsecond=0)

    expected = Counter((minute(e.event_time), e.event_type) for e in clean)
    assert {(m.minute, t): n for m in view.minutes for t, n in m.events.items()} == expected
    sessions = {}
    for e in clean:
        sessions.setdefault(minute(e.event_time), set()).add(e.session_id)
    assert {m.minute: m.active_sessions for m in view.minutes} == {k: len(v) for k, v in sessions.items()}

    [clicks] = [s for s in view.sources if s.source == "clickstream"]
    assert (clicks.received, clicks.quarantined) == (sum(m["received"] for m in written),
                                                     sum(m["quarantined"] for m in written))
    assert view.oldest_waiting is None and view.last_commit is not None
    assert view.alerts == []  # about 6 % quarantined, under the local limit of 20 %
    assert render(view) is not None
    newest = max(m for m, _ in expected)
    last = look(catalog, staging(lake), ENV, datetime.now(timezone.utc), minutes=5)
    assert {(m.minute, t): n for m in last.minutes for t, n in m.events.items()} == {
        key: n for key, n in expected.items() if key[0] > newest - timedelta(minutes=5)}


def test_a_source_over_its_quarantine_limit_is_flagged(catalog: Catalog, lake: Path) -> None:  # noqa: F811
    written, _ = stage(1)
    commit(catalog.load_table(LIVE_EVENTS.full_name), staged(written))
    strict = dataclasses.replace(ENV, quality=dataclasses.replace(
        ENV.quality, max_quarantine_rate={**ENV.quality.max_quarantine_rate, "clickstream": 0.01}))
    view = look(catalog, staging(lake), strict, datetime.now(timezone.utc), minutes=1)
    assert [a for a in view.alerts if a.startswith("clickstream: ")] == [
        f"clickstream: {written[0]['quarantined']} of {written[0]['received']} records quarantined in the last "
        f"5 minutes ({written[0]['quarantined'] / written[0]['received']:.1%}, limit 1.0%)"]


def test_a_batch_waiting_longer_than_two_minutes_for_its_live_commit_is_flagged(catalog: Catalog, lake: Path) -> None:  # noqa: F811
    stage(1)  # staged and notified, never committed
    now = datetime.now(timezone.utc)
    assert look(catalog, staging(lake), ENV, now, minutes=1).alerts == []
    later = look(catalog, staging(lake), ENV, now + COMMIT_LAG_LIMIT + timedelta(seconds=5), minutes=1)
    assert later.last_commit is None and [a for a in later.alerts if a.startswith("live commit lag")]
