"""Control of the local Superset: set up, start, import the dashboards, read chart data, stop.

Superset runs from its own venv (.venv-superset, see docs/decisions/0003 and 0300) as a
gunicorn process group on 127.0.0.1, with its metadata, logs and PID file under `home`. This
module runs in the pipeline venv and talks to it over HTTP only.
"""
from __future__ import annotations

import hashlib
import itertools
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from pyiceberg.catalog import Catalog

from dashboards.render import bundle_dashboards, bundle_uuids, render_bundle
from lakehouse.analytics.serving import export_serving

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SUPERSET_VENV = PROJECT_ROOT / ".venv-superset"
CONFIG_FILE = PROJECT_ROOT / "dashboards" / "superset_config.py"
REQUIREMENTS = PROJECT_ROOT / "dashboards" / "requirements-superset-lock.txt"
# Obviously fake, machine-local credentials: this Superset listens on 127.0.0.1 only.
ADMIN_USER = "admin"
ADMIN_PASSWORD = "local-only-admin"
START_TIMEOUT_S = 300.0  # gunicorn imports Superset in 10-20 s; generous for a loaded machine
REQUEST_TIMEOUT_S = 120.0
PAGE_SIZE = 100  # Flask-AppBuilder's largest page (FAB_API_MAX_PAGE_SIZE)


class SupersetError(RuntimeError):
    """Superset could not be set up, started or asked: the message names the step and the log."""


