"""Cleaner throughput on one core, from the Lambda event to the files written, with two ratios
taken in the same run, and peak memory for a 6 MB batch.

- the cleaner: `lambdas.cleaner.handler.handler` on a 10,000-record Kinesis event (the generator's
  clickstream, 5 % defects, every kind but OVERSIZED: a 64 KiB record is no "about 300 byte" one);
- the baseline: the same rules the common way (benchmarks/baseline.py: Powertools BatchProcessor,
  a pydantic model per record), writing the same kinds of files;
- the bare cost: base64-decoding and json-parsing the same records, nothing else;
- the floor: the least any cleaner of this event must do (read every payload, check that it parses,
  keep it as received), by the cleaner's own C routines (msgspec). What the 500,000 records/s target
  leaves after it is the budget for everything else (rules, masking, Parquet); decision 0417 measures
  faster parsers and why they do not change that.

The process pins itself to one CPU (`os.sched_setaffinity`, what `taskset -c N` does) and Arrow to
one thread. Rounds interleave the four, so they share the machine's noise; the figures are medians,
with the best round beside them (on a shared machine, noise only ever adds time).
Files go to a temporary local folder: S3 latency is not part of a per-core figure.
Memory: a child process loads an event of Lambda's 6 MB payload limit from a file (as the runtime
would), runs the handler once and reports its peak RSS (VmHWM), next to a child that only loads it.
"""
from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import io
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import msgspec
import pyarrow as pa

from lakehouse.cloud.poller import kinesis_event
from lakehouse.sources.generator import generate
from lambdas.cleaner.events import map_or_none
from lambdas.common import environment
from lambdas.contracts import clickstream

RECORDS = 10_000
DEFECT_RATE = 0.05
LAMBDA_PAYLOAD_LIMIT = 6 * 1024 * 1024
TARGET_RECORDS_PER_S = 500_000
TARGET_MS = RECORDS / TARGET_RECORDS_PER_S * 1000
SHARD = "shardId-000000000000"
# The cleaner judges timestamps against the batch's arrival, the baseline against its clock (benchmarks/baseline.py):
# events arrive "now" and are generated around it, so both give the same verdicts.
_ARRIVAL = datetime.now(timezone.utc).replace(microsecond=0)


@dataclass(frozen=True)
class Figures:
    records: int
    mean_record_bytes: float
    rounds: int
    cpu: str
    cleaner_records_per_s: float
    baseline_records_per_s: float
    bare_records_per_s: float
    floor_records_per_s: float
    cleaner_ms: float
    baseline_ms: float
    bare_ms: float
    floor_ms: float
    cleaner_best_ms: float
    baseline_best_ms: float
    bare_best_ms: float
    floor_best_ms: float
    six_mb_records: int
    six_mb_event_bytes: int
    peak_rss_mb: float
    before_rss_mb: float
    event_only_rss_mb: float
    stage_ms: dict[str, float]

    @property
    def vs_baseline(self) -> float:
        return self.cleaner_records_per_s / self.baseline_records_per_s

    @property
    def vs_bare(self) -> float:
        return self.cleaner_records_per_s / self.bare_records_per_s


def records(n: int, seed: int = 7) -> list[bytes]:
    kinds = [r for r in clickstream.REASONS if r != clickstream.Reason.OVERSIZED]
    return generate(n, seed=seed, defect_rate=DEFECT_RATE, defects=kinds, now=_ARRIVAL).records


def event_of(payloads: list[bytes], first_sequence: int = 49_600_000_000_000_000_000) -> dict[str, Any]:
    return kinesis_event([{
        "Data": data, "PartitionKey": f"pk-{i % 97}", "SequenceNumber": str(first_sequence + i),
        "ApproximateArrivalTimestamp": _ARRIVAL + timedelta(milliseconds=i),
    } for i, data in enumerate(payloads)], SHARD, "arn:aws:kinesis:us-east-1:000000000000:stream/bench", "us-east-1")


def cleaner_environment(folder: Path) -> dict[str, str]:
    """The clickstream cleaner's environment, its zones under `folder` (files, not S3: see above)."""
    return {**environment.cleaner((folder / "raw").as_uri(), (folder / "staging").as_uri(), clickstream.SOURCE),
            **environment.powertools("cleaner", "Benchmark")}


