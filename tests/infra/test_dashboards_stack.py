"""Dashboards stack: Superset on Fargate over Athena, for dev and prod (cdk.json `dashboards.enabled`), none in local.

dev and prod come from the session's shared synths; the HTTPS variant (a certificate and a domain name set by a
context override) is this stack alone beside a stand-in lake key, synthesized once with cdk-nag's checks.
"""
from __future__ import annotations

import copy
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk.assertions import Template

from cdk_app.analytics import RESULTS_PREFIX
from cdk_app.config import CONTEXT_KEY, load
from cdk_app.dashboards import (VIEW_DATABASES, CPU, DATABASE_PORT, GROUP_ROLES, HEALTH_PATH, MEMORY_MIB, OIDC_CALLBACK,
                                RESULT_REUSE_MINUTES, SUPERSET_PORT, WAITER, DashboardsStack, athena_bundle)
from cdk_app.data_quality import ATHENA_QUERY
from cdk_app.lake import DATABASES
from cdk_app.nag import add_checks
from cdk_app.python_function import LOG_RETENTION
from cdk_app.secure_bucket import bucket_name
from tests.fixtures.cdk import SKIP_BUNDLING, cdk_context
from tests.infra.helpers import grants, only, resources, role_statements

RETENTION_DAYS = {logs.RetentionDays.THREE_MONTHS: 90}
ROOT = Path(__file__).resolve().parents[2]
CERTIFICATE = "arn:aws:acm:eu-west-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
DOMAIN = "dashboards.example.org"
OIDC = {"metadata_url": "https://idp.example.org/.well-known/openid-configuration", "client_id": "superset",
        "groups_claim": "groups"}


@pytest.fixture(scope="module", params=["dev", "prod"])
def dashboards(request, synthesized) -> tuple[str, Template]:
    env = request.param
    return env, Template.from_stack(synthesized(env).stage.dashboards)


def _alone(outdir: Path, **dashboards: object) -> Template:
    """dev with these `dashboards` settings in the context, this stack alone, nag-checked at synth."""
    context = copy.deepcopy(cdk_context(**SKIP_BUNDLING))
    context[CONTEXT_KEY]["dev"]["dashboards"].update(dashboards)
    config = load("dev", context)
    app = App(outdir=str(outdir), context=context, builtin_cloud_formation_validation=False)
    add_checks(app)  # a finding fails the synth below
    where = Environment(account=config.account, region=config.region)
    lake = Stack(app, "Lake", env=where)
    key = kms.Key(lake, "Key", enable_key_rotation=True)
    names = {zone: bucket_name(config, zone) for zone in ("raw", "staging", "warehouse", "athena-results")}
    stack = DashboardsStack(app, "Dashboards", env_config=config, key=key, bucket_names=names, env=where)
    app.synth()
    return Template.from_stack(stack)


@pytest.fixture(scope="module")
def https(tmp_path_factory: pytest.TempPathFactory) -> Template:
    """A certificate and a domain name: HTTPS, and sign-in through the stack's Cognito user pool."""
    return _alone(tmp_path_factory.mktemp("cdk-https"), certificate_arn=CERTIFICATE, domain_name=DOMAIN)


@pytest.fixture(scope="module")
def own_oidc(tmp_path_factory: pytest.TempPathFactory) -> Template:
    """HTTPS with an OIDC provider of the user's own (`dashboards.oidc`)."""
    return _alone(tmp_path_factory.mktemp("cdk-oidc"), certificate_arn=CERTIFICATE, domain_name=DOMAIN, oidc=OIDC)


def _container(template: Template, family_suffix: str) -> dict[str, Any]:
    [task] = [r["Properties"] for r in resources(template, "AWS::ECS::TaskDefinition").values()
              if r["Properties"]["Family"].endswith(family_suffix)]
    assert (task["Cpu"], task["Memory"]) == (str(CPU), str(MEMORY_MIB))
    [container] = task["ContainerDefinitions"]
    return container