class LocalSuperset:
    """One Superset on 127.0.0.1:`port`, its state under `home`."""

    def __init__(self, home: Path, port: int = 8088, venv: Path = SUPERSET_VENV) -> None:
        self.home = Path(home).resolve()
        self.port = port
        self.venv = Path(venv)
        self.url = f"http://127.0.0.1:{port}"
        self.log_file = self.home / "superset.log"
        self.pid_file = self.home / "superset.pid"
        self._init_stamp = self.home / "init.stamp"
        self._proc: subprocess.Popen[bytes] | None = None

    # --- processes -------------------------------------------------------------------------------
    def _bin(self, name: str) -> str:
        path = self.venv / "bin" / name
        if not path.is_file():
            raise SupersetError(f"{path} is missing: Superset's venv {self.venv} is not installed (run make setup)")
        return str(path)

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env.update(SUPERSET_CONFIG_PATH=str(CONFIG_FILE), LAKEHOUSE_SUPERSET_HOME=str(self.home),
                   SUPERSET_HOME=str(self.home), FLASK_APP="superset", PYTHONUNBUFFERED="1")
        return env

    def _log_tail(self, lines: int = 30) -> str:
        if not self.log_file.exists():
            return "(no log)"
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    def _run(self, step: str, *args: str) -> None:
        with self.log_file.open("ab") as log:
            log.write(f"\n$ superset {' '.join(args)}\n".encode())
            log.flush()
            done = subprocess.run([self._bin("superset"), *args], env=self._env(), cwd=self.home,
                                  stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, check=False)
        if done.returncode != 0:
            raise SupersetError(f"superset {step} failed (exit {done.returncode}); {self.log_file}:\n{self._log_tail()}")

    def _stamp(self) -> str:
        # redo the set-up when Superset's pins change (a new version may bring migrations)
        return hashlib.sha256(REQUIREMENTS.read_bytes() + CONFIG_FILE.read_bytes()).hexdigest()

    def init(self) -> None:
        """Migrate the metadata DB, create the local admin, create roles. Skipped when already done."""
        self.home.mkdir(parents=True, exist_ok=True)
        if self._init_stamp.exists() and self._init_stamp.read_text() == self._stamp():
            return
        self._run("db upgrade", "db", "upgrade")
        # create-admin leaves an existing user alone, so re-running it is harmless
        self._run("fab create-admin", "fab", "create-admin", "--username", ADMIN_USER, "--password", ADMIN_PASSWORD,
                  "--firstname", "Local", "--lastname", "Admin", "--email", "admin@localhost.invalid")
        self._run("init", "init")
        self._init_stamp.write_text(self._stamp())

    def _running_pid(self) -> int | None:
        """The PID in the PID file if that process is still our gunicorn, else None."""
        try:
            pid = int(self.pid_file.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None
        return pid if b"gunicorn" in cmdline and str(self.port).encode() in cmdline else None

    def start(self) -> None:
        """Start gunicorn on 127.0.0.1:port in its own process group and wait for /health."""
        gunicorn = self._bin("gunicorn")
        if self._running_pid() is not None:
            raise SupersetError(f"a Superset from {self.home} already runs with PID {self._running_pid()}: stop it first")
        with socket.socket() as probe:  # else /health could be answered by whatever holds the port
            if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                raise SupersetError(f"port {self.port} on 127.0.0.1 is already in use: choose another port")
        self.home.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen(
                [gunicorn, "--bind", f"127.0.0.1:{self.port}", "--workers", "1", "--worker-class", "gthread",
                 "--threads", "8", "--timeout", str(int(REQUEST_TIMEOUT_S)), "--limit-request-line", "0",
                 "superset.app:create_app()"],
                env=self._env(), cwd=self.home, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)  # its own process group: stop() ends the workers too
        self.pid_file.write_text(str(self._proc.pid))
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise SupersetError(f"Superset exited with {self._proc.returncode} while starting; "
                                    f"{self.log_file}:\n{self._log_tail()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        self.stop()
        raise SupersetError(f"Superset did not answer {self.url}/health within {START_TIMEOUT_S:.0f} s; "
                            f"{self.log_file}:\n{self._log_tail()}")

    def stop(self) -> None:
        """Stop the gunicorn process group started by start() (or recorded in the PID file)."""
        pid = self._proc.pid if self._proc is not None else self._running_pid()
        if pid is None:
            return
        try:
            os.killpg(pid, signal.SIGTERM)
            if self._proc is not None:
                try:
                    self._proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(pid, signal.SIGKILL)
                    self._proc.wait()
        except ProcessLookupError:
            pass
        self._proc = None
        self.pid_file.unlink(missing_ok=True)

    def __enter__(self) -> LocalSuperset:
        self.init()
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- HTTP API --------------------------------------------------------------------------------
    @contextmanager
    def client(self) -> Iterator[httpx.Client]:
        """An HTTP client logged in as the local admin, with a CSRF token for writes."""
        with httpx.Client(base_url=self.url, timeout=REQUEST_TIMEOUT_S, headers={"Referer": self.url}) as client:
            yield self._log_in(client)

    def _log_in(self, client: httpx.Client) -> httpx.Client:
        login = client.post("/api/v1/security/login", json={
            "username": ADMIN_USER, "password": ADMIN_PASSWORD, "provider": "db", "refresh": False})
        _check(login, "login")
        client.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        csrf = client.get("/api/v1/security/csrf_token/")  # also sets the session cookie it belongs to
        _check(csrf, "CSRF token")
        client.headers["X-CSRFToken"] = csrf.json()["result"]
        return client

    def import_bundle(self, zip_path: Path) -> None:
        """Import a rendered bundle; the assets API overwrites every object with the bundle's UUIDs."""
        zip_path = Path(zip_path)
        with self.client() as client:
            response = client.post("/api/v1/assets/import/",
                                   files={"bundle": (zip_path.name, zip_path.read_bytes(), "application/zip")},
                                   data={"passwords": "{}"})
        _check(response, f"import of {zip_path}")

    def remove_unlisted(self, keep: set[str]) -> list[str]:
        """Delete the objects the bundle manages (`is_managed_externally`) whose UUID is not in `keep`: an import
        only adds and overwrites. Dashboards first, then charts, then datasets, so nothing deleted is still used.
        Returns "<kind> <uuid>" of each deleted; objects made in Superset itself are never touched."""
        removed = []
        with self.client() as client:
            for kind in ("dashboard", "chart", "dataset"):
                for item in list(self._listed(client, kind)):
                    if item["uuid"] in keep:
                        continue
                    # read one by one: the dataset list does not show the flag
                    detail = client.get(f"/api/v1/{kind}/{item['id']}")
                    _check(detail, f"{kind} {item['uuid']}")
                    if detail.json()["result"].get("is_managed_externally"):
                        _check(client.delete(f"/api/v1/{kind}/{item['id']}"), f"deletion of {kind} {item['uuid']}")
                        removed.append(f"{kind} {item['uuid']}")
        return removed

    @staticmethod
    def _listed(client: httpx.Client, kind: str) -> Iterator[dict[str, Any]]:
        """Every object of `kind` ('chart', ...) as {"id", "uuid"}, page by page."""
        for page in itertools.count():
            listed = client.get(f"/api/v1/{kind}/",
                                params={"q": f"(columns:!(id,uuid),page:{page},page_size:{PAGE_SIZE})"})
            _check(listed, f"list of {kind}s")
            yield from listed.json()["result"]
            if (page + 1) * PAGE_SIZE >= listed.json()["count"]:
                return

    def chart_data(self, chart_uuid: str) -> dict[str, Any]:
        """What the chart shows, as Superset computes it from the chart's saved query_context."""
        with self.client() as client:
            chart = client.get(f"/api/v1/chart/{chart_uuid}")
            _check(chart, f"chart {chart_uuid}")
            data = client.get(f"/api/v1/chart/{chart.json()['result']['id']}/data/")
        _check(data, f"data of chart {chart_uuid}")
        return data.json()


def publish_dashboards(superset: LocalSuperset, catalog: Catalog, serving_db: Path, bundle_zip: Path) -> list[str]:
    """Export gold to `serving_db`, render the bundle for it into `bundle_zip`, import it into the
    running `superset`; returns the dashboards' URLs. Run it again after each batch: a re-export
    alone is enough for new data, the import only matters when the bundle changed."""
    export_serving(catalog, serving_db)
    superset.import_bundle(render_bundle("duckdb", bundle_zip, serving_db=serving_db))
    superset.remove_unlisted(bundle_uuids())
    return [f"{superset.url}/superset/dashboard/{slug}/" for slug in bundle_dashboards().values()]


def _check(response: httpx.Response, what: str) -> None:
    if response.status_code >= 400:
        raise SupersetError(f"Superset {what}: HTTP {response.status_code} {response.text[:2000]}")
