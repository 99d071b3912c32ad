"""The local pipeline: the local cloud, migrated tables and provisioned resources, as one object.

`lakehouse demo` runs it once; `lakehouse up` keeps it running, with the event source mapping
polling continuously, and writes `cloud.json` so that other commands (`ingest`, `run batch`,
`replay`) in other shells find it, as they would find AWS through AWS_ENDPOINT_URL.
"""
from __future__ import annotations

import json
import os
import threading
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Callable

import boto3

from cdk_app import config
from cdk_app.config import EnvConfig
from lakehouse.cloud import moto_patches
from lakehouse.cloud.local_cloud import FAKE_CREDENTIALS, LocalCloud
from lakehouse.cloud.poller import KinesisPoller, MappingSettings, PollStats
from lakehouse.cloud.provision import Provisioned, provision
from lakehouse.cloud.sqs_poller import SqsPoller, SqsPollStats
from lakehouse.lake.layout import LocalLake
from lakehouse.sources.fx_fixture import FxFixtureServer
from lambdas.contracts import live
from lambdas.live_committer.maintenance import SCHEDULE_EVERY, maintain_body

CLOUD_FILE = "cloud.json"


class NoLocalCloud(RuntimeError):
    """No local cloud to talk to: no running `lakehouse up` for this lake."""


class PollerStopped(RuntimeError):
    """A source's poller could not go on, so `serve` stopped; the message names the stream and the error."""


@dataclass(frozen=True)
class CloudInfo:
    """What `lakehouse up` publishes for other commands: where the cloud is and what it holds."""

    endpoint: str
    pid: int
    resources: Provisioned


def mapping_settings(env: EnvConfig, dlq_url: str | None) -> MappingSettings:
    """The cleaner's event source mapping, from the same cdk.json settings CDK deploys."""
    return MappingSettings(
        batch_size=env.cleaner_batch_size, batching_window_seconds=env.cleaner_batching_window_seconds,
        max_retry_attempts=env.cleaner_max_retries, max_record_age_seconds=env.cleaner_max_record_age_seconds,
        on_failure_queue_url=dlq_url)