def test_the_image_pins_the_superset_version_of_the_local_venv() -> None:
    pinned = re.search(r"^apache-superset==(\S+)$", (ROOT / "dashboards/requirements-superset.in").read_text(), re.M)
    image = re.search(r"^FROM apache/superset:(\S+?)(@sha256:\w+)?$", (ROOT / "dashboards/image/Dockerfile").read_text(),
                      re.M)
    assert pinned and image and image.group(1) == pinned.group(1)


def test_the_image_installs_a_hashed_lock_without_resolving() -> None:
    dockerfile = (ROOT / "dashboards/image/Dockerfile").read_text()
    assert "--require-hashes --no-deps" in dockerfile
    lock = (ROOT / "dashboards/image/requirements-image-lock.txt").read_text()
    pins = dict(re.findall(r"^([a-z0-9_.-]+)==(\S+) \\$", lock, re.M))
    assert {"pyathena": "3.40.0", "flask-caching": "2.4.1"}.items() <= pins.items()
    assert {"psycopg2-binary", "authlib"} <= pins.keys()
    # what the official image ships stays as the Superset release pinned it
    assert not {"flask", "werkzeug", "cryptography", "sqlalchemy", "python-dateutil", "urllib3"} & pins.keys()
    blocks = re.split(r"\n(?=[a-z0-9_.-]+==)", lock)[1:]  # one a pin, with its hashes
    assert len(blocks) == len(pins) and all("--hash=sha256:" in block for block in blocks)


def test_local_has_no_dashboards_stack(synthesized) -> None:
    stage = synthesized("local").stage
    assert stage.dashboards is None and "dashboards" not in stage.stacks


def test_image_asset_and_task_sizes(dashboards, synthesized) -> None:
    env, template = dashboards
    service = _container(template, "-dashboards")
    deploy = _container(template, "-dashboards-deploy")
    assert service["Image"] == deploy["Image"]
    assert "container-assets" in json.dumps(service["Image"])
    assert service["PortMappings"] == [{"ContainerPort": SUPERSET_PORT, "Protocol": "tcp"}]
    assert HEALTH_PATH in " ".join(service["HealthCheck"]["Command"])
    assert deploy["Command"] == ["python", "/app/pythonpath/deploy.py"]
    stack = synthesized(env).stage.dashboards
    manifest = json.loads((synthesized(env).outdir / f"assembly-{env}" / f"{stack.artifact_id}.assets.json").read_text())
    [image] = manifest["dockerImages"].values()
    assert (image["source"]["dockerFile"], image["source"]["platform"]) == ("image/Dockerfile", "linux/amd64")


def test_secrets_come_from_secrets_manager_not_the_environment(dashboards) -> None:
    env, template = dashboards
    names = {r["Properties"]["Name"] for r in resources(template, "AWS::SecretsManager::Secret").values()}
    assert names == {f"lakehouse-{env}-dashboards-{n}" for n in ("metadata", "secret-key", "admin")}
    assert all("KmsKeyId" in r["Properties"] for r in resources(template, "AWS::SecretsManager::Secret").values())
    service = _container(template, "-dashboards")
    assert {s["Name"] for s in service["Secrets"]} == {"DATABASE_USER", "DATABASE_PASSWORD", "SUPERSET_SECRET_KEY"}
    deploy = _container(template, "-dashboards-deploy")
    assert "ADMIN_PASSWORD" in {s["Name"] for s in deploy["Secrets"]}
    variables = {e["Name"]: e["Value"] for e in service["Environment"]}
    assert not any("PASSWORD" in n or "SECRET" in n for n in variables)
    assert variables["AUTH_MODE"] == "db"  # no certificate: database sign-in (decision 0310)


