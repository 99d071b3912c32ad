"""The live committer's cadence (decision 0504) on a real SQS FIFO queue (moto) and real Iceberg tables (pyiceberg,
sqlite catalog), delivered by the local event source mapping (lakehouse/cloud/sqs_poller.py) as Lambda's delivers:
notifications sent within the cadence are held by their visibility, FIFO holds their group meanwhile, and after it
they are committed together, once. The expected files are the real cleaner's staged batches."""
from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import boto3
import pytest
from pyiceberg.catalog import Catalog

from iceberg_tables.catalogs import ENV_CATALOG_DB, ENV_WAREHOUSE, local_catalog
from iceberg_tables.migrator import migrate
from iceberg_tables.specs import LIVE_EVENTS, LIVE_EVENTS_BATCHES, LIVE_TABLES
from lakehouse.cloud.sqs_poller import SqsPoller, SqsPollStats
from lambdas.common.environment import LIVE_QUEUE_URL
from lambdas.contracts.live import Notification
from lambdas.live_committer.committer import registered_files
from lambdas.live_committer.handler import deferral
from lambdas.live_committer.settings import COMMIT_EVERY, FIFO_BATCH
from lambdas.live_committer.handler import handler as live_handler
from lambdas.live_committer.maintenance import maintain_body
from tests.fixtures.kinesis_events import cleaner_lake as lake  # noqa: F401 (a fixture)
from tests.fixtures.local_cloud import register_function
from tests.fixtures.staged_batches import fifo_queue, notifications, stage

EVERY = 3  # seconds: the test waits for it once


@pytest.fixture
def catalog(lake: Path) -> Catalog:  # noqa: F811 (the fixture above)
    live = local_catalog(lake / "warehouse", lake / "catalog.db")
    migrate(live, LIVE_TABLES)
    return live


@pytest.fixture
def committer(lake: Path, local_cloud, monkeypatch: pytest.MonkeyPatch) -> tuple[str, SqsPoller]:  # noqa: F811, ANN001
    """A FIFO queue, the committer as a function with the cadence EVERY, and the local mapping between them."""
    monkeypatch.delenv(LIVE_QUEUE_URL, raising=False)  # the test sends the cleaner's notifications itself, when it says
    queue = fifo_queue("live-cadence")
    function = register_function(live_handler, {ENV_WAREHOUSE: str(lake / "warehouse"),
                                                ENV_CATALOG_DB: str(lake / "catalog.db"),
                                                LIVE_QUEUE_URL: queue, COMMIT_EVERY: str(EVERY)})
    return queue, SqsPoller(queue, function)


def send(queue: str, notified: list[Notification]) -> None:
    """As the cleaner sends them (lambdas/cleaner/handler.py): in the table's group, with its deduplication id."""
    sqs = boto3.client("sqs")
    for n in notified:
        sqs.send_message(QueueUrl=queue, MessageBody=n.body(), MessageGroupId=n.table,
                         MessageDeduplicationId=n.deduplication_id())


def poll_until_delivered(poller: SqsPoller, stats: SqsPollStats, within_s: float) -> int:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if delivered := poller.poll_once(stats):
            return delivered
        time.sleep(0.2)
    raise AssertionError(f"nothing delivered within {within_s} s")


def test_notifications_within_the_cadence_become_one_commit_after_it_with_every_file_once(
        catalog: Catalog, committer: tuple[str, SqsPoller]) -> None:
    queue, poller = committer
    written, clean_ids = stage(5, per_batch=100)
    notified = notifications(written, "clickstream", datetime.now(timezone.utc))
    assert len(notified) > 2
    stats = SqsPollStats()
    # One message deferred, then the others arrive within the cadence. (Not two deferred: moto 5.2.5 then hands
    # out the group's second before its first, as two commits. When several messages of a FIFO group become
    # visible at once, its receive skips the first while the second is still counted in flight.)
    send(queue, notified[:1])
    assert poller.poll_once(stats) == 1 and stats.failed == 1  # deferred: the oldest is younger than EVERY
    assert catalog.load_table(LIVE_EVENTS.full_name).metadata.snapshots == []
    send(queue, notified[1:])  # arriving while the first waits
    assert poller.poll_once(stats) == 0  # FIFO holds the group while its first message is in flight

    # the deferred one, then what arrived meanwhile: all in one delivery, received again, so committed
    assert poll_until_delivered(poller, stats, EVERY + 10) == len(notified)
    assert (stats.invocations, stats.failed) == (2, 1)  # the second delivery committed: nothing failed
    table = catalog.load_table(LIVE_EVENTS.full_name)
    assert len(table.metadata.snapshots) == 1  # one commit
    files = [row["file_path"] for row in table.inspect.files().to_pylist()]
    assert sorted(files) == sorted(m["files"]["clean"] for m in written) and len(set(files)) == len(files)
    assert registered_files(table) == set(files)
    rows = table.scan().to_arrow()
    assert set(rows["event_id"].to_pylist()) == clean_ids and rows.num_rows == sum(m["clean"] for m in written)
    ledgers = catalog.load_table(LIVE_EVENTS_BATCHES.full_name)
    assert len(ledgers.metadata.snapshots) == 1
    assert sorted(ledgers.scan().to_arrow()["batch_id"].to_pylist()) == sorted(m["batch_id"] for m in written)
    assert poller.drain().messages == 0  # deleted: nothing left, nothing in flight