class LocalPipeline:
    """`with LocalPipeline(lake) as pipeline:` starts a fresh local lake and cloud, ready for events."""

    def __init__(self, lake: LocalLake, port: int = 0, progress: Callable[[str], None] = lambda _: None) -> None:
        self.lake, self.env, self._port, self._progress = lake, config.load("local"), port, progress
        self.cloud: LocalCloud | None = None
        self.fx_api: FxFixtureServer | None = None
        self.resources: Provisioned | None = None
        self._pollers: dict[str, KinesisPoller] = {}
        self._live_poller: SqsPoller | None = None

    def start(self) -> "LocalPipeline":
        from lakehouse.lake.catalog import migrated_catalog

        self.lake.wipe_data()
        self.lake.create()
        moto_patches.LOG_DIR = self.lake.root / "logs"  # the functions' logs, as CloudWatch Logs keeps them
        self.cloud = LocalCloud(self.env.account, self.env.region, port=self._port).start()
        for change in migrated_catalog(self.lake.warehouse, self.lake.catalog_db)[1]:
            self._progress(f"tables: {change}")
        self.fx_api = FxFixtureServer().start()  # stands in for the FX-rates HTTP API
        self.resources = provision(self.env, self.lake, fx_api_base_url=self.fx_api.base_url)
        self._progress(f"local cloud at {self.cloud.endpoint}: stream {self.resources.stream_name}, "
                       f"state machine {self.env.state_machine_name}, FX API fixture at {self.fx_api.base_url}")
        return self

    def poller(self, source: str = "clickstream") -> KinesisPoller:
        """The event source mapping of a Kinesis source's stream to its cleaner."""
        if source not in self._pollers:
            assert self.resources is not None, "start() first"
            names = self.resources.kinesis_sources[source]
            self._pollers[source] = KinesisPoller(names["stream"], names["function"],
                                                  mapping_settings(self.env, names["dlq_url"]))
        return self._pollers[source]

    def drain(self, source: str = "clickstream") -> PollStats:
        """Deliver every record now in a source's stream to its cleaner (in batches, as Lambda would)."""
        return self.poller(source).drain()

    def live_poller(self) -> SqsPoller:
        """The event source mapping of the live committer's FIFO queue (decision 0500)."""
        if self._live_poller is None:
            assert self.resources is not None, "start() first"
            self._live_poller = SqsPoller(self.resources.live_queue_url, self.resources.live_committer_function)
        return self._live_poller

    def drain_live(self) -> SqsPollStats:
        """Commit every staged batch the cleaners have notified so far to the live tables."""
        return self.live_poller().drain()

    def maintain_live(self) -> list[str]:
        """Send each live table its maintain message, as the schedule does in AWS (decision 0503); the live
        poller delivers it to the committer behind the table's notifications. Returns the tables."""
        assert self.resources is not None, "start() first"
        return send_live_maintenance(self.resources.live_queue_url)

    def serve(self, stop: threading.Event) -> None:
        """Publish cloud.json and poll continuously until `stop` is set.

        A poller retries its own errors; one that cannot go on at all stops every poller, and `serve`
        raises PollerStopped: a local cloud that went on without one source would lose it unseen.
        """
        assert self.cloud is not None and self.resources is not None, "start() first"
        info = CloudInfo(self.cloud.endpoint, os.getpid(), self.resources)
        path = self.lake.root / CLOUD_FILE
        path.write_text(json.dumps(asdict(info), indent=2) + "\n")
        others = [threading.Thread(target=_poll_on_thread, args=(self.poller(source), stop), daemon=True,
                                   name=f"poller-{source}") for source in self.resources.kinesis_sources
                  if source != "clickstream"]
        others.append(threading.Thread(target=self.live_poller().run_until, args=(stop,), daemon=True,
                                       name="poller-live-commits"))
        others.append(threading.Thread(target=_maintain_on_schedule, args=(self.resources.live_queue_url, stop),
                                       daemon=True, name="live-maintenance-schedule"))
        for thread in others:
            thread.start()
        try:
            self.poller("clickstream").run_until(stop)
        finally:
            stop.set()  # whatever ended this poller ends the others, or the joins below would wait forever
            for thread in others:
                thread.join()
            path.unlink(missing_ok=True)
        for source, poller in self._pollers.items():
            if poller.stopped_by is not None:
                raise PollerStopped(f"the {source} poller (stream {poller.stream_name}) stopped: "
                                    f"{type(poller.stopped_by).__name__}: {poller.stopped_by}") from poller.stopped_by

    def stop(self) -> None:
        if self.fx_api is not None:
            self.fx_api.stop()
            self.fx_api = None
        if self.cloud is not None:
            self.cloud.stop()
            self.cloud = None

    def __enter__(self) -> "LocalPipeline":
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def send_live_maintenance(queue_url: str) -> list[str]:
    """A maintain message into each live table's own message group of the live commits queue (what EventBridge
    Scheduler sends in AWS); a fresh deduplication id, so that a second request within five minutes still runs."""
    tables = sorted(f"{live.NAMESPACE}.{name}" for name in live.TABLE_OF_SOURCE.values())
    sqs = boto3.client("sqs")
    for table in tables:
        sqs.send_message(QueueUrl=queue_url, MessageBody=maintain_body(table), MessageGroupId=table,
                         MessageDeduplicationId=uuid.uuid4().hex)
    return tables


def _maintain_on_schedule(queue_url: str, stop: threading.Event) -> None:
    """Every SCHEDULE_EVERY until `stop`: the live tables' maintain messages. A failed send waits for the next."""
    while not stop.wait(SCHEDULE_EVERY.total_seconds()):
        try:
            send_live_maintenance(queue_url)
        except Exception:  # noqa: BLE001 (as in AWS: a lost maintain message only delays the maintenance)
            continue


def _poll_on_thread(poller: KinesisPoller, stop: threading.Event) -> None:
    try:
        poller.run_until(stop)
    except BaseException:  # noqa: BLE001 - run_until logged it and kept it in stopped_by; serve raises it
        stop.set()


def connect_to_local_cloud(lake: LocalLake) -> CloudInfo:
    """Point this process's AWS clients at the running `lakehouse up` of `lake`."""
    path = lake.root / CLOUD_FILE
    if not path.exists():
        raise NoLocalCloud(f"no local cloud is running for {lake.root}: start one with `lakehouse up` "
                           "in another shell (LAKEHOUSE_HOME chooses the lake)")
    raw = json.loads(path.read_text())
    info = CloudInfo(raw["endpoint"], raw["pid"], Provisioned(**raw["resources"]))
    try:
        os.kill(info.pid, 0)
    except ProcessLookupError:
        raise NoLocalCloud(f"{path} names process {info.pid}, which has stopped: run `lakehouse up` again") from None
    env = config.load("local")
    os.environ.update({**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": info.endpoint,
                       "AWS_DISABLE_HOST_PREFIX_INJECTION": "true", "AWS_DEFAULT_REGION": env.region})
    return info


def read_lines(path: Path) -> list[bytes]:
    """One record per line, as bytes (any bytes; a final newline ends the last line, it adds none)."""
    data = path.read_bytes()
    if not data:
        return []
    return data.removesuffix(b"\n").split(b"\n")
