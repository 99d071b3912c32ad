"""The live path in AWS, modelled from its parts: event -> queryable, and what it costs a month (issue 14).

Inputs: prod's settings (cdk.json via cdk_app.config; the committer's from cdk_app/live_committer.py), the
cleaner's measured time per record (docs/performance.md, benchmarks/cleaner.py), the committer's measured commit
(benchmarks/freshness.py: its handler on a local lake, with the files and catalog calls it makes), and the
assumptions below, each with its source. Prices: lakehouse/operations/prices.py. docs/live.md ("How fresh, and
what it costs") shows the arithmetic.

Latency: each part has a typical and a worst figure; the worst case is their sum, which bounds the p95 (every
part at its worst at once is rarer than one event in twenty).

Commits: the committer's cadence (cdk.json live_commit_every_seconds, decision 0504) defers a table's notifications
until the oldest is that old, unless a delivery is full (SQS FIFO: 10). So a table gets at most one commit per
cadence, but at least one per 10 notifications, and never more than one per notification or per commit time.
"""
from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path

from lakehouse.operations import prices

HOURS_PER_MONTH = 730  # AWS's pricing examples' month
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
COST_RATE = 100.0  # events a second: issue 14's cost case
EVENT_BYTES = 1024  # ... of 1 KB each

# Assumptions, each with its source (no AWS page gives a latency figure for Glue or Athena's queue).
KINESIS_TO_POLL_S = (0.5, 1.0)  # Lambda polls each shard once a second; Kinesis: "average propagation delays
# typically below 1 second" at one poll a second (docs.aws.amazon.com/streams/latest/dev/kinesis-low-latency.html)
S3_REQUEST_S = (0.03, 0.2)  # small requests (< 512 KB): "median latency ... in the tens of milliseconds"
# (docs.aws.amazon.com/whitepapers/latest/s3-optimizing-performance-best-practices/timeouts-and-retries-for-latency-sensitive-applications.html);
# worst: ours, well under the 2 s after which AWS advises a retry
GLUE_REQUEST_S = (0.05, 0.3)  # ours: no published figure; a metadata API call in the region
SQS_DELIVERY_S = (0.1, 1.0)  # send, then Lambda's long poll returns "as soon as" a message is available
# (docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/best-practices-using-appropriate-polling-mode.html);
# the mapping has no batching window: none on a FIFO queue (docs.aws.amazon.com/lambda/latest/dg/services-sqs-parameters.html)
ATHENA_QUEUE_AND_PLANNING_S = (1.0, 5.0)  # ours; Athena reports both per query (QueryQueueTimeInMillis,
# QueryPlanningTimeInMillis: docs.aws.amazon.com/athena/latest/APIReference/API_QueryRuntimeStatisticsTimeline.html)
SQS_POLLERS = 5  # Lambda long-polls an idle queue with five pollers, "as few as 2" at low traffic
# (docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html): five, to be safe
SQS_LONG_POLL_S = 20  # the longest long poll: an idle poller's empty receive every 20 s
KMS_DATA_KEY_REUSE_S = 300  # SQS SSE-KMS: a data key per principal every 5 minutes (the queue's default)
LOG_BYTES_PER_INVOCATION = 1500  # ours: START, END, REPORT and the committer's one "committed" line
DEFAULT_MAINTENANCE_S = 15 * 60  # if cdk_app/live_committer.py has no MAINTENANCE_SCHEDULE
DEFERRAL_S = 0.05  # ours: a deferring invocation makes one SQS request (ChangeMessageVisibilityBatch), no catalog


@dataclass(frozen=True)
class ProdSettings:
    """What the model needs of an environment's deployed settings."""
    env: str
    region: str
    shards: int  # per stream
    batch_size: int  # the cleaner's mapping
    window_s: float  # its batching window
    committer_batch_size: int
    committer_memory_mb: int
    maintenance_every_s: float
    maintenance_assumed: bool  # True: cdk_app/live_committer.py had no schedule, DEFAULT_MAINTENANCE_S assumed
    live_tables: int
    commit_every_s: float = 0.0  # the committer's cadence per table (cdk.json live_commit_every_seconds); 0: none


