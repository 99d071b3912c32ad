"""The operations stack: one CloudWatch dashboard per environment, `lakehouse-<env>-operations` (decision 0236).

It charts what the other stacks of the stage deploy, found in them by type, so every stream,
function, queue, workflow, job, workgroup and alarm is on it without a list to keep: each resource's
physical name is read from the CloudFormation resource that names it (one spelling of every name),
and the metrics are made here by name, so the stacks don't import each other's values.

Widgets: alarm states; per stream its ingestion rate (IncomingRecords) and iterator age
(GetRecords.IteratorAgeMilliseconds), per cleaner its IteratorAge, and with MSK its Kafka OffsetLag;
per source the cleaner's clean, quarantined and duplicate counts (its EMF metrics,
lambdas/cleaner/metrics.py), its quarantine rate against its limit (the expression its alarm reads,
cdk_app/alarms.py) and its ingest lag; per workflow its outcomes and durations (Step Functions); per Glue
job its ETL time (`--enable-metrics`, cdk_app/glue_jobs.py); per Athena workgroup the bytes scanned;
per dead-letter queue its depth; per function its errors and throttles.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_athena as athena
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_glue as glue
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct, IConstruct

from cdk_app.alarms import (PERIOD, QUARANTINE_RATE_MIN_RECORDS, cleaner_metric, function_name,
                            quarantine_rate_expression)
from cdk_app.cleaner import Cleaner
from cdk_app.config import EnvConfig
from cdk_app.msk import MskIngestion
from cdk_app.python_function import PythonFunction
from lambdas.cleaner import metrics as cleaner_metrics

COMPONENT = "operations"  # the stack's and the dashboard's name component
BATCH_PERIOD = Duration.hours(1)  # workflows, jobs and queries: a few runs an hour at most
ROW_WIDTH = 24  # a dashboard's grid is 24 columns wide
HEIGHT = 6
# Glue's ETL time with `--enable-metrics`: per job, all runs (JobRunId ALL), milliseconds, delta per report
GLUE_ELAPSED = "glue.driver.aggregate.elapsedTime"
STATE_MACHINE_OUTCOMES = ("ExecutionsSucceeded", "ExecutionsFailed", "ExecutionsTimedOut")


def physical_name(construct: IConstruct, attribute: str) -> str:
    """The literal name `construct` (a CloudFormation resource) is given, e.g. a CfnQueue's queue_name."""
    value = getattr(construct, attribute)
    assert isinstance(value, str) and "${Token" not in value, f"{construct.node.path}: {attribute} is not a literal"
    return value


@dataclass(frozen=True)
class Inventory:
    """What the dashboard charts, by physical name, found in `stacks` by type."""
    streams: tuple[str, ...]
    cleaners: Mapping[str, str]  # {source: its cleaner function}
    kafka_consumers: tuple[str, ...]  # functions an MSK mapping feeds
    functions: tuple[str, ...]
    state_machines: tuple[str, ...]
    glue_jobs: tuple[str, ...]
    workgroups: tuple[str, ...]
    queues: tuple[str, ...]
    alarms: tuple[str, ...]

    @classmethod
    def of(cls, stacks: Sequence[Stack]) -> "Inventory":
        found = [part for stack in stacks for part in stack.node.find_all()]

        def names(cfn_type: type, attribute: str) -> tuple[str, ...]:
            return tuple(physical_name(part, attribute) for part in found if isinstance(part, cfn_type))

        cleaners = [part for part in found if isinstance(part, Cleaner)]
        return cls(
            streams=names(kinesis.CfnStream, "name"),
            cleaners={c.source: function_name(c.function) for c in cleaners},
            kafka_consumers=tuple(function_name(c.function) for part in found
                                  if isinstance(part, MskIngestion) for c in part.consumers),
            functions=tuple(function_name(part) for part in found
                            if isinstance(part, PythonFunction)),
            state_machines=names(sfn.CfnStateMachine, "state_machine_name"),
            glue_jobs=names(glue.CfnJob, "name"),
            workgroups=names(athena.CfnWorkGroup, "name"),
            queues=names(sqs.CfnQueue, "queue_name"),
            alarms=names(cloudwatch.CfnAlarm, "alarm_name"),
        )