def pin_to_one_cpu() -> str:
    """Pin this process to one CPU (taskset's system call) and Arrow to one thread; name the CPU."""
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    if not hasattr(os, "sched_setaffinity"):
        return f"not pinned ({platform.system()} has no sched_setaffinity); Arrow on one thread"
    cpu = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return f"CPU {cpu} of {os.cpu_count()} (sched_setaffinity), Arrow on one thread"


def bare(event: dict[str, Any]) -> int:
    """The floor: decode and parse every record, nothing else."""
    parsed = 0
    for item in event["Records"]:
        try:
            json.loads(base64.b64decode(item["kinesis"]["data"]))
            parsed += 1
        except ValueError:
            pass
    return parsed


_ANY_JSON = msgspec.json.Decoder()


def floor(event: dict[str, Any], raw_file: Path) -> int:
    """The least a cleaner must do: every payload base64-decoded (one msgspec call for the list),
    parsed once (msgspec, in C, driven by map()), and the payloads written to one file as they are.
    No rules, no columns, no compression, no second file."""
    payloads = msgspec.convert([item["kinesis"]["data"] for item in event["Records"]], list[bytes])
    parsed = map_or_none(_ANY_JSON.decode, payloads, msgspec.DecodeError, UnicodeDecodeError, RecursionError)
    raw_file.write_bytes(b"".join(payloads))
    return len(parsed) - parsed.count(None)


def _timed(fn: Callable[[], Any]) -> float:
    with contextlib.redirect_stdout(io.StringIO()):  # Powertools' EMF and log lines
        started = time.perf_counter()
        fn()
        return time.perf_counter() - started


def cleaner_round(event: dict[str, Any], folder: Path, rounds: Iterator[int]) -> dict[str, Any]:
    """One timed cleaner call as on a first delivery: a cold cache of masked IPs (a re-run of the same event
    would find them all) and a staging zone of its own (in the same one, the batch would be found staged and
    nothing cleaned: lambdas/cleaner/redelivery.py). Its reads of the mark and of the manifest folder stay."""
    from lambdas.cleaner.handler import handler
    from lambdas.cleaner.pii import LOCAL_KEY, masker

    masker("hash", LOCAL_KEY).clear_cache()
    os.environ[environment.STAGING_URI] = (folder / f"staging-{next(rounds)}").as_uri()
    return handler(event, None)


def throughput(rounds: int) -> dict[str, float]:
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")  # its one line per batch stays off the report
    from benchmarks.baseline import BaselineCleaner

    payloads = records(RECORDS)
    event = event_of(payloads)
    with tempfile.TemporaryDirectory(prefix="bench-cleaner-") as tmp:
        os.environ.update(cleaner_environment(Path(tmp)))
        baseline = BaselineCleaner(Path(tmp))
        runs: dict[str, Callable[[], Any]] = {
            "cleaner": functools.partial(cleaner_round, event, Path(tmp), itertools.count()),
            "baseline": lambda: baseline.handler(event, None),
            "bare": lambda: bare(event),
            "floor": lambda: floor(event, Path(tmp, "floor.bin")),
        }
        for fn in runs.values():  # warm: imports, caches of the first call
            _timed(fn)
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(rounds):
            for name, fn in runs.items():
                times[name].append(_timed(fn))
    medians = {name: statistics.median(values) for name, values in times.items()}
    bests = {f"{name}_best": min(values) for name, values in times.items()}
    return {"mean_record_bytes": sum(map(len, payloads)) / len(payloads), **medians, **bests}


def stages(rounds: int) -> dict[str, float]:
    """Median ms of the handler's steps on the same event: where the time goes."""
    from lambdas.cleaner.batch import SOURCES, clean_batch, judged_at
    from lambdas.cleaner.events import parse_event
    from lambdas.cleaner.pii import LOCAL_KEY, masker
    from lambdas.cleaner.writer import Locations, raw_lines, write_batch

    event = event_of(records(RECORDS))
    times: dict[str, list[float]] = {"parse the event (base64 included)": [], "clean the batch": [],
                                     "build the raw lines": [], "write every file (raw lines, gzip, Parquet, manifest)": []}
    with tempfile.TemporaryDirectory(prefix="bench-stages-") as tmp:
        where = Locations(Path(tmp, "raw").as_uri(), Path(tmp, "staging").as_uri())
        for _ in range(rounds + 1):
            ip_masker = masker("hash", LOCAL_KEY)
            ip_masker.clear_cache()
            marks = [time.perf_counter()]
            (delivery,) = parse_event(event)
            marks.append(time.perf_counter())
            batch = clean_batch(delivery, SOURCES["clickstream"], now=judged_at(delivery, datetime.now(timezone.utc)),
                                masker=ip_masker)
            marks.append(time.perf_counter())
            raw_lines(delivery)
            marks.append(time.perf_counter())
            write_batch(batch, where)
            marks.append(time.perf_counter())
            for name, start, stop in zip(times, marks, marks[1:]):
                times[name].append((stop - start) * 1000)
    return {name: statistics.median(values[1:]) for name, values in times.items()}  # the first run warms up


