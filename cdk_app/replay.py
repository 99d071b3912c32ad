"""Replay in AWS, two ways.

- `Replay.role`, the role an operator (or a tool doing what `lakehouse replay --dlq` does locally)
  assumes in AWS: read failure records, fetch the originals, hand them to the cleaner. Only the
  principals of cdk.json's `replay_principals` may assume it (none by default: decision 0225). The CLI
  itself talks to the local cloud only.
- `ReplayWorkflow`: a time range of the raw zone re-cleaned and merged again (`lakehouse replay --from
  --to` locally; in AWS, start its state machine with {"from": ..., "to": ...}).

Their roles are the only readers of raw records besides the writers (cdk_app/raw_zone.py).
"""
from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from cdk_app.cleaner import CLEANER_BUNDLED, PII_KEY_SECRET, Cleaner
from cdk_app.config import KINESIS_SOURCES, PROJECT_ROOT, EnvConfig
from cdk_app.grants import WRITE_OBJECTS, allow, allow_key, allow_list, arn, objects_arn, role_arn
from cdk_app.python_function import PythonFunction
from cdk_app.raw_zone import replay_role_name
from cdk_app.state_machines import logged_state_machine
from lambdas.common import environment
from lambdas.contracts.lake_layout import raw_prefix, staged_prefixes

STREAM_READ = ("kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:ListShards",
               "kinesis:GetShardIterator", "kinesis:GetRecords")
QUEUE_CONSUME = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")
FUNCTION = "replay"  # lambdas/replay
ASL_FILE = PROJECT_ROOT / "step_functions" / "replay.asl.json"
# The rule Step Functions manages to follow a child execution (startExecution.sync).
SYNC_RULE = "StepFunctionsGetEventsForStepFunctionsExecutionRule"


def replay_trusted(scope: Construct, env: EnvConfig) -> dict[str, list[str]]:
    """{account: ARN patterns of its principals} that may assume the replay role, from `env.replay_principals`.
    None configured: only the role itself, which nobody can be without assuming it first, so nobody."""
    if not env.replay_principals:
        return {env.account: [role_arn(scope, replay_role_name(env)).value]}
    trusted: dict[str, list[str]] = {}
    for principal in env.replay_principals:
        trusted.setdefault(principal.split(":")[4], []).append(principal)
    return trusted


def _trusted_in(account: str, patterns: list[str]) -> iam.IPrincipal:
    """`account`'s principals whose ARN is like one of `patterns`: a condition, not a principal ARN, since IAM
    refuses a trust naming a role that does not exist yet and silently breaks it when the role is re-created."""
    return iam.AccountPrincipal(account).with_conditions({"ArnLike": {"aws:PrincipalArn": patterns}})


class Replay(Construct):
    """`role`: per cleaner it re-drives, may read the cleaner's raw records, consume its dead letters,
    re-read its stream and invoke it; nothing else."""

    def __init__(self, scope: Construct, construct_id: str, *, env: EnvConfig, key: kms.IKey, raw_bucket: str) -> None:
        super().__init__(scope, construct_id)
        first, *others = replay_trusted(self, env).items()
        self.role = iam.Role(
            self, "Role",
            role_name=replay_role_name(env),
            assumed_by=_trusted_in(*first),
            description="Replays the cleaners' failed batches; the only reader of the raw zone",
            max_session_duration=Duration.hours(4),
        )
        for account, patterns in others:
            self.role.assume_role_policy.add_statements(iam.PolicyStatement(
                actions=["sts:AssumeRole"], principals=[_trusted_in(account, patterns)]))
        self._raw_bucket = raw_bucket
        allow_key(self.role, key, ("kms:Decrypt",))

    def redrive(self, cleaner: Cleaner, stream: kinesis.IStream) -> None:
        """What re-driving a cleaner's failures takes: its raw records, dead letters, stream, function."""
        prefix = raw_prefix(cleaner.source)
        allow_list(self.role, self._raw_bucket, [prefix])
        allow(self.role, ("s3:GetObject",), [objects_arn(self, self._raw_bucket, prefix)],
              wildcard_reason="Replay reads back the raw batch files of the failed sequence ranges, named at "
                              "ingest time, under the cleaner's raw prefix.")
        self.role.add_to_principal_policy(iam.PolicyStatement(
            actions=list(QUEUE_CONSUME), resources=[cleaner.dead_letters.queue_arn]))
        self.role.add_to_principal_policy(iam.PolicyStatement(actions=list(STREAM_READ), resources=[stream.stream_arn]))
        self.role.add_to_principal_policy(iam.PolicyStatement(
            actions=["lambda:InvokeFunction"], resources=[cleaner.function.function.function_arn]))


