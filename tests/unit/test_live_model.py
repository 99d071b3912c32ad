"""The live path's model (lakehouse/operations/live_model.py), its prices and the load generator's logic: one case
recomputed by hand, the settings read from where they are defined, and the load's schedule on a fake clock (no
wall-clock assertions: benchmarks measure time, tests never assert it)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from cdk_app import config
from lakehouse.operations import live_model, prices
from lakehouse.operations.live_model import CleanerFigures, MeasuredCommit, ProdSettings, Shape
from lakehouse.sources import load
from lakehouse.sources.load import LoadError, LoadSpec

SETTINGS = ProdSettings(env="prod", region="eu-west-1", shards=4, batch_size=1000, window_s=10,
                        committer_batch_size=10, committer_memory_mb=1024, maintenance_every_s=900,
                        maintenance_assumed=False, live_tables=2)
COMMIT = MeasuredCommit(seconds=0.1, records_per_batch=250, commits=20, file_reads=7, file_writes=7, catalog_reads=4,
                        catalog_commits=2, maintenance_seconds=0.5, cleaner_files_per_batch=5)
CLEANER = CleanerFigures(ms_per_record=0.01)


def test_at_100_events_a_second_prods_window_closes_each_shards_batch() -> None:
    shape = Shape.of(SETTINGS, 100)
    # 25 events/s a shard fill a 1,000-record batch in 40 s: the 10 s window delivers 250 records first
    assert (shape.per_shard_rate, shape.batch_wait_s, shape.records_per_batch) == (25, 10, 250)
    assert shape.batches_per_s == pytest.approx(0.4)  # 4 shards / 10 s
    assert Shape.of(SETTINGS, 1000).batch_wait_s == 4  # 250/s a shard fill the batch before the window ends


def test_the_latency_of_one_case_recomputed_by_hand() -> None:
    model = live_model.latency(SETTINGS, CLEANER, COMMIT, 100)
    parts = {p.name.split(" (")[0]: (p.typical_s, p.worst_s) for p in model.parts}
    # the commit in AWS: 0.1 s measured + 14 S3 requests x (0.03 | 0.2) + (4 GetTable + 2 UpdateTable) x (0.05 | 0.3)
    assert parts["the commit"] == pytest.approx((0.1 + 14 * 0.03 + 6 * 0.05, 0.1 + 14 * 0.2 + 6 * 0.3))  # 0.82, 4.7
    assert parts["the cleaner's batching window"] == pytest.approx((5, 10))
    assert parts["the cleaner's run"] == pytest.approx((0.0025 + 5 * 0.03, 0.0025 + 5 * 0.2))
    assert parts["waiting for the table's previous commit"] == pytest.approx((0.82 * (0.4 * 0.82) / 2, 4.7))
    assert model.worst_s == pytest.approx(1 + 10 + 1.0025 + 1 + 4.7 + 4.7 + 5)  # 27.4025
    assert model.typical_s == pytest.approx(0.5 + 5 + 0.1525 + 0.1 + 0.13448 + 0.82 + 1)
    assert model.dominant.name.startswith("the cleaner's batching window")


def test_the_monthly_cost_of_one_case_recomputed_by_hand() -> None:
    cost = {item.name: item for item in live_model.monthly_cost(SETTINGS, COMMIT, 100).items}
    commits = 0.4 * 730 * 3600  # 1,051,200: one per cleaner batch (a 0.82 s commit keeps up with one every 2.5 s)
    maintenances = 2 * 730 * 3600 / 900  # 5,840: two live tables every 15 minutes
    assert cost["committer requests"].quantity == pytest.approx(commits + maintenances)
    assert cost["committer requests"].usd == pytest.approx((commits + maintenances) / 1e6 * 0.20)
    gb_seconds = commits * 0.82 + maintenances * (0.5 + 3 * 0.72)  # 1 GB; a maintenance = its time + 3 commits' requests
    assert cost["committer duration"].quantity == pytest.approx(gb_seconds)
    assert cost["committer duration"].usd == pytest.approx(gb_seconds * 0.0000166667)
    assert cost["S3 PUTs of the commits"].quantity == pytest.approx((commits + 3 * maintenances) * 7)
    idle_receives = 5 * 730 * 3600 / 20
    # a send, a receive and a delete per notification and per maintain message, and the idle pollers' receives
    assert cost["SQS FIFO requests"].quantity == pytest.approx(3 * commits + 3 * maintenances + idle_receives)


def test_a_committer_slower_than_the_batches_runs_back_to_back() -> None:
    assert Shape.of(SETTINGS, 100).commits_per_s(5.0) == pytest.approx(0.2)


def test_the_cadence_commits_once_per_its_seconds_or_per_full_delivery() -> None:
    shape = Shape.of(SETTINGS, 100)  # 0.4 notifications a second to the table
    assert shape.commits_per_s(0.82, 25) == pytest.approx(0.04)  # a full delivery of 10 every 25 s
    assert shape.commits_per_s(0.82, 60) == pytest.approx(0.04)  # a longer cadence cannot hold more than 10
    one_shard = Shape.of(replace(SETTINGS, shards=1), 25)  # 0.1 a second: 3 in 30 s
    assert one_shard.commits_per_s(0.82, 30) == pytest.approx(1 / 30)
    assert one_shard.commits_per_s(0.82, 0) == pytest.approx(0.1)  # no cadence: one per notification


CADENCE = replace(SETTINGS, commit_every_s=25)  # prod's live_commit_every_seconds


def test_the_latency_with_the_cadence_recomputed_by_hand() -> None:
    without = live_model.latency(SETTINGS, CLEANER, COMMIT, 100)
    model = live_model.latency(CADENCE, CLEANER, COMMIT, 100)
    parts = {p.name.split(" (")[0]: (p.typical_s, p.worst_s) for p in model.parts}
    # held until the oldest is 25 s old, then SQS's long poll again (1 s at worst); typically half of the 25 s
    # between two commits (0.04 a second)
    assert parts["the committer's cadence"] == pytest.approx((12.5, 25 + 1.0))
    # the committer is busy 0.04 x 0.82 of the time, not 0.4 x 0.82
    assert parts["waiting for the table's previous commit"] == pytest.approx((0.82 * (0.04 * 0.82) / 2, 4.7))
    assert model.worst_s == pytest.approx(without.worst_s + 26)  # 27.4025 + 26 = 53.4025
    assert model.typical_s == pytest.approx(without.typical_s - 0.82 * 0.4 * 0.82 / 2 + 0.82 * 0.04 * 0.82 / 2
                                            + 12.5)
    assert model.dominant.name.startswith("the committer's cadence")
    assert live_model.latency(SETTINGS, CLEANER, COMMIT, 100, commit_every_s=25).worst_s == model.worst_s


def test_the_monthly_cost_with_the_cadence_recomputed_by_hand() -> None:
    cost = live_model.monthly_cost(CADENCE, COMMIT, 100)
    items = {item.name: item for item in cost.items}
    commits = 0.04 * 730 * 3600  # 105,120: a full delivery of 10 notifications every 25 s
    deferrals = commits  # the first messages of each delivery waited once
    maintenances = 2 * 730 * 3600 / 900  # 5,840
    assert cost.commits_per_s == pytest.approx(0.04)
    assert items["committer requests"].quantity == pytest.approx(commits + deferrals + maintenances)  # 216,080
    gb_seconds = commits * 0.82 + deferrals * 0.05 + maintenances * (0.5 + 3 * 0.72)
    assert items["committer duration"].quantity == pytest.approx(gb_seconds)
    assert items["S3 PUTs of the commits"].quantity == pytest.approx((commits + 3 * maintenances) * 7)  # 858,480
    assert items["S3 PUTs of the commits"].usd == pytest.approx(858_480 / 1000 * 0.005)  # 4.29
    # 7 reads a commit, and the footers of the 9 more files of a 10-file commit
    assert items["S3 GETs of the commits"].quantity == pytest.approx((commits + 3 * maintenances) * 7 + commits * 9)
    assert items["Glue catalog requests"].quantity == pytest.approx((commits + 3 * maintenances) * 6)
    notifications, idle_receives = 0.4 * 730 * 3600, 5 * 730 * 3600 / 20
    # sends; receives (the commits', the deferrals', the maintain messages'); deletes; the visibility changes
    assert items["SQS FIFO requests"].quantity == pytest.approx(
        notifications + maintenances + commits + deferrals + maintenances + idle_receives + commits + maintenances
        + deferrals)
    assert cost.total_usd < live_model.monthly_cost(SETTINGS, COMMIT, 100).total_usd / 5


def test_prods_settings_are_read_where_they_are_defined() -> None:
    prod, env = live_model.prod_settings(), config.load("prod")
    assert (prod.shards, prod.batch_size, prod.window_s, prod.region) == (
        env.kinesis_shards, env.cleaner_batch_size, env.cleaner_batching_window_seconds, env.region)
    assert prod.committer_memory_mb > 0 and prod.committer_batch_size == 10
    assert prod.commit_every_s == env.live_commit_every_seconds


def test_the_committers_memory_is_read_from_its_construct(tmp_path: Path) -> None:
    source = tmp_path / "construct.py"
    source.write_text("f = PythonFunction(self, 'F', timeout=T, memory_mb=768)\n")
    assert live_model.committer_memory_mb(source) == 768
    source.write_text("f = PythonFunction(self, 'F')\n")
    with pytest.raises(ValueError, match="memory_mb"):
        live_model.committer_memory_mb(source)


def test_rate_expressions() -> None:
    assert live_model.rate_seconds("rate(15 minutes)") == 900
    assert live_model.rate_seconds("rate(1 hour)") == 3600
    with pytest.raises(ValueError, match="not a rate"):
        live_model.rate_seconds("cron(0 * * * ? *)")


def test_the_cleaners_figures_come_from_its_section(tmp_path: Path) -> None:
    page = tmp_path / "performance.md"
    page.write_text('<!-- benchmark:cleaner -->\n<!-- figures: {"records": 10000, "cleaner_ms": 92.5} -->\n'
                    "<!-- /benchmark:cleaner -->\n")
    assert live_model.cleaner_figures(page).ms_per_record == pytest.approx(0.00925)
    page.write_text("# Performance\n")
    with pytest.raises(ValueError, match="no cleaner figures"):
        live_model.cleaner_figures(page)


def test_every_price_names_its_page_region_and_date() -> None:
    found = [value for value in vars(prices).values() if isinstance(value, prices.Price)]
    assert len(found) >= 8
    for price in found:
        assert price.page.startswith("https://aws.amazon.com/") and price.region == config.load("prod").region
        assert price.read_on == prices.PRICED_ON and price.usd > 0
    assert prices.S3_STANDARD_PUTS.of(2000) == pytest.approx(0.01)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"rate": 0}, "rate must be more than 0"), ({"rate": -5}, "rate must be more than 0"),
    ({"seconds": 0}, "seconds must be more than 0"), ({"defect_rate": 0.95}, "defect_rate"),
    ({"resend_rate": 2}, "resend_rate"), ({"marker_every": 0.01}, "marker_every"),
])
def test_a_bad_load_is_refused_naming_the_parameter(kwargs: dict, message: str) -> None:
    with pytest.raises(LoadError, match=message):
        LoadSpec(**kwargs)


class FakeClock:
    def __init__(self, per_call: float = 0.0) -> None:
        self.now, self.per_call = 1000.0, per_call

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_the_load_sends_everything_on_schedule_with_its_markers_and_resends() -> None:
    spec = LoadSpec(rate=50, seconds=3, marker_every=1, resend_rate=0.5, seed=3)
    prepared = load.prepare(spec)
    clock, calls = FakeClock(), []

    def put(records, keys):  # noqa: ANN001, ANN202 - a PutRecords stand-in that takes 10 ms
        calls.append(list(records))
        clock.now += 0.01

    result = load.send(prepared, put, clock=clock, sleep=clock.sleep)
    sent = [record for call in calls for record in call]
    assert result.sent_events == spec.events == 150 and len(result.markers) == 3
    assert set(prepared.records) | set(prepared.marker_records) == set(sent)
    assert result.resent_records > 0 and result.records_sent == len(sent)
    assert result.sustained and result.achieved_rate == pytest.approx(50, rel=0.05)
    assert [m.event_id for m in result.markers] == prepared.marker_ids
    assert set(prepared.marker_ids) <= prepared.clean_ids and len(prepared.clean_ids) < 153


def test_a_sender_slower_than_the_schedule_says_it_fell_behind() -> None:
    prepared = load.prepare(LoadSpec(rate=2000, seconds=2, marker_every=0, seed=3))
    clock = FakeClock()

    def put(records, keys):  # noqa: ANN001, ANN202 - 0.4 s a call of 500: 1,250 events/s at most
        clock.now += 0.4

    result = load.send(prepared, put, clock=clock, sleep=clock.sleep)
    assert result.sent_events == 4000 and not result.sustained and result.achieved_rate < 2000