def test_the_service_scales_between_the_configured_counts(dashboards) -> None:
    env, template = dashboards
    settings = load(env).dashboards
    service = only(template, "AWS::ECS::Service")
    assert service["DesiredCount"] == settings.min_tasks and service["LaunchType"] == "FARGATE"
    assert service["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"] == "DISABLED"
    target = only(template, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert (target["MinCapacity"], target["MaxCapacity"]) == (settings.min_tasks, settings.max_tasks)
    policy = only(template, "AWS::ApplicationAutoScaling::ScalingPolicy")
    assert policy["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"][
        "PredefinedMetricType"] == "ECSServiceAverageCPUUtilization"
    group = only(template, "AWS::ElasticLoadBalancingV2::TargetGroup")
    assert (group["HealthCheckPath"], group["Port"], group["TargetType"]) == (HEALTH_PATH, SUPERSET_PORT, "ip")


def test_without_a_certificate_the_load_balancer_serves_http(dashboards) -> None:
    env, template = dashboards
    listener = only(template, "AWS::ElasticLoadBalancingV2::Listener")
    assert (listener["Port"], listener["Protocol"], listener["DefaultActions"][0]["Type"]) == (80, "HTTP", "forward")
    balancer = only(template, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    attributes = {a["Key"]: a["Value"] for a in balancer["LoadBalancerAttributes"]}
    assert attributes["access_logs.s3.enabled"] == "true"
    assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"
    assert balancer["Scheme"] == "internet-facing"
    url = template.to_json()["Outputs"]["Url"]["Value"]
    assert url["Fn::Join"][1][0] == "http://"


def test_the_metadata_database_is_private_encrypted_and_kept_like_its_environment(dashboards) -> None:
    env, template = dashboards
    [(logical_id, database)] = resources(template, "AWS::RDS::DBInstance").items()
    properties = database["Properties"]
    assert properties["StorageEncrypted"] is True and "KmsKeyId" in properties
    assert properties["PubliclyAccessible"] is False and properties["Port"] == str(DATABASE_PORT)
    assert (properties["Engine"], properties["DBInstanceClass"]) == ("postgres", "db.t4g.micro")
    retained = load(env).removal_policy == "retain"
    assert properties["DeletionProtection"] is retained
    assert database["DeletionPolicy"] == ("Retain" if retained else "Delete")
    subnets = only(template, "AWS::RDS::DBSubnetGroup")["SubnetIds"]
    isolated = {k for k, r in resources(template, "AWS::EC2::Subnet").items()
                if any(t == {"Key": "aws-cdk:subnet-type", "Value": "Isolated"} for t in r["Properties"]["Tags"])}
    assert {s["Ref"] for s in subnets} == isolated and len(isolated) == 2


def test_the_network_has_one_nat_an_s3_endpoint_and_flow_logs(dashboards) -> None:
    env, template = dashboards
    template.resource_count_is("AWS::EC2::NatGateway", 1)
    template.resource_count_is("AWS::EC2::FlowLog", 1)
    endpoint = only(template, "AWS::EC2::VPCEndpoint")
    assert endpoint["VpcEndpointType"] == "Gateway" and "s3" in json.dumps(endpoint["ServiceName"])


def test_the_task_role_queries_only_its_workgroup_and_reads_the_lake(dashboards) -> None:
    env, template = dashboards
    config = load(env)
    statements = role_statements(template, config.resource_name("dashboards"))
    prefix = f"arn:aws:athena:{config.region}:{config.account}"
    assert grants(statements, "athena") == {
        f"{prefix}:workgroup/{config.workgroup_name}": sorted(ATHENA_QUERY),
        f"{prefix}:datacatalog/AwsDataCatalog": sorted(
            ["athena:GetTableMetadata", "athena:ListDatabases", "athena:ListTableMetadata"]),
    }
    warehouse, results = bucket_name(config, "warehouse"), bucket_name(config, "athena-results")
    assert grants(statements, "s3") == {
        f"arn:aws:s3:::{warehouse}": ["s3:ListBucket"],
        **{f"arn:aws:s3:::{warehouse}/{db}.db/*": ["s3:GetObject"] for db in DATABASES},  # views have no files
        f"arn:aws:s3:::{results}": ["s3:GetBucketLocation", "s3:ListBucket"],
        f"arn:aws:s3:::{results}/{RESULTS_PREFIX}*": ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"],
    }
    glue = grants(statements, "glue")
    assert set(glue) == {f"arn:aws:glue:{config.region}:{config.account}:{r}" for r in (
        "catalog", *(f"database/{d}" for d in (*DATABASES, *VIEW_DATABASES)),
        *(f"table/{d}/*" for d in (*DATABASES, *VIEW_DATABASES)))}
    assert set(DATABASES) == {"gold", "live", "ops", "silver"} and VIEW_DATABASES == ("fresh",)
    assert all(not any(a.startswith(("glue:Create", "glue:Update", "glue:Delete")) for a in acts)
               for acts in glue.values())
    kms_actions = [s["Action"] for s in statements if "kms:Decrypt" in s["Action"]]
    assert kms_actions == [["kms:Decrypt", "kms:GenerateDataKey"]]
    services = {a.split(":")[0] for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert services == {"athena", "glue", "s3", "kms"}


def test_each_deploy_that_changes_something_runs_the_deploy_task_and_waits(dashboards) -> None:
    env, template = dashboards
    run = only(template, "Custom::SupersetDeployTask")
    assert set(run) >= {"ServiceToken", "Image", "Bundle"}
    handlers = {r["Properties"]["Handler"] for r in resources(template, "AWS::Lambda::Function").values()}
    assert {"index.on_event", "index.is_complete"} <= handlers
    [service] = resources(template, "AWS::ECS::Service").values()
    [run_id] = resources(template, "Custom::SupersetDeployTask")
    assert run_id in service["DependsOn"]  # migrations before the new task definition serves
    deploy_role = role_statements(template, load(env).resource_name("dashboards-deploy"))
    assert [s["Action"] for s in deploy_role] == ["s3:GetObject"]
    assert len(WAITER.read_text()) < 4096  # Lambda's limit for inline code


def test_every_log_group_has_a_retention(dashboards) -> None:
    env, template = dashboards
    groups = resources(template, "AWS::Logs::LogGroup").values()
    assert {g["Properties"].get("RetentionInDays") for g in groups} == {RETENTION_DAYS[LOG_RETENTION]}
    assert all("KmsKeyId" in g["Properties"] for g in groups)


def test_the_bundle_is_rendered_for_athena_with_result_reuse(tmp_path: Path) -> None:
    config = load("dev")
    docs = athena_bundle(config, bucket_name(config, "athena-results"))
    [uri] = [d["sqlalchemy_uri"] for p, d in docs.items() if p.startswith("databases/")]
    assert uri.startswith(f"awsathena+rest://@athena.{config.region}.amazonaws.com:443/gold?")
    assert f"work_group={config.workgroup_name}" in uri
    assert uri.endswith(f"&result_reuse_enable=true&result_reuse_minutes={RESULT_REUSE_MINUTES}")


def test_with_a_certificate_https_serves_and_http_redirects(https: Template) -> None:
    listeners = [r["Properties"] for r in resources(https, "AWS::ElasticLoadBalancingV2::Listener").values()]
    by_port = {listener["Port"]: listener for listener in listeners}
    assert set(by_port) == {80, 443}
    assert by_port[443]["Protocol"] == "HTTPS"
    assert by_port[443]["Certificates"] == [{"CertificateArn": CERTIFICATE}]
    assert by_port[443]["DefaultActions"][0]["Type"] == "forward"
    assert https.to_json()["Outputs"]["Url"]["Value"] == f"https://{DOMAIN}/"
    [redirect] = by_port[80]["DefaultActions"]
    assert redirect["Type"] == "redirect"
    assert {k: redirect["RedirectConfig"][k] for k in ("Port", "Protocol", "StatusCode")} == {
        "Port": "443", "Protocol": "HTTPS", "StatusCode": "HTTP_301"}


def test_with_a_certificate_users_sign_in_through_cognito_with_groups_as_roles(https: Template) -> None:
    pool = only(https, "AWS::Cognito::UserPool")
    assert pool["MfaConfiguration"] == "ON" and pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    client = only(https, "AWS::Cognito::UserPoolClient")
    assert client["CallbackURLs"] == [f"https://{DOMAIN}{OIDC_CALLBACK}"]
    assert client["AllowedOAuthFlows"] == ["code"] and client.get("GenerateSecret") in (None, False)
    groups = {r["Properties"]["GroupName"] for r in resources(https, "AWS::Cognito::UserPoolGroup").values()}
    assert groups == set(GROUP_ROLES)
    service = _container(https, "-dashboards")
    variables = {e["Name"]: e["Value"] for e in service["Environment"]}
    assert (variables["AUTH_MODE"], variables["PUBLIC_SCHEME"]) == ("oidc", "https")
    assert json.loads(variables["AUTH_ROLES_MAPPING"]) == GROUP_ROLES
    assert variables["OIDC_GROUPS_CLAIM"] == "cognito:groups"


def test_another_oidc_provider_replaces_the_user_pool_and_its_client_secret_is_a_secret(own_oidc: Template) -> None:
    own_oidc.resource_count_is("AWS::Cognito::UserPool", 0)
    service = _container(own_oidc, "-dashboards")
    variables = {e["Name"]: e["Value"] for e in service["Environment"]}
    assert {k: variables[k] for k in ("AUTH_MODE", "OIDC_METADATA_URL", "OIDC_CLIENT_ID", "OIDC_GROUPS_CLAIM")} == {
        "AUTH_MODE": "oidc", "OIDC_METADATA_URL": OIDC["metadata_url"], "OIDC_CLIENT_ID": OIDC["client_id"],
        "OIDC_GROUPS_CLAIM": OIDC["groups_claim"]}
    assert "OIDC_CLIENT_SECRET" in {s["Name"] for s in service["Secrets"]}
    names = {r["Properties"]["Name"] for r in resources(own_oidc, "AWS::SecretsManager::Secret").values()}
    assert "lakehouse-dev-dashboards-oidc-client" in names


def test_the_rendered_bundle_holds_every_managed_kind(tmp_path: Path) -> None:
    from dashboards.render import write_bundle

    config = load("dev")
    bundle = write_bundle(athena_bundle(config, bucket_name(config, "athena-results")), tmp_path / "bundle.zip")
    with zipfile.ZipFile(bundle) as archive:
        kinds = {name.split("/")[1] for name in archive.namelist()}
    assert {"charts", "dashboards", "datasets", "databases"} <= kinds


_DEPLOY_DRIVER = """
import json, sys
sys.path.insert(0, sys.argv[1])
import deploy
deploy.superset("db", "upgrade")
deploy.superset("init")
with open(sys.argv[2], "rb") as bundle:
    contents = deploy.bundle_contents(bundle.read())
first = deploy.publish(contents, "first-password")
dropped = sorted(path for path in contents if path.startswith("charts/"))[-1]
uuid = str(deploy.yaml.safe_load(contents[dropped])["uuid"])
smaller = {path: text.replace(uuid, "00000000-0000-0000-0000-000000000000") for path, text in contents.items()
           if path != dropped}  # the chart gone from the bundle and from its dashboard's layout
second = deploy.publish(smaller, "second-password")
print(json.dumps({"managed": len(deploy.managed_uuids(contents)), "first": first, "second": second, "uuid": uuid}))
"""


@pytest.mark.slow
def test_the_deploy_task_imports_and_removes_what_the_bundle_dropped_on_a_real_superset(tmp_path: Path) -> None:
    """dashboards/image/deploy.py, in the Superset venv on a SQLite metadata database: migrate, init, create the
    admin, import; then reset the admin and remove the chart a second bundle no longer holds."""
    import os
    import subprocess

    from dashboards.render import render_bundle
    from lakehouse.analytics.superset import CONFIG_FILE, SUPERSET_VENV

    bundle = render_bundle("duckdb", tmp_path / "bundle.zip", serving_db=tmp_path / "serving.duckdb")
    env = {**os.environ, "LAKEHOUSE_SUPERSET_HOME": str(tmp_path / "home"), "SUPERSET_CONFIG_PATH": str(CONFIG_FILE),
           "FLASK_APP": "superset.app:create_app()", "PATH": f"{SUPERSET_VENV / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env.pop("PYTHONPATH", None)
    run = subprocess.run([str(SUPERSET_VENV / "bin" / "python"), "-c", _DEPLOY_DRIVER, str(WAITER.parent), str(bundle)],
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["managed"] > 0 and result["first"] == []
    assert result["second"] == [f"chart {result['uuid']}"]