def prod_settings(env: str = "prod") -> ProdSettings:
    """`env`'s settings from cdk.json (cdk_app.config) and the committer's from cdk_app/live_committer.py."""
    from cdk_app import config
    from cdk_app import live_committer
    from lambdas.contracts import live

    settings = config.load(env)
    schedule = getattr(live_committer, "MAINTENANCE_SCHEDULE", None)
    return ProdSettings(
        env=env, region=settings.region, shards=settings.kinesis_shards, batch_size=settings.cleaner_batch_size,
        window_s=settings.cleaner_batching_window_seconds, committer_batch_size=live_committer.BATCH_SIZE,
        committer_memory_mb=committer_memory_mb(Path(live_committer.__file__)),
        maintenance_every_s=rate_seconds(schedule) if schedule else DEFAULT_MAINTENANCE_S,
        maintenance_assumed=schedule is None, live_tables=len(live.TABLE_OF_SOURCE),
        commit_every_s=settings.live_commit_every_seconds)


def committer_memory_mb(source: Path) -> int:
    """The `memory_mb=` the committer's PythonFunction is given in cdk_app/live_committer.py (read, not re-typed)."""
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "PythonFunction":
            for keyword in node.keywords:
                if keyword.arg == "memory_mb" and isinstance(keyword.value, ast.Constant):
                    return int(keyword.value.value)
    raise ValueError(f"{source} gives its PythonFunction no memory_mb=<number>")


def rate_seconds(expression: str) -> float:
    """Seconds of an EventBridge Scheduler `rate(N unit)` expression."""
    match = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expression)
    if not match:
        raise ValueError(f"not a rate expression: {expression!r}")
    unit = {"minute": 60, "hour": 3600, "day": 86400}[match.group(2).rstrip("s")]
    return int(match.group(1)) * unit


@dataclass(frozen=True)
class CleanerFigures:
    ms_per_record: float  # the cleaner's, on one core (benchmarks/cleaner.py)


def cleaner_figures(page: Path | None = None) -> CleanerFigures:
    """The cleaner's measured ms per record, from its section of docs/performance.md."""
    page = page or Path(__file__).resolve().parents[2] / "docs" / "performance.md"
    section = page.read_text().split("<!-- benchmark:cleaner -->", 1)[-1].split("<!-- /benchmark:cleaner -->", 1)[0]
    found = re.search(r"<!-- figures: (.*?) -->", section)
    if not found:
        raise ValueError(f"{page} has no cleaner figures: run `python -m benchmarks --only cleaner`")
    figures = json.loads(found.group(1))
    return CleanerFigures(figures["cleaner_ms"] / figures["records"])


@dataclass(frozen=True)
class MeasuredCommit:
    """The live committer's handler on a local lake (benchmarks/freshness.py), per commit."""
    seconds: float  # median wall time of a commit (one staged batch), local files and sqlite catalog
    records_per_batch: int
    commits: int
    file_reads: float  # FileIO inputs opened: metadata, manifest lists, the staged file's footer
    file_writes: float  # FileIO outputs: manifests, manifest lists, metadata, the ledger's data file
    # table loads (Glue: GetTable); the local catalog's commit loads the table too, as Glue's commit calls GetTable
    catalog_reads: float
    catalog_commits: float  # catalog commits (Glue: UpdateTable)
    maintenance_seconds: float = 0.0  # one maintenance of the table after those commits
    cleaner_files_per_batch: float = 6.0  # objects the cleaner writes per batch

    @property
    def glue_requests(self) -> float:
        return self.catalog_reads + self.catalog_commits

    def aws_seconds(self, which: int = 0) -> float:
        """The commit in AWS: the local time plus each request's latency (typical: which=0, worst: 1)."""
        return (self.seconds + (self.file_reads + self.file_writes) * S3_REQUEST_S[which]
                + self.glue_requests * GLUE_REQUEST_S[which])