def test_a_full_delivery_commits_at_once(catalog: Catalog, committer: tuple[str, SqsPoller]) -> None:
    queue, poller = committer
    written, _ = stage(FIFO_BATCH, per_batch=20)
    send(queue, notifications(written, "clickstream", datetime.now(timezone.utc)))
    stats = SqsPollStats()
    assert poller.poll_once(stats) == FIFO_BATCH and stats.failed == 0  # young, but no more could come with them
    table = catalog.load_table(LIVE_EVENTS.full_name)
    assert len(table.metadata.snapshots) == 1 and len(registered_files(table)) == FIFO_BATCH


def test_a_maintain_message_in_the_group_is_never_held_back(catalog: Catalog, committer: tuple[str, SqsPoller]) -> None:
    queue, poller = committer
    written, _ = stage(2, per_batch=50)
    send(queue, notifications(written, "clickstream", datetime.now(timezone.utc)))
    boto3.client("sqs").send_message(QueueUrl=queue, MessageBody=maintain_body(LIVE_EVENTS.full_name),
                                     MessageGroupId=LIVE_EVENTS.full_name, MessageDeduplicationId="maintain-1")
    stats = SqsPollStats()
    assert poller.poll_once(stats) == 3 and stats.failed == 0  # committed, then maintained (its failure is logged)
    assert registered_files(catalog.load_table(LIVE_EVENTS.full_name)) == {m["files"]["clean"] for m in written}


def _record(i: int, sent_ms: float, receives: int = 1) -> dict:
    return {"messageId": f"m{i}", "receiptHandle": f"r{i}", "body": "{}",
            "attributes": {"SentTimestamp": str(int(sent_ms)), "ApproximateReceiveCount": str(receives),
                           "MessageGroupId": "live.events"}}


def test_the_deferral_waits_for_the_oldest_once_and_never_past_the_cadence() -> None:
    now = 1_800_000_000.0
    young, older = _record(0, now * 1000 - 4_500), _record(1, now * 1000 - 9_000)
    assert deferral([young, older], 30, now) == 21  # 30 - 9 s: the oldest's age; rounded down, never past 30
    assert deferral([young], 30, now) == 25
    assert deferral([young], 0, now) is None  # no cadence: every delivery commits
    assert deferral([older], 9, now) is None  # the oldest is old enough
    assert deferral([_record(0, now * 1000 - 8_500)], 9, now) is None  # less than a second left: not worth a delivery
    assert deferral([young, _record(1, now * 1000 - 1_000, receives=2)], 30, now) is None  # received before
    assert deferral([_record(i, now * 1000) for i in range(FIFO_BATCH)], 30, now) is None  # full
    assert deferral([{"messageId": "m0", "body": "{}"}], 30, now) is None  # no attributes: nothing to judge by


def test_a_refused_visibility_change_commits_at_once(catalog: Catalog, committer: tuple[str, SqsPoller],
                                                    lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    queue, _ = committer
    for name, value in {ENV_WAREHOUSE: str(lake / "warehouse"), ENV_CATALOG_DB: str(lake / "catalog.db"),
                        LIVE_QUEUE_URL: queue, COMMIT_EVERY: str(EVERY)}.items():
        monkeypatch.setenv(name, value)
    written, _ = stage(1, per_batch=50)
    [notified] = notifications(written, "clickstream", datetime.now(timezone.utc))
    event = {"Records": [{**_record(0, time.time() * 1000), "body": notified.body()}]}  # a receipt SQS never gave
    assert live_handler(event, None) == {"batchItemFailures": []}  # late is worse than one more commit
    assert registered_files(catalog.load_table(LIVE_EVENTS.full_name)) == {written[0]["files"]["clean"]}
