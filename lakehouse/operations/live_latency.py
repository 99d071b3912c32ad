"""Event -> queryable, measured on a live table: for each registered row, the time from its arrival on the
stream (`ingested_at`, Kinesis' ApproximateArrivalTimestamp) to the commit that made it visible in
fresh.events (the snapshot whose summary records its staging file, decision 0500). Read from the table's
own history and the staged files, so it measures what happened, not what a timer around the code saw."""
from __future__ import annotations

import json
import statistics
from dataclasses import dataclass

import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyiceberg.table import Table

from lambdas.live_committer.committer import STAGED_FILES


@dataclass(frozen=True)
class Latency:
    events: int  # rows registered
    p50_s: float
    p95_s: float
    max_s: float


def queryable_latencies(table: Table) -> list[float]:
    """Seconds from arrival to visibility, one per row the table's retained snapshots registered."""
    seconds: list[float] = []
    for snapshot in table.metadata.snapshots:
        recorded = snapshot.summary.get(STAGED_FILES) if snapshot.summary else None
        for uri in json.loads(recorded) if recorded else ():
            arrivals = pq.read_table(uri.removeprefix("file://"), columns=["ingested_at"]).column("ingested_at")
            epoch_ms = pc.cast(arrivals, "int64").to_pylist()  # microseconds since the epoch
            seconds += [snapshot.timestamp_ms / 1000 - us / 1_000_000 for us in epoch_ms]
    return seconds


def summarize(seconds: list[float]) -> Latency | None:
    if not seconds:
        return None
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return Latency(len(ordered), statistics.median(ordered), p95, ordered[-1])
