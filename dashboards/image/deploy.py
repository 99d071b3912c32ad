"""The deploy task: run once per deploy by CloudFormation (cdk_app/dashboards.py) before the service changes.

`python /app/pythonpath/deploy.py` in the Superset image, with the service's environment plus BUNDLE_S3_URI
(the bundle rendered for Athena at synth) and ADMIN_PASSWORD. It
1. migrates the metadata database and refreshes Superset's roles and permissions (`db upgrade`, `init`);
2. creates the bootstrap admin, or resets its password to the secret's current value;
3. imports the bundle (an import adds and overwrites objects by UUID), then deletes the objects the bundle manages
   (`is_managed_externally`) that it no longer holds: dashboards, then charts, then datasets. Objects made in
   Superset itself are never touched. The local Superset does the same through the REST API
   (lakehouse/analytics/superset.py `remove_unlisted`); here no web server runs, so it is done in-process.
Any failure exits non-zero, which fails the deploy.
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from urllib.parse import urlparse

import boto3
import yaml

ADMIN_USERNAME = "admin"
MANAGED_FOLDERS = ("charts", "dashboards", "datasets")


def superset(*args: str) -> None:
    print(f"superset {' '.join(args)}", flush=True)
    subprocess.run(["superset", *args], check=True)


def fetch_bundle(uri: str) -> bytes:
    location = urlparse(uri)
    return boto3.client("s3").get_object(Bucket=location.netloc, Key=location.path.lstrip("/"))["Body"].read()


def bundle_contents(bundle: bytes) -> dict[str, str]:
    """{path below the bundle's root folder: YAML text}, as Superset's importers take them."""
    with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
        return {name.split("/", 1)[1]: archive.read(name).decode() for name in archive.namelist()
                if name.endswith(".yaml") and "/" in name}


def managed_uuids(contents: dict[str, str]) -> set[str]:
    """UUIDs of the bundle's charts, dashboards and datasets (paths are <kind>/.../<name>.yaml)."""
    return {str(yaml.safe_load(text)["uuid"]) for path, text in contents.items()
            if path.split("/")[0] in MANAGED_FOLDERS}


def publish(contents: dict[str, str], admin_password: str) -> list[str]:
    """Admin, import and removal in one app context; returns "<kind> <uuid>" of each removed object."""
    from flask import g
    from superset.app import create_app

    app = create_app()  # before the models: their encrypted columns need the app
    with app.app_context(), app.test_request_context():
        from superset.commands.importers.v1.assets import ImportAssetsCommand
        from superset.connectors.sqla.models import SqlaTable
        from superset.extensions import db, security_manager
        from superset.models.dashboard import Dashboard
        from superset.models.slice import Slice

        admin = security_manager.find_user(username=ADMIN_USERNAME)
        if admin is None:
            admin = security_manager.add_user(ADMIN_USERNAME, "Bootstrap", "Admin", "admin@localhost.invalid",
                                              security_manager.find_role("Admin"), password=admin_password)
            if not admin:
                raise RuntimeError("the bootstrap admin could not be created")
        else:
            security_manager.reset_password(admin.id, admin_password)
        g.user = admin  # imports record their owner
        ImportAssetsCommand(contents, passwords={}).run()
        keep = managed_uuids(contents)
        removed = []
        for kind, model in (("dashboard", Dashboard), ("chart", Slice), ("dataset", SqlaTable)):
            for item in db.session.query(model).filter(model.is_managed_externally.is_(True)).all():
                if str(item.uuid) not in keep:
                    db.session.delete(item)
                    removed.append(f"{kind} {item.uuid}")
            db.session.commit()
        return removed


def main() -> int:
    superset("db", "upgrade")
    superset("init")
    contents = bundle_contents(fetch_bundle(os.environ["BUNDLE_S3_URI"]))
    removed = publish(contents, os.environ["ADMIN_PASSWORD"])
    print(f"imported {len(contents)} files; removed {removed or 'nothing'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
