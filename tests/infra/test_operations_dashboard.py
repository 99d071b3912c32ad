"""The operations stack's CloudWatch dashboard: every stream, function, queue, workflow, job, workgroup and alarm
of the environment on it, by the names the other stacks deploy, and the cleaners' EMF metrics by their names."""
from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Template

from cdk_app import maintenance
from cdk_app.config import KINESIS_SOURCES, PROJECT, load
from cdk_app.operations_dashboard import GLUE_ELAPSED, STATE_MACHINE_OUTCOMES
from lambdas.cleaner import metrics as cleaner_metrics
from tests.infra.helpers import dashboard_widgets, metric_rows, only, resources


def _names(stage: Any, cfn_type: str, attribute: str) -> set[str]:
    """Every `attribute` of every `cfn_type` resource of the stacks the operations stack watches (deploys after:
    the pipeline's, test_the_dashboard_is_named_for_the_environment_in_its_own_stack)."""
    return {r["Properties"][attribute] for stack in stage.operations.dependencies
            for r in resources(Template.from_stack(stack), cfn_type).values() if attribute in r["Properties"]}


def _graphs(stage: Any) -> dict[str, list[tuple[str, str, dict[str, str], dict[str, Any]]]]:
    """{graph title: its metric rows}."""
    widgets = dashboard_widgets(Template.from_stack(stage.operations))
    return {w["properties"]["title"]: metric_rows(w) for w in widgets if w["type"] == "metric"}


def _charted(rows: list, namespace: str, metric: str, dimension: str) -> set[str]:
    return {dims[dimension] for ns, name, dims, _ in rows if (ns, name) == (namespace, metric)}


def test_the_dashboard_is_named_for_the_environment_in_its_own_stack(stage) -> None:
    env, deployed = stage
    assert deployed.operations.stack_name == f"lakehouse-{env}-operations"
    dashboard = only(Template.from_stack(deployed.operations), "AWS::CloudWatch::Dashboard")
    assert dashboard["DashboardName"] == f"lakehouse-{env}-operations"
    # deployed after the stacks it charts: its alarm widget names their alarms
    assert {s.stack_name for s in deployed.operations.dependencies} >= {
        f"lakehouse-{env}-{c}" for c in ("lake", "ingestion", "processing", "analytics")}


def test_every_stream_its_rate_and_iterator_age_and_every_cleaners_lag(stage) -> None:
    env, deployed = stage
    config = load(env)
    graphs = _graphs(deployed)
    streams = {config.stream_for(source) for source in KINESIS_SOURCES}
    assert _names(deployed, "AWS::Kinesis::Stream", "Name") == streams
    assert _charted(graphs["Ingestion rate (records per 5 minutes)"], "AWS/Kinesis", "IncomingRecords",
                    "StreamName") == streams
    assert _charted(graphs["Stream iterator age (ms, maximum)"], "AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds",
                    "StreamName") == streams
    assert _charted(graphs["Cleaner iterator age (ms, maximum)"], "AWS/Lambda", "IteratorAge", "FunctionName") == \
        {config.cleaner_for(source) for source in KINESIS_SOURCES}
    kafka = graphs.get("Kafka consumer lag (records, maximum)")
    if config.msk_enabled:
        assert _charted(kafka, "AWS/Lambda", "OffsetLag", "FunctionName") == {config.cleaner_for("clickstream")}
    else:
        assert kafka is None


def test_the_cleaners_emf_counts_per_source_by_the_names_the_handler_emits(stage) -> None:
    _, deployed = stage
    graphs = _graphs(deployed)
    for source in KINESIS_SOURCES:
        rows = graphs[f"Cleaned {source} (records per 5 minutes)"]
        assert [(ns, name, dims, options["stat"]) for ns, name, dims, options in rows] == [
            (PROJECT, name, {"service": "cleaner", "source": source}, "Sum")
            for name in ("clean", "quarantined", "duplicates")]
    # the handler emits under those names and dimensions (lambdas/cleaner/metrics.py)
    assert (cleaner_metrics.CLEAN, cleaner_metrics.QUARANTINED, cleaner_metrics.DUPLICATES) == \
        ("clean", "quarantined", "duplicates")
    assert (cleaner_metrics.SERVICE_DIMENSION, cleaner_metrics.SOURCE_DIMENSION) == ("service", "source")


def test_each_sources_quarantine_rate_as_its_alarm_reads_it_and_the_cleaners_ingest_lag(stage) -> None:
    env, deployed = stage
    config = load(env)
    widgets = {w["properties"]["title"]: w["properties"]
               for w in dashboard_widgets(Template.from_stack(deployed.operations)) if w["type"] == "metric"}
    alarms = {r["Properties"]["AlarmName"]: r["Properties"]
              for r in resources(Template.from_stack(deployed.ingestion), "AWS::CloudWatch::Alarm").values()}
    dimensions = {cleaner_metrics.SERVICE_DIMENSION: cleaner_metrics.SERVICE}
    for source in KINESIS_SOURCES:
        [graph] = [w for title, w in widgets.items() if title.startswith(f"Quarantine rate {source} ")]
        [(_, _, _, drawn), *read] = metric_rows({"properties": graph})
        component = config.cleaner_for(source).removeprefix(config.resource_name(""))
        alarm = alarms[config.resource_name(f"{component}-quarantine-rate")]
        [alarmed] = [m["Expression"] for m in alarm["Metrics"] if "Expression" in m]
        assert drawn["expression"] == alarmed  # the very expression the alarm judges
        assert [(ns, name, dims, options["id"], options["stat"]) for ns, name, dims, options in read] == [
            (PROJECT, name, {**dimensions, cleaner_metrics.SOURCE_DIMENSION: source}, name, "Sum")
            for name in (cleaner_metrics.RECORDS_IN, cleaner_metrics.QUARANTINED)]
        assert [line["value"] for line in graph["annotations"]["horizontal"]] == \
            [config.quality.max_quarantine_rate[source]]
    assert [(ns, name, dims, options["stat"]) for ns, name, dims, options in
            metric_rows({"properties": widgets["Cleaner ingest lag (ms, maximum)"]})] == [
        (PROJECT, cleaner_metrics.INGEST_LAG, {**dimensions, cleaner_metrics.SOURCE_DIMENSION: source}, "Maximum")
        for source in KINESIS_SOURCES]


