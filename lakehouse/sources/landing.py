"""The landing zone on one machine: catalog files dropped locally reach the same loader as in AWS.

In AWS the landing bucket notifies the file loader of every created `.csv` under
`lake_layout.landing_prefix("products")`. Locally there are two ways in, both running the real
handler (lambdas/file_loader) on a real S3-shaped event:

- a file put to the local cloud's S3 (moto): moto sends the bucket's ObjectCreated notification
  itself, and the loader's in-process Lambda (lakehouse/cloud/moto_patches.py) runs it. `subscribe`
  configures that notification with the same filter CDK deploys.
- a file copied into the local landing folder (`.lakehouse/lake/landing/products/`):
  `deliver_new_files` scans the folder, builds the event S3 would send for each new or changed
  file, and invokes the loader through the local cloud's Lambda API (`invoke_function`), or
  calls the handler directly (`invoke_handler`) when no local cloud runs.
A file counts as delivered once the loader returned; the loader itself skips bytes it loaded before.
"""
from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote_plus

import boto3

from cdk_app.config import PROJECT
from lakehouse.lake.layout import LocalLake
from lambdas.common import environment
from lambdas.contracts import lake_layout
from lambdas.contracts import products as contract

Invoke = Callable[[dict[str, Any]], dict[str, Any]]

LANDING_PREFIX = lake_layout.landing_prefix(contract.SOURCE)
_STATE_FILE = "landing-delivered.json"  # in the lake's root: which local drops were delivered
_CHUNK = 1024 * 1024


class LoaderFailed(RuntimeError):
    """The loader raised on an event; the message carries its error."""


def landing_root(lake: LocalLake) -> Path:
    """The local stand-in of the landing bucket (its name is the bucket name local events carry)."""
    return lake.root / "lake" / "landing"


def landing_folder(lake: LocalLake) -> Path:
    """Where catalog files are dropped locally."""
    return landing_root(lake) / LANDING_PREFIX


def function_environment(lake: LocalLake) -> dict[str, str]:
    """The loader's environment on the local lake (as CDK sets it in AWS, with s3:// roots)."""
    return {**environment.file_loader(landing_root(lake).as_uri(), lake.raw_uri, lake.staging_uri, contract.SOURCE),
            **environment.powertools("file_loader", PROJECT)}


def s3_event(bucket: str, key: str, *, size: int, etag: str, event_time: datetime, sequencer: str) -> dict[str, Any]:
    """An ObjectCreated:Put notification as S3 sends it to Lambda (one record, the key URL-encoded)."""
    return {"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": os.environ.get("AWS_REGION", "us-east-1"),
        "eventTime": event_time.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "local"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "local-landing-folder",
            "bucket": {"name": bucket, "ownerIdentity": {"principalId": "local"}, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {"key": quote_plus(key, safe="/"), "size": size, "eTag": etag, "sequencer": sequencer},
        },
    }]}


def deliver_new_files(lake: LocalLake, invoke: Invoke) -> list[dict[str, Any]]:
    """Send an S3 event for each file of the landing folder not delivered yet (or changed since);
    the loader's results, one per file, in key order."""
    root = landing_root(lake)
    state_path = lake.root / _STATE_FILE
    delivered: dict[str, list[int]] = json.loads(state_path.read_text()) if state_path.exists() else {}
    results = []
    for path in sorted(landing_folder(lake).rglob(f"*{contract.FILE_SUFFIX}")):
        if not path.is_file():
            continue
        key = path.relative_to(root).as_posix()
        stat = path.stat()
        mark = [stat.st_size, stat.st_mtime_ns]
        if delivered.get(key) == mark:
            continue
        event = s3_event(root.name, key, size=stat.st_size, etag=_md5(path),
                         event_time=datetime.fromtimestamp(stat.st_mtime_ns / 1e9, timezone.utc),
                         sequencer=f"{stat.st_mtime_ns:016X}")
        results.extend(invoke(event)["files"])
        delivered[key] = mark
        state_path.write_text(json.dumps(delivered, indent=1, sort_keys=True))  # after each: a crash loses none
    return results


def invoke_function(function_name: str) -> Invoke:
    """Invoke the loader through the Lambda API (the local cloud's, or AWS')."""
    client = boto3.client("lambda")

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        response = client.invoke(FunctionName=function_name, Payload=json.dumps(event).encode())
        body = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError"):
            raise LoaderFailed(f"{function_name} failed: {body.get('errorType')}: {body.get('errorMessage')}")
        return body
    return invoke


def invoke_handler(lake: LocalLake) -> Invoke:
    """Call the loader's handler in this process, with the settings of the local lake."""
    from lambdas.file_loader.handler import Settings, handle  # Powertools loads only when used

    settings = Settings.from_mapping(function_environment(lake))
    return lambda event: handle(event, settings)


def subscribe(bucket: str, function_arn: str) -> None:
    """Notify the loader of the bucket's catalog drops, with the filter CDK deploys."""
    boto3.client("s3").put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "LambdaFunctionConfigurations": [{
            "Id": "catalog-drops", "LambdaFunctionArn": function_arn, "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": LANDING_PREFIX},
                                               {"Name": "suffix", "Value": contract.FILE_SUFFIX}]}},
        }],
    })


def _md5(path: Path) -> str:
    """The ETag S3 gives a single-part upload without SSE-KMS (informational: the loader hashes itself)."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
