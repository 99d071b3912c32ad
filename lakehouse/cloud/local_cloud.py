"""The local cloud: an embedded moto server on 127.0.0.1, reached only through AWS_ENDPOINT_URL.

Everything else in the project talks to it exactly as it would talk to AWS: boto3 clients with no
endpoint argument, which honour AWS_ENDPOINT_URL. The server runs in this process, so the moto
patches (lakehouse/cloud/moto_patches.py) can run our Spark jobs and Lambda handlers inside it.
"""
from __future__ import annotations

import logging
import os
import urllib.request
from types import TracebackType

from moto.server import ThreadedMotoServer

from lakehouse.cloud import aws_calls, moto_patches

# Obviously fake, local-only credentials: moto accepts any, AWS accepts none of these.
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local-only-not-a-key",
    "AWS_SECRET_ACCESS_KEY": "local-only-not-a-secret",
}


class LocalCloud:
    """Start with `with LocalCloud(account, region) as cloud:`; `cloud.endpoint` is its URL."""

    def __init__(self, account: str, region: str, port: int = 0) -> None:
        self.account, self.region, self._port = account, region, port
        self._server: ThreadedMotoServer | None = None
        self._saved_env: dict[str, str | None] = {}
        self.endpoint = ""

    def start(self) -> "LocalCloud":
        moto_patches.apply()
        aws_calls.install_from_env()  # LAKEHOUSE_AWS_CALLS: record each component's calls (least privilege)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one log line per API call otherwise
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self._port, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        # "localhost", not 127.0.0.1: moto parses a CloudFormation TemplateURL's host as a bucket.
        self.endpoint = f"http://localhost:{port}"
        self._set_env({
            **FAKE_CREDENTIALS,
            "AWS_ENDPOINT_URL": self.endpoint,
            # Else e.g. StartSyncExecution goes to sync-localhost.
            "AWS_DISABLE_HOST_PREFIX_INJECTION": "true",
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            # moto's Step Functions tasks call localhost:$MOTO_PORT (default 5000).
            "MOTO_PORT": str(port),
            "MOTO_ACCOUNT_ID": self.account,
        })
        return self

    def reset(self) -> None:
        """Forget every resource (moto's /moto-api/reset)."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request) as response:  # noqa: S310 - our own loopback server
            response.read()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env = {}

    def _set_env(self, values: dict[str, str]) -> None:
        for key, value in values.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    def __enter__(self) -> "LocalCloud":
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