def test_every_workflow_its_outcomes_and_run_time(stage) -> None:
    env, deployed = stage
    config = load(env)
    graphs = _graphs(deployed)
    machines = _names(deployed, "AWS::StepFunctions::StateMachine", "StateMachineName")
    assert machines == {config.state_machine_name, config.resource_name(maintenance.JOB), config.resource_name("replay")}
    arns = {f"arn:aws:states:{config.region}:{config.account}:stateMachine:{name}" for name in machines}
    for outcome in STATE_MACHINE_OUTCOMES:
        assert _charted(graphs["Workflow runs per hour"], "AWS/States", outcome, "StateMachineArn") == arns
    times = graphs["Workflow run time (ms, average and maximum)"]
    assert _charted(times, "AWS/States", "ExecutionTime", "StateMachineArn") == arns
    assert {options.get("stat", "Average") for *_, options in times} == {"Average", "Maximum"}  # Average: the default


def test_every_glue_job_its_etl_time(stage) -> None:
    env, deployed = stage
    jobs = _names(deployed, "AWS::Glue::Job", "Name")
    assert jobs == {load(env).glue_job_name(job) for job in ("silver_merge", "gold_build", maintenance.JOB)}
    rows = _graphs(deployed)["Glue job ETL time (ms per hour)"]
    assert _charted(rows, "Glue", GLUE_ELAPSED, "JobName") == jobs
    assert all(dims["JobRunId"] == "ALL" and dims["Type"] == "count" for *_, dims, _ in rows)
    # Glue publishes them only with job metrics on
    for template in (Template.from_stack(deployed.processing),):
        for job in resources(template, "AWS::Glue::Job").values():
            assert job["Properties"]["DefaultArguments"]["--enable-metrics"] == "true"


def test_every_athena_workgroup_its_bytes_scanned(stage) -> None:
    env, deployed = stage
    config = load(env)
    workgroups = _names(deployed, "AWS::Athena::WorkGroup", "Name")
    assert workgroups == {config.workgroup_name, config.quality_workgroup_name}
    expressions = [options["expression"] for *_, options in _graphs(deployed)["Athena bytes scanned per hour"]]
    assert len(expressions) == len(workgroups)
    for workgroup in workgroups:
        [expression] = [e for e in expressions if f'WorkGroup="{workgroup}"' in e]
        assert "{AWS/Athena,QueryState,QueryType,WorkGroup}" in expression and 'MetricName="ProcessedBytes"' in expression
    # Athena publishes them only where the workgroup says so
    for component in ("analytics", "processing"):
        for workgroup in resources(Template.from_stack(deployed.stacks[component]), "AWS::Athena::WorkGroup").values():
            assert workgroup["Properties"]["WorkGroupConfiguration"]["PublishCloudWatchMetricsEnabled"] is True


def test_every_dead_letter_queue_its_depth(stage) -> None:
    env, deployed = stage
    config = load(env)
    queues = _names(deployed, "AWS::SQS::Queue", "QueueName")
    assert queues == {config.resource_name(f"{part}-dlq") for part in (
        "cleaner", "cleaner-orders", "api-connector", "file-loader", "batch-pipeline-schedule", "maintenance-schedule")
    } | {config.live_commit_queue_name, config.resource_name("live-commits-dlq.fifo")}  # charted with them
    assert _charted(_graphs(deployed)["Dead-letter queues (messages waiting)"], "AWS/SQS",
                    "ApproximateNumberOfMessagesVisible", "QueueName") == queues


def test_every_function_its_errors_and_throttles(stage) -> None:
    env, deployed = stage
    functions = {name for name in _names(deployed, "AWS::Lambda::Function", "FunctionName")
                 if name.startswith(f"lakehouse-{env}-") and not name.endswith("-provider")}  # not CDK's own
    assert load(env).function_name("data_quality") in functions
    graphs = _graphs(deployed)
    assert _charted(graphs["Function errors"], "AWS/Lambda", "Errors", "FunctionName") == functions
    assert _charted(graphs["Function throttles"], "AWS/Lambda", "Throttles", "FunctionName") == functions


def test_the_alarm_widget_shows_every_alarm_of_the_environment(stage) -> None:
    env, deployed = stage
    config = load(env)
    [widget] = [w for w in dashboard_widgets(Template.from_stack(deployed.operations)) if w["type"] == "alarm"]
    alarms = {r["Properties"]["AlarmName"] for stack in deployed.stacks.values()  # every stack, watched or not
              for r in resources(Template.from_stack(stack), "AWS::CloudWatch::Alarm").values()}
    assert config.resource_name("batch-pipeline-heartbeat") in alarms
    assert sorted(widget["properties"]["alarms"]) == sorted(
        f"arn:aws:cloudwatch:{config.region}:{config.account}:alarm:{name}" for name in alarms)