def six_mb_event() -> dict[str, Any]:
    """The largest event of these records within Lambda's 6 MB invocation payload limit."""
    payloads = records(20_000, seed=11)
    n = len(payloads)
    while len(json.dumps(event_of(payloads[:n]))) > LAMBDA_PAYLOAD_LIMIT:
        n = int(n * 0.97)
    return event_of(payloads[:n])


def memory_child(event_file: str, run_handler: bool) -> None:
    """In a child process: load the event as the Lambda runtime would, maybe clean it; print the
    RSS before cleaning and the peak, in KiB."""
    event = json.loads(Path(event_file).read_bytes())
    from lambdas.cleaner.handler import handler  # imported either way: the same baseline
    before = _status_kib("VmRSS")
    if run_handler:
        with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
            os.environ.update(cleaner_environment(Path(tmp)))
            with contextlib.redirect_stdout(io.StringIO()):
                handler(event, None)
    print(json.dumps({"records": len(event["Records"]), "before_kib": before,
                      "max_rss_kib": _status_kib("VmHWM")}))


def _status_kib(field: str) -> int:
    """A /proc/self/status figure: VmRSS (now) or VmHWM (peak). ru_maxrss would not do: Linux carries it
    over exec from the parent's fork, so a child would report the benchmark's own size."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}: peak memory is measured on Linux only")


def memory() -> dict[str, float]:
    """Peak RSS of a child cleaning a 6 MB event, and of one that only loads it."""
    event = six_mb_event()
    with tempfile.NamedTemporaryFile("w", suffix=".json") as file:
        json.dump(event, file)
        file.flush()
        size = Path(file.name).stat().st_size
        runs = {}
        for run_handler in (True, False):
            args = [sys.executable, "-m", "benchmarks.cleaner", "--memory-child", file.name]
            if not run_handler:
                args.append("--event-only")
            out = subprocess.run(args, check=True, capture_output=True, text=True,
                                 env={**os.environ, "POWERTOOLS_LOG_LEVEL": "WARNING"})
            runs[run_handler] = json.loads(out.stdout.strip().splitlines()[-1])
    return {"records": len(event["Records"]), "event_bytes": size,
            "peak_mb": runs[True]["max_rss_kib"] / 1024, "before_mb": runs[True]["before_kib"] / 1024,
            "event_only_peak_mb": runs[False]["max_rss_kib"] / 1024}


def run(rounds: int = 7) -> Figures:
    cpu = pin_to_one_cpu()
    measured = throughput(rounds)
    steps = stages(rounds)
    mem = memory()
    return Figures(
        records=RECORDS, mean_record_bytes=round(measured["mean_record_bytes"], 1), rounds=rounds, cpu=cpu,
        cleaner_records_per_s=RECORDS / measured["cleaner"], baseline_records_per_s=RECORDS / measured["baseline"],
        bare_records_per_s=RECORDS / measured["bare"], floor_records_per_s=RECORDS / measured["floor"],
        floor_ms=measured["floor"] * 1000, floor_best_ms=measured["floor_best"] * 1000, cleaner_ms=measured["cleaner"] * 1000,
        baseline_ms=measured["baseline"] * 1000, bare_ms=measured["bare"] * 1000,
        cleaner_best_ms=measured["cleaner_best"] * 1000, baseline_best_ms=measured["baseline_best"] * 1000,
        bare_best_ms=measured["bare_best"] * 1000,
        six_mb_records=int(mem["records"]), six_mb_event_bytes=int(mem["event_bytes"]),
        peak_rss_mb=mem["peak_mb"], before_rss_mb=mem["before_mb"], event_only_rss_mb=mem["event_only_peak_mb"],
        stage_ms=steps,
    )


def markdown(f: Figures) -> str:
    ok = lambda met: "met" if met else "**not met**"  # noqa: E731
    return "\n".join([
        "## Cleaner",
        "",
        f"One Kinesis event of {f.records:,} records (the generator's clickstream, mean {f.mean_record_bytes:.0f} bytes, "
        f"{DEFECT_RATE:.0%} defects), from the Lambda event to the raw, clean, quarantine and manifest files "
        f"written; median of {f.rounds} interleaved rounds on {f.cpu}.",
        "",
        "| way | ms per event (median) | ms (best round) | records/s on one core (median) |",
        "| --- | ---: | ---: | ---: |",
        f"| the cleaner (`lambdas/cleaner`) | {f.cleaner_ms:.1f} | {f.cleaner_best_ms:.1f} | "
        f"{f.cleaner_records_per_s:,.0f} |",
        f"| baseline: BatchProcessor + pydantic per record (`benchmarks/baseline.py`) | {f.baseline_ms:.1f} | "
        f"{f.baseline_best_ms:.1f} | {f.baseline_records_per_s:,.0f} |",
        f"| bare: base64 + `json.loads` per record, nothing else | {f.bare_ms:.1f} | {f.bare_best_ms:.1f} | "
        f"{f.bare_records_per_s:,.0f} |",
        f"| floor: the least any cleaner must do (below) | {f.floor_ms:.1f} | {f.floor_best_ms:.1f} | "
        f"{f.floor_records_per_s:,.0f} |",
        "",
        f"- Cleaner vs baseline: **{f.vs_baseline:.1f}x** on medians, {f.baseline_best_ms / f.cleaner_best_ms:.1f}x on "
        f"best rounds (target >= 4x: {ok(f.vs_baseline >= 4)}).",
        f"- Cleaner vs the bare decode and parse: **{f.vs_bare:.2f}x** on medians, "
        f"{f.bare_best_ms / f.cleaner_best_ms:.2f}x on best rounds.",
        f"- Records/s on one core: **{f.cleaner_records_per_s:,.0f}** (target >= {TARGET_RECORDS_PER_S:,}: "
        f"{ok(f.cleaner_records_per_s >= TARGET_RECORDS_PER_S)}).",
        f"- The floor: every payload base64-decoded (one msgspec call for the list), parsed once by msgspec "
        f"(driven by `map()` in C) and written to one file as received; no rules, no columns, no compression. "
        f"{TARGET_RECORDS_PER_S:,} records/s allows {TARGET_MS:.1f} ms for this event; the floor takes "
        f"**{f.floor_ms:.1f} ms** ({f.floor_best_ms:.1f} on the best round), {_left_after_floor(f)}",
        f"- Peak memory for a {f.six_mb_event_bytes / 1e6:.1f} MB event ({f.six_mb_records:,} records, Lambda's 6 MB "
        f"payload limit): **{f.peak_rss_mb:.0f} MB** peak RSS of the whole process; {f.before_rss_mb:.0f} MB "
        f"before cleaning (Python, the imports, the event), {f.event_only_rss_mb:.0f} MB peak for a process "
        f"that only loads the event (target: fits a 512 MB Lambda with 20 % headroom: {ok(f.peak_rss_mb < 512 * 0.8)}).",
        "",
        "Where the cleaner's time goes (the same event, its steps timed one by one; writing includes building "
        "the raw lines again):",
        "",
        "| step | ms |",
        "| --- | ---: |",
        *(f"| {name} | {ms:.1f} |" for name, ms in f.stage_ms.items()),
        "",
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d} on {platform.machine()} {platform.processor() or ''}"
        f" ({os.cpu_count()} cores, Python {platform.python_version()}, pyarrow {pa.__version__}). "
        "Re-run with `make bench`; the figures vary with the machine and its load.",
        "",
        f"<!-- figures: {json.dumps(asdict(f))} -->",
    ])


def _left_after_floor(f: Figures) -> str:
    left = TARGET_MS - f.floor_ms
    rest = (f"the contract's rules, the IP masking, the deduplication and the Parquet and gzip files, which take "
            f"{f.cleaner_ms - f.floor_ms:.1f} ms in the cleaner.")
    if left <= 0:
        return f"more than the whole budget: nothing is left for {rest}"
    return f"leaving {left:.1f} ms for {rest}"


def section(rounds: int) -> str:
    """This benchmark's section of docs/performance.md."""
    return markdown(run(rounds))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--memory-child", metavar="EVENT_FILE", help=argparse.SUPPRESS)
    parser.add_argument("--event-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        memory_child(args.memory_child, run_handler=not args.event_only)
        return
    print(section(args.rounds))


if __name__ == "__main__":
    main()
