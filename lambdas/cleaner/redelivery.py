"""Records Lambda delivers again after their batch was staged: dropped, so batches never overlap.

Lambda redelivers a batch whose invocation failed, from its first record, whatever the function had done.
When the failure came after the manifest (a timeout, a crash), the retry may be the same records, a bisected
half of them (BisectBatchOnFunctionError) or more of them (the batch grew meanwhile); named by its own first
and last positions, each would be a second batch overlapping the first: `received` counted twice and every
quarantined record loaded twice (decision 0419).

So each channel (shard or topic-partition) keeps a mark in staging: the positions of its last staged batch,
written right after the manifest. A delivery's records inside that range are already staged and are dropped;
the rest is cleaned as a batch of its own. A crash between the manifest and the mark leaves the mark one
batch behind: the delivery's first record then starts a staged batch, whose manifest (named by that first
position, in the hour folder of its first arrival) is found and taken as the mark. Only the last batch's range
is dropped, never anything before it, so a batch the mapping gave up on (replayed from its dead-letter queue)
or a topic whose offsets restarted is cleaned as usual.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import pyarrow.fs as pafs

from lambdas.cleaner.events import Delivery
from lambdas.cleaner.writer import ingest_hour_folder
from lambdas.common.storage import Locations, read_bytes, resolve, write_bytes
from lambdas.contracts import lake_layout


@dataclass(frozen=True)
class StagedRange:
    """The positions of a channel's last staged batch."""

    first: int
    last: int

    def holds(self, position: str) -> bool:
        return self.first <= int(position) <= self.last


def mark_uri(where: Locations, source: str, channel: str) -> str:
    return lake_layout.join(where.staging_uri, lake_layout.position_prefix(source), f"{channel}.json")


def write_mark(where: Locations, source: str, delivery: Delivery) -> None:
    """Record `delivery` (just staged, its manifest written) as its channel's last staged batch."""
    _write(where, source, delivery.channel, StagedRange(int(delivery.positions[0]), int(delivery.positions[-1])))


def _write(where: Locations, source: str, channel: str, staged: StagedRange) -> None:
    mark = {"first_position": str(staged.first), "last_position": str(staged.last)}
    write_bytes(mark_uri(where, source, channel), json.dumps(mark).encode())


def _read_mark(where: Locations, source: str, channel: str) -> StagedRange | None:
    try:
        mark = json.loads(read_bytes(mark_uri(where, source, channel)))
    except FileNotFoundError:
        return None
    return StagedRange(int(mark["first_position"]), int(mark["last_position"]))


def _staged_from(where: Locations, source: str, delivery: Delivery) -> StagedRange | None:
    """The staged batch that starts at the delivery's first record, if its manifest exists (in the hour folder
    of that record's arrival, as the writer puts it)."""
    prefix = f"{delivery.channel}-{delivery.positions[0]}-"
    fs, folder = resolve(lake_layout.join(where.staging_uri, lake_layout.manifest_prefix(source),
                                          ingest_hour_folder(delivery)), make_parent=False)
    for info in fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True)):
        if info.base_name.startswith(prefix) and info.base_name.endswith(".json"):
            last = info.base_name[len(prefix):-len(".json")]
            if last.isdigit():
                return StagedRange(int(delivery.positions[0]), int(last))
    return None


def not_yet_staged(delivery: Delivery, where: Locations, source: str) -> Delivery | None:
    """The part of `delivery` not staged yet (None: all of it is)."""
    staged = _read_mark(where, source, delivery.channel)
    if staged is not None:
        delivery = _after(delivery, staged)
        if delivery is None:
            return None
    unmarked = _staged_from(where, source, delivery)
    if unmarked is None:
        return delivery
    _write(where, source, delivery.channel, unmarked)  # repaired, so the rest of a bisected batch is found too
    return _after(delivery, unmarked)


def _after(delivery: Delivery, staged: StagedRange) -> Delivery | None:
    """`delivery` less its records inside `staged` (a redelivery starts at the staged batch's first record)."""
    keep = [i for i, position in enumerate(delivery.positions) if not staged.holds(position)]
    if len(keep) == len(delivery):
        return delivery
    return delivery.subset(keep) if keep else None