class OperationsDashboard(Construct):
    """`dashboard`: the environment's CloudWatch dashboard over everything `watched` deploys (see the module)."""

    def __init__(self, scope: Construct, construct_id: str, *, env: EnvConfig, watched: Sequence[Stack]) -> None:
        super().__init__(scope, construct_id)
        self.inventory = found = Inventory.of(watched)
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=env.resource_name(COMPONENT),
                                              default_interval=Duration.days(1))
        alarms = [cloudwatch.Alarm.from_alarm_name(self, f"Alarm{i}", name) for i, name in enumerate(found.alarms)]
        self.dashboard.add_widgets(cloudwatch.AlarmStatusWidget(
            title="Alarms", alarms=alarms, width=ROW_WIDTH, height=HEIGHT,
            sort_by=cloudwatch.AlarmStatusWidgetSortBy.STATE_UPDATED_TIMESTAMP))
        ingestion = [
            Graph("Ingestion rate (records per 5 minutes)",
                  [_metric("AWS/Kinesis", "IncomingRecords", {"StreamName": s}, "Sum", s) for s in found.streams]),
            Graph("Stream iterator age (ms, maximum)",
                  [_metric("AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds", {"StreamName": s}, "Maximum", s)
                   for s in found.streams]),
            Graph("Cleaner iterator age (ms, maximum)",
                  [_metric("AWS/Lambda", "IteratorAge", {"FunctionName": f}, "Maximum", f)
                   for f in found.cleaners.values()]),
        ]
        if found.kafka_consumers:
            ingestion.append(Graph("Kafka consumer lag (records, maximum)",
                                   [_metric("AWS/Lambda", "OffsetLag", {"FunctionName": f}, "Maximum", f)
                                    for f in found.kafka_consumers]))
        self._row(*ingestion)
        self._row(*(Graph(f"Cleaned {source} (records per 5 minutes)", [
            cleaner_metric(source, name, "Sum", label=name)
            for name in (cleaner_metrics.CLEAN, cleaner_metrics.QUARANTINED, cleaner_metrics.DUPLICATES)],
            stacked=True) for source in found.cleaners))
        # a graph per source: two expressions in one graph could not both call their metrics records_in, quarantined
        limits = env.quality.max_quarantine_rate
        self._row(
            *(Graph(f"Quarantine rate {source} (5 minutes; 0 below {QUARANTINE_RATE_MIN_RECORDS} records)",
                    [quarantine_rate_expression(source, label=source)],
                    limits=(cloudwatch.HorizontalAnnotation(value=limits[source], label="limit (alarm above)"),))
              for source in found.cleaners),
            Graph("Cleaner ingest lag (ms, maximum)",
                  [cleaner_metric(source, cleaner_metrics.INGEST_LAG, "Maximum", label=source)
                   for source in found.cleaners]),
        )
        machines = {name: Stack.of(self).format_arn(service="states", resource="stateMachine", resource_name=name,
                                                    arn_format=ArnFormat.COLON_RESOURCE_NAME)
                    for name in found.state_machines}
        self._row(
            Graph("Workflow runs per hour", [
                _metric("AWS/States", outcome, {"StateMachineArn": arn}, "Sum", f"{name} {outcome}", BATCH_PERIOD)
                for name, arn in machines.items() for outcome in STATE_MACHINE_OUTCOMES]),
            Graph("Workflow run time (ms, average and maximum)", [
                _metric("AWS/States", "ExecutionTime", {"StateMachineArn": arn}, statistic, f"{name} {statistic}",
                        BATCH_PERIOD)
                for name, arn in machines.items() for statistic in ("Average", "Maximum")]),
        )
        self._row(
            Graph("Glue job ETL time (ms per hour)", [
                _metric("Glue", GLUE_ELAPSED, {"JobName": job, "JobRunId": "ALL", "Type": "count"}, "Sum", job,
                        BATCH_PERIOD) for job in found.glue_jobs]),
            Graph("Athena bytes scanned per hour", [_scanned(workgroup) for workgroup in found.workgroups]),
        )
        self._row(
            Graph("Dead-letter queues (messages waiting)", [
                _metric("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": q}, "Maximum", q)
                for q in found.queues]),
            Graph("Function errors", [_metric("AWS/Lambda", "Errors", {"FunctionName": f}, "Sum", f)
                                      for f in found.functions]),
            Graph("Function throttles", [_metric("AWS/Lambda", "Throttles", {"FunctionName": f}, "Sum", f)
                                         for f in found.functions]),
        )

    def _row(self, *graphs: "Graph") -> None:
        """One row of the dashboard: `graphs` side by side, sharing its width."""
        width = ROW_WIDTH // len(graphs)
        self.dashboard.add_widgets(*(cloudwatch.GraphWidget(
            title=graph.title, left=list(graph.metrics), stacked=graph.stacked, width=width, height=HEIGHT,
            left_annotations=list(graph.limits) or None, legend_position=cloudwatch.LegendPosition.BOTTOM)
            for graph in graphs))


@dataclass(frozen=True)
class Graph:
    title: str
    metrics: Sequence[cloudwatch.IMetric]
    stacked: bool = False
    limits: Sequence[cloudwatch.HorizontalAnnotation] = ()  # lines drawn across the graph


def _metric(namespace: str, name: str, dimensions: Mapping[str, str], statistic: str, label: str,
            period: Duration = PERIOD) -> cloudwatch.Metric:
    return cloudwatch.Metric(namespace=namespace, metric_name=name, dimensions_map=dict(dimensions),
                             statistic=statistic, label=label, period=period)


def _scanned(workgroup: str) -> cloudwatch.MathExpression:
    """Bytes `workgroup`'s queries scanned, whatever their state and type (ProcessedBytes has both as
    dimensions: a search sums them; failed and cancelled queries are billed for what they scanned too)."""
    seconds = int(BATCH_PERIOD.to_seconds())
    return cloudwatch.MathExpression(
        expression=(f"SUM(SEARCH('{{AWS/Athena,QueryState,QueryType,WorkGroup}} MetricName=\"ProcessedBytes\" "
                    f"WorkGroup=\"{workgroup}\"', 'Sum', {seconds}))"),
        label=workgroup, period=BATCH_PERIOD)


class OperationsStack(Stack):
    """`lakehouse-<env>-operations`: the dashboard (`dashboard`) over the `watched` stacks, deployed after them
    (its alarm widget names their alarms)."""

    def __init__(self, scope: Construct, construct_id: str, *, env_config: EnvConfig, watched: Sequence[Stack],
                 **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.operations = OperationsDashboard(self, "Operations", env=env_config, watched=watched)
        self.dashboard = self.operations.dashboard
        for stack in watched:
            self.add_stack_dependency(stack)