class ReplayWorkflow(Construct):
    """The replay workflow (step_functions/replay.asl.json): `function`, the replay Lambda that re-cleans a
    time range of the raw zone into staging (lambdas/replay), and `state_machine`, which runs it to the end
    and then the batch pipeline as a child execution. The function may read the stream sources' raw
    prefixes (the raw zone's policy names its role), write their staging and read the PII key."""

    def __init__(self, scope: Construct, construct_id: str, *, env: EnvConfig, key: kms.IKey,
                 bucket_names: dict[str, str], pii_key: secretsmanager.ISecret) -> None:
        super().__init__(scope, construct_id)
        raw, staging = bucket_names["raw"], bucket_names["staging"]
        self.function = PythonFunction(
            self, "Function", env=env, folder=FUNCTION, key=key, extra_sources=["lambdas/cleaner"],
            bundled=CLEANER_BUNDLED, with_pyarrow=True, timeout=Duration.minutes(15), memory_mb=1024,
            environment=environment.replay(f"s3://{raw}", f"s3://{staging}",
                                           pii_key_secret=env.resource_name(PII_KEY_SECRET)),
        )
        role = self.function.role
        prefixes = [raw_prefix(source) for source in KINESIS_SOURCES]
        allow_list(role, raw, prefixes)
        allow(role, ("s3:GetObject",), [objects_arn(self, raw, prefix) for prefix in prefixes],
              wildcard_reason="Replay reads the raw batch files of a time range, named at ingest time, under "
                              "the stream sources' raw prefixes.")
        allow(role, WRITE_OBJECTS, [objects_arn(self, staging, prefix) for source in KINESIS_SOURCES
                                    for prefix in staged_prefixes(source)],
              wildcard_reason="Replay rewrites each batch's staging files, named by batch, under the stream "
                              "sources' staged prefixes (clean, quarantine, manifests, manifest index).")
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["secretsmanager:GetSecretValue"], resources=[pii_key.secret_arn]))
        allow_key(role, key)

        name = env.replay_state_machine_name
        batch_pipeline = env.state_machine_name
        machine_role = iam.Role(self, "MachineRole", assumed_by=iam.ServicePrincipal("states.amazonaws.com"))
        machine_role.add_to_principal_policy(iam.PolicyStatement(
            actions=["lambda:InvokeFunction"], resources=[self.function.function.function_arn]))
        allow(machine_role, ("states:StartExecution",), [arn(self, "states", f"stateMachine:{batch_pipeline}")])
        # startExecution.sync: the child's status, read via a rule Step Functions manages for it
        allow(machine_role, ("states:DescribeExecution", "states:StopExecution"),
              [arn(self, "states", f"execution:{batch_pipeline}:*")],
              wildcard_reason="The batch pipeline's child executions are named at run time.")
        allow(machine_role, ("events:PutTargets", "events:PutRule", "events:DescribeRule"),
              [arn(self, "events", f"rule/{SYNC_RULE}")])
        self.state_machine = logged_state_machine(
            self, ids=("StateMachine", "MachineLogs"), env=env, key=key, name=name, asl_file=ASL_FILE,
            role=machine_role, substitutions={
                "ReplayFunctionArn": self.function.function.function_arn,
                "BatchPipelineArn": arn(self, "states", f"stateMachine:{batch_pipeline}").value,
            })