@dataclass(frozen=True)
class Shape:
    """How a rate of events becomes cleaner batches and commits at given settings."""
    rate: float
    per_shard_rate: float
    batch_wait_s: float  # until a shard's batch is delivered: full, or the window over
    records_per_batch: int
    batches_per_s: float  # all shards: notifications a second

    @classmethod
    def of(cls, settings: ProdSettings, rate: float) -> "Shape":
        if rate <= 0 or settings.shards <= 0:
            raise ValueError(f"a positive rate and shard count are needed, got {rate} and {settings.shards}")
        per_shard = rate / settings.shards
        wait = min(settings.window_s, settings.batch_size / per_shard) if settings.window_s else 1.0
        return cls(rate, per_shard, wait, min(settings.batch_size, max(1, round(per_shard * wait))),
                   settings.shards / wait)

    def commits_per_s(self, commit_s: float, commit_every_s: float = 0.0, delivery: int = 10) -> float:
        """Commits to the table a second: one per notification while a commit takes less than the gap between two,
        else back to back (each delivery taking what waited); with a cadence, at most one per `commit_every_s`; but
        a delivery holds `delivery` notifications at most (SQS FIFO: 10), and a full one commits at once."""
        return min(self.batches_per_s, max(1 / max(commit_s, commit_every_s), self.batches_per_s / delivery))


@dataclass(frozen=True)
class Part:
    name: str
    typical_s: float
    worst_s: float
    source: str


@dataclass(frozen=True)
class Latency:
    rate: float
    parts: tuple[Part, ...]

    @property
    def typical_s(self) -> float:
        return sum(p.typical_s for p in self.parts)

    @property
    def worst_s(self) -> float:
        return sum(p.worst_s for p in self.parts)

    @property
    def dominant(self) -> Part:
        return max(self.parts, key=lambda p: p.worst_s)


def latency(settings: ProdSettings, cleaner: CleanerFigures, commit: MeasuredCommit, rate: float,
            commit_every_s: float | None = None) -> Latency:
    """Event -> queryable in AWS at `rate` events a second, part by part (`commit_every_s`: the committer's cadence,
    settings.commit_every_s unless given; a notification waits for it)."""
    shape = Shape.of(settings, rate)
    every = settings.commit_every_s if commit_every_s is None else commit_every_s
    compute = cleaner.ms_per_record * shape.records_per_batch / 1000
    writes = commit.cleaner_files_per_batch
    commit_typical, commit_worst = commit.aws_seconds(0), commit.aws_seconds(1)
    commits = shape.commits_per_s(commit_typical, every, settings.committer_batch_size)
    busy = min(1.0, commits * commit_typical)  # the share of time the table's committer is busy
    return Latency(rate, (
        Part("Kinesis, then Lambda's poll of the shard", *KINESIS_TO_POLL_S, "Kinesis low-latency guide"),
        Part(f"the cleaner's batching window ({settings.env}: {settings.window_s:g} s, batch {settings.batch_size}, "
             f"{settings.shards} shards)", shape.batch_wait_s / 2, shape.batch_wait_s,
             f"cdk.json; {shape.records_per_batch} records a batch at {shape.per_shard_rate:g}/s a shard"),
        Part("the cleaner's run", compute + writes * S3_REQUEST_S[0], compute + writes * S3_REQUEST_S[1],
             f"{cleaner.ms_per_record * 1000:.1f} µs a record (benchmarks/cleaner.py), {writes:.1f} S3 writes"),
        Part("SQS FIFO: send, then the committer's long poll", *SQS_DELIVERY_S, "SQS long polling"),
        Part("waiting for the table's previous commit", commit_typical * busy / 2, commit_worst,
             "one invocation per message group at a time"),
        # deferred until the delivery's oldest is `every` old (whole seconds, rounded down), then received again;
        # typically half the gap between two commits
        *([Part(f"the committer's cadence (live_commit_every_seconds: {every:g} s)", min(every, 1 / commits) / 2,
                every + SQS_DELIVERY_S[1], "cdk.json; deferred by visibility, then SQS's long poll again (decision "
                "0504)")] if every else []),
        Part("the commit", commit_typical, commit_worst,
             f"measured {commit.seconds * 1000:.0f} ms + {commit.file_reads + commit.file_writes:.0f} S3 and "
             f"{commit.glue_requests:.0f} Glue requests"),
        Part("Athena: queue and planning", *ATHENA_QUEUE_AND_PLANNING_S, "assumed (Athena's own statistics)"),
    ))


