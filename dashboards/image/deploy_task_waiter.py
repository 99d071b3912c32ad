"""The custom resource that runs the deploy task (deploy.py) and waits for it (cdk_app/dashboards.py).

Not part of the image: the two handlers of a CDK Provider, inlined into a Lambda function (Python 3.12 runtime,
its own boto3). on_event starts the task on a create or update; is_complete polls it until it stops and fails the
deploy with the task's reason when its container's exit code is not 0. A delete runs nothing.
"""
import os

import boto3

ecs = boto3.client("ecs")


def on_event(event, context):
    if event["RequestType"] == "Delete":
        return {"PhysicalResourceId": event["PhysicalResourceId"]}
    started = ecs.run_task(
        cluster=os.environ["CLUSTER"], taskDefinition=os.environ["TASK_DEFINITION"], launchType="FARGATE",
        count=1, startedBy="cloudformation-deploy",
        networkConfiguration={"awsvpcConfiguration": {
            "subnets": os.environ["SUBNETS"].split(","), "securityGroups": [os.environ["SECURITY_GROUP"]],
            "assignPublicIp": "DISABLED"}},
    )
    if started["failures"] or not started["tasks"]:
        raise RuntimeError(f"the deploy task did not start: {started['failures']}")
    task = started["tasks"][0]["taskArn"]
    print(f"started {task}")
    return {"PhysicalResourceId": event.get("PhysicalResourceId") or task, "Data": {"TaskArn": task}}


def is_complete(event, context):
    if event["RequestType"] == "Delete":
        return {"IsComplete": True}
    task_arn = event["Data"]["TaskArn"]
    [task] = ecs.describe_tasks(cluster=os.environ["CLUSTER"], tasks=[task_arn])["tasks"]
    if task["lastStatus"] != "STOPPED":
        return {"IsComplete": False}
    codes = {c["name"]: c.get("exitCode") for c in task["containers"]}
    if any(code != 0 for code in codes.values()):
        raise RuntimeError(f"the deploy task {task_arn} failed: exit codes {codes}, {task.get('stoppedReason')}; "
                           f"its log is in the dashboards log group, stream prefix deploy")
    return {"IsComplete": True}
