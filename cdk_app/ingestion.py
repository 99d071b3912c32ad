"""Ingestion stack: every source into the lake, and the alarms that say when one stalls or turns bad.

- shop events and orders: a Kinesis stream per source, each read by its own instance of the cleaner
  (cdk_app/cleaner.py, config.KINESIS_SOURCES);
- Kafka, where `msk_enabled`: an MSK Serverless topic, read by the clickstream's cleaner (cdk_app/msk.py);
- FX rates: the scheduled API connector (cdk_app/api_connector.py);
- the product catalog: CSV drops on the landing bucket, loaded by the file loader (cdk_app/file_loader.py);
- replay: the role that re-drives the cleaners' failures, and the replay workflow (cdk_app/replay.py);
- the live path: the live committer and its SQS FIFO queue, which the cleaners of sources with a live table
  notify (cdk_app/live_committer.py); here beside them, so the queue's URL and grant stay in one stack.
"""
from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cdk_app.alarms import Alarms
from cdk_app.api_connector import ApiConnector
from cdk_app.cleaner import Cleaner
from cdk_app.config import KINESIS_SOURCES, EnvConfig
from cdk_app.file_loader import FileLoader
from cdk_app.live_committer import LiveCommitter
from cdk_app.msk import MskIngestion, availability_zones
from cdk_app.nag import acknowledge
from cdk_app.replay import Replay, ReplayWorkflow
from cdk_app.secure_bucket import bucket_name
from lambdas.contracts import clickstream

LIVE_COMMITTER = "live-committer"  # its alarms' names: lakehouse-<env>-live-committer-*


class IngestionStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        env_config: EnvConfig,
        key: kms.IKey,
        bucket_names: dict[str, str],
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        env = env_config
        self.live_committer = LiveCommitter(self, "LiveCommitter", env=env, key=key, bucket_names=bucket_names)
        # one stream and one cleaner per source; clickstream's keep their first construct ids (and so
        # their logical ids: CloudFormation would otherwise replace them)
        self.streams: dict[str, kinesis.Stream] = {}
        self.cleaners: dict[str, Cleaner] = {}
        for source in KINESIS_SOURCES:
            prefix = "" if source == clickstream.SOURCE else source.capitalize()
            self.streams[source] = self._stream(f"{prefix}Stream", env, env.stream_for(source), key)
            self.cleaners[source] = Cleaner(
                self, f"{prefix}Cleaner", env=env, source=source, key=key, bucket_names=bucket_names,
                pii_key=self.cleaners[clickstream.SOURCE].pii_key if self.cleaners else None,
                live_queue=self.live_committer.queue)
            self.cleaners[source].read_stream(self.streams[source])
        self.stream, self.cleaner = self.streams[clickstream.SOURCE], self.cleaners[clickstream.SOURCE]
        self.msk: MskIngestion | None = None
        if env.msk_enabled:  # Kafka carries the clickstream only
            self.msk = MskIngestion(self, "Msk", env=env, key=key)
            self.msk.feed(self.cleaner)

        self.api_connector = ApiConnector(self, "ApiConnector", env=env, key=key, bucket_names=bucket_names)
        access_logs = s3.Bucket.from_bucket_name(self, "AccessLogs", bucket_name(env, "access-logs"))
        self.file_loader = FileLoader(self, "FileLoader", env=env, key=key, bucket_names=bucket_names,
                                      access_logs=access_logs)

        self.replay = Replay(self, "Replay", env=env, key=key, raw_bucket=bucket_names["raw"])
        for source in KINESIS_SOURCES:
            self.replay.redrive(self.cleaners[source], self.streams[source])
        self.replay_workflow = ReplayWorkflow(self, "ReplayWorkflow", env=env, key=key, bucket_names=bucket_names,
                                              pii_key=self.cleaner.pii_key)

        self.alarms = Alarms(self, "Alarms", env=env, key=key)
        cleaners = [(cleaner.component, cleaner) for cleaner in self.cleaners.values()]
        for what, cleaner in cleaners:
            self.alarms.iterator_age(cleaner.function.function, what)
            self.alarms.ingest_lag(cleaner.source, what)
            self.alarms.quarantine_rate(cleaner.source, what)
        for what, part in (*cleaners, ("api-connector", self.api_connector), ("file-loader", self.file_loader)):
            self.alarms.errors(part.function.function, what)
            self.alarms.dead_letters(part.dead_letters, what)
        self.alarms.errors(self.replay_workflow.function.function, "replay")
        self.alarms.errors(self.live_committer.function.function, LIVE_COMMITTER)
        self.alarms.dead_letters(self.live_committer.dead_letter_queue, LIVE_COMMITTER)
        self.alarms.commit_lag(self.live_committer.queue, LIVE_COMMITTER)
        self.alarms.every_throttle(self)
        for source, stream in self.streams.items():
            self.alarms.write_throttles(stream, env.stream_for(source).removeprefix(env.resource_name("")))
        if self.msk:
            self.alarms.kafka_lag(self.cleaner.function.function, self.cleaner.component)

    def _stream(self, construct_id: str, env: EnvConfig, name: str, key: kms.IKey) -> kinesis.Stream:
        on_demand = env.kinesis_shards == 0
        stream = kinesis.Stream(
            self, construct_id,
            stream_name=name,
            stream_mode=kinesis.StreamMode.ON_DEMAND if on_demand else kinesis.StreamMode.PROVISIONED,
            shard_count=None if on_demand else env.kinesis_shards,
            encryption=kinesis.StreamEncryption.KMS,
            encryption_key=key,
            retention_period=Duration.days(7),  # room to fix and replay a broken cleaner
        )
        acknowledge(stream, {
            "AwsSolutions-KDS3": "Encrypted with the lake's customer-managed key, not aws/kinesis: its key "
                                 "policy and grants decide who can read events, and it rotates yearly.",
        })
        return stream

    @property
    def availability_zones(self) -> list[str]:
        """CDK's Vpc checks its zones against the stack's, which would otherwise be a context lookup."""
        return availability_zones()