@dataclass(frozen=True)
class Item:
    name: str
    quantity: float
    unit: str
    usd: float


@dataclass(frozen=True)
class Cost:
    rate: float
    event_bytes: int
    region: str
    items: tuple[Item, ...]
    commits_per_s: float = 0.0  # to each live table

    @property
    def total_usd(self) -> float:
        return sum(i.usd for i in self.items)

    @property
    def largest(self) -> Item:
        return max(self.items, key=lambda i: i.usd)


def monthly_cost(settings: ProdSettings, commit: MeasuredCommit, rate: float = COST_RATE,
                 event_bytes: int = EVENT_BYTES, commit_every_s: float | None = None) -> Cost:
    """What the live path adds to the bill in a month at `rate` events a second (the cleaners, the stream and
    the batch run anyway). On-demand prices, no free tier. `commit_every_s`: the committer's cadence,
    settings.commit_every_s unless given."""
    shape = Shape.of(settings, rate)
    every = settings.commit_every_s if commit_every_s is None else commit_every_s
    commit_s = commit.aws_seconds(0)
    commits = shape.commits_per_s(commit_s, every, settings.committer_batch_size) * SECONDS_PER_MONTH
    # with a cadence, each commit that is not of a full delivery waited one deferring delivery; one per commit
    # bounds them (at prod's rate every commit is of a full delivery whose first messages were deferred once)
    deferrals = commits if every else 0.0
    files_per_commit = shape.batches_per_s * SECONDS_PER_MONTH / commits  # each file's footer: one GET (1 measured)
    maintenances = settings.live_tables * SECONDS_PER_MONTH / settings.maintenance_every_s
    # a maintenance trims, compacts and expires: up to three commits' requests on top of its measured time
    maintenance_s = commit.maintenance_seconds + 3 * (commit_s - commit.seconds)
    gb = settings.committer_memory_mb / 1024
    notifications = shape.batches_per_s * SECONDS_PER_MONTH
    # a notification (about 300 bytes: the batch's file and ledger, never its events) is one 64 KB chunk
    sqs = (notifications + maintenances  # sends: the cleaners', the scheduler's
           + commits + deferrals + maintenances  # receives that return messages (a maintain message may share one;
           # counted apart)
           + SQS_POLLERS * SECONDS_PER_MONTH / SQS_LONG_POLL_S  # idle pollers' empty receives
           + commits + maintenances  # deletes (one DeleteMessageBatch per delivery)
           + deferrals)  # the deferrals' ChangeMessageVisibilityBatch
    work = commits + 3 * maintenances
    kms = 3 * SECONDS_PER_MONTH / KMS_DATA_KEY_REUSE_S  # the cleaner's and the scheduler's sends, the committer's receives
    invocations = commits + deferrals + maintenances
    log_gb = invocations * LOG_BYTES_PER_INVOCATION / 1e9
    rows = [
        ("committer requests", invocations, "invocations", prices.LAMBDA_REQUESTS),
        # the footers of a commit's files are read in parallel (pyiceberg's executor): no longer a commit
        ("committer duration", (commits * commit_s + deferrals * DEFERRAL_S + maintenances * maintenance_s) * gb,
         "GB-s", prices.LAMBDA_GB_SECONDS_X86),
        ("SQS FIFO requests", sqs, "requests", prices.SQS_FIFO_REQUESTS),
        ("S3 PUTs of the commits", work * commit.file_writes, "requests", prices.S3_STANDARD_PUTS),
        ("S3 GETs of the commits", work * commit.file_reads + commits * (files_per_commit - 1), "requests",
         prices.S3_STANDARD_GETS),
        ("Glue catalog requests", work * commit.glue_requests, "requests", prices.GLUE_CATALOG_REQUESTS),
        ("KMS requests (SQS data keys)", kms, "requests", prices.KMS_REQUESTS),
        ("CloudWatch Logs of the committer", log_gb, "GB", prices.CLOUDWATCH_LOGS_INGESTED),
    ]
    return Cost(rate, event_bytes, settings.region,
                tuple(Item(name, quantity, unit, price.of(quantity)) for name, quantity, unit, price in rows),
                commits / SECONDS_PER_MONTH)
