"""Dashboards stack: Superset on ECS Fargate over Athena, one per environment with `dashboards.enabled`.

- image: the official apache/superset image plus a hashed add-on lock (dashboards/image/Dockerfile), built by
  `cdk deploy` (Docker on the deploying machine);
- network: a two-zone VPC (public: the load balancer and one NAT gateway; private: the tasks; isolated: the
  database), an S3 gateway endpoint, flow logs;
- metadata: RDS PostgreSQL in the isolated subnets, a non-default port; it and the secrets under the stack's key;
- secrets (Secrets Manager, generated at deploy): the database password, SECRET_KEY, the bootstrap admin's password;
- front door: an internet-facing ALB with access logs. With `certificate_arn` and `domain_name`: HTTPS, HTTP
  redirected, sign-in through OIDC (the stack's Cognito user pool, or `dashboards.oidc`'s provider) with groups
  mapped to Superset roles. Without: HTTP and
  database sign-in with the bootstrap admin, since Cognito takes no plain-HTTP callback but localhost's
  (docs/decisions/0310-superset-on-fargate.md);
- the task role: Athena in the environment's workgroup, the lake's Glue tables and their files read, its query
  results written, the lake key;
- deploy task: on each deploy that changes the image or the bundle, a one-off task (dashboards/image/deploy.py)
  migrates the metadata, creates the admin and imports the bundle rendered for Athena; a custom resource waits for
  it and fails the deploy when it fails. The service is updated after it.
"""
from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Mapping
from pathlib import Path

from aws_cdk import AssetHashType, CfnOutput, CustomResource, Duration, Fn, IgnoreMode, Stack
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_rds as rds
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import custom_resources as cr
from constructs import Construct

from cdk_app.analytics import RESULTS_PREFIX
from cdk_app.config import EnvConfig
from cdk_app.data_quality import ATHENA_QUERY
from cdk_app.generated_secret import generated_secret
from cdk_app.grants import (WRITE_OBJECTS, Arn, allow, allow_key, allow_list, arn, bucket_arn, catalog_arns,
                            objects_arn, resourceless_reason)
from cdk_app.lake import DATABASES, warehouse_prefix
from iceberg_tables.views import ALL_VIEWS
from cdk_app.nag import acknowledge, nag_ref
from cdk_app.python_function import LOG_RETENTION, encrypted_log_group
from cdk_app.secure_bucket import bucket_name, removal_policy
from dashboards.render import render, write_bundle

DASHBOARDS_DIR = Path(__file__).resolve().parent.parent / "dashboards"
IMAGE_DIR = DASHBOARDS_DIR / "image"
WAITER = IMAGE_DIR / "deploy_task_waiter.py"
# the Docker build context is dashboards/: the image folder and the local configuration the AWS one builds on
IMAGE_CONTEXT = ["*", "!superset_config.py", "!image", "image/deploy_task_waiter.py", "**/__pycache__"]
SUPERSET_PORT = 8088
DATABASE_PORT = 5438  # not PostgreSQL's default
HEALTH_PATH = "/health"
CPU, MEMORY_MIB = 1024, 2048  # 1 vCPU, 2 GB: two gunicorn workers
CPU_TARGET_PERCENT = 60
ZONES = 2
VPC_CIDR = "10.42.0.0/16"
# Athena reuses an identical query's result this long: no longer than Superset's own chart-data cache
# (dashboards/image/superset_config.py), so a dashboard is at most this stale after a batch, even on a
# forced refresh. Gold changes once per batch run; nothing shown is fresher than that.
RESULT_REUSE_MINUTES = 10
# {user pool group: [Superset roles]}; signed-in users in no group get Gamma (sees nothing until granted)
GROUP_ROLES: dict[str, list[str]] = {"superset-admins": ["Admin"], "superset-editors": ["Alpha"],
                                     "superset-viewers": ["Gamma"]}
CATALOG_READ = ("glue:GetDatabase", "glue:GetDatabases", "glue:GetTable", "glue:GetTables")
ATHENA_METADATA = ("athena:ListDatabases", "athena:ListTableMetadata", "athena:GetTableMetadata")
# ECR's registry token takes no resource: the execution role needs it to pull the image from the asset repository
REGISTRY_TOKEN = "ecr:GetAuthorizationToken"
VIEW_DATABASES = tuple(sorted({view.namespace for view in ALL_VIEWS}))  # the Live dashboard reads fresh.*
OIDC_CALLBACK = "/oauth-authorized/oidc"  # Flask-AppBuilder's, for the provider named oidc


def athena_bundle(env: EnvConfig, results_bucket: str) -> dict[str, dict]:
    """The bundle rendered for the environment's Athena workgroup, with Athena's result reuse in the URI."""
    return render("athena", region=env.region, s3_staging_dir=f"s3://{results_bucket}/{RESULTS_PREFIX}",
                  work_group=env.workgroup_name, result_reuse_minutes=RESULT_REUSE_MINUTES)


def oidc_environment(metadata_url: str, client_id: str, groups_claim: str) -> dict[str, str]:
    """The task environment of OIDC sign-in (dashboards/image/superset_config.py reads it)."""
    return {"AUTH_MODE": "oidc", "PUBLIC_SCHEME": "https", "OIDC_METADATA_URL": metadata_url,
            "OIDC_CLIENT_ID": client_id, "OIDC_GROUPS_CLAIM": groups_claim,
            "AUTH_ROLES_MAPPING": json.dumps(GROUP_ROLES, sort_keys=True)}


class DashboardsStack(Stack):
    """Its parts: `vpc`, `cluster`, `database`, `service`, `task_role`, `load_balancer`, `user_pool` (None
    without HTTPS), `deploy_task`, `deploy_resource`, `log_group`, `bundle`, `secrets` {name: secret}."""

    def __init__(self, scope: Construct, construct_id: str, *, env_config: EnvConfig, key: kms.IKey,
                 bucket_names: Mapping[str, str], **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        env = self._env = env_config
        self._key = key
        settings = env.dashboards
        https = settings.certificate_arn is not None
        name = env.resource_name("dashboards")

        # --- network -------------------------------------------------------------------------------------------
        self.vpc = ec2.Vpc(
            self, "Vpc", vpc_name=name, ip_addresses=ec2.IpAddresses.cidr(VPC_CIDR),
            max_azs=ZONES,  # the stack's zones, resolved by CloudFormation (availability_zones below)
            nat_gateways=1,  # one for both zones: the tasks only call AWS APIs and the OIDC provider
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(name="tasks", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=24),
                ec2.SubnetConfiguration(name="database", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24),
            ],
            gateway_endpoints={"S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3)},
            restrict_default_security_group=False,  # nothing uses it; restricting it adds a custom-resource Lambda
        )
        self.vpc.add_flow_log("FlowLogs", destination=ec2.FlowLogDestination.to_cloud_watch_logs(
            encrypted_log_group(self, "FlowLogGroup", env=env, key=key, name=f"/lakehouse/{env.name}/dashboards-vpc-flow-logs")))
        self.load_balancer_group = ec2.SecurityGroup(self, "LoadBalancerSecurityGroup", vpc=self.vpc,
                                                     allow_all_outbound=False, description="Superset load balancer")
        self.task_group = ec2.SecurityGroup(self, "TaskSecurityGroup", vpc=self.vpc, allow_all_outbound=True,
                                            description="Superset tasks: out to AWS APIs and the OIDC provider")
        self.database_group = ec2.SecurityGroup(self, "DatabaseSecurityGroup", vpc=self.vpc, allow_all_outbound=False,
                                                description="Superset metadata database")
        self.database_group.add_ingress_rule(self.task_group, ec2.Port.tcp(DATABASE_PORT), "Superset tasks")

        # --- metadata database and secrets ---------------------------------------------------------------------
        # The stack's own key for the database and the secrets: ECS grants its execution role decryption in the
        # key's policy, which, on the lake key, would make the lake stack depend on this one.
        self.key = kms.Key(self, "Key", alias=f"alias/{name}", enable_key_rotation=True,
                           description=f"Encrypts the {env.name} dashboards' metadata database and secrets",
                           removal_policy=removal_policy(env))
        self.database = rds.DatabaseInstance(
            self, "Database",
            instance_identifier=name,
            engine=rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion.VER_17),
            instance_type=ec2.InstanceType.of(ec2.InstanceClass.BURSTABLE4_GRAVITON, ec2.InstanceSize.MICRO),
            vpc=self.vpc, vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            security_groups=[self.database_group], port=DATABASE_PORT, publicly_accessible=False,
            database_name="superset",
            credentials=rds.Credentials.from_generated_secret(
                "superset", secret_name=env.resource_name("dashboards-metadata"), encryption_key=self.key,
                exclude_characters=" %+~`#$&*()|[]{}:;<>?!'/@\"\\"),
            storage_encrypted=True, storage_encryption_key=self.key,
            storage_type=rds.StorageType.GP3, allocated_storage=20, max_allocated_storage=50,
            multi_az=False, backup_retention=Duration.days(7), auto_minor_version_upgrade=True,
            deletion_protection=env.removal_policy == "retain", removal_policy=removal_policy(env),
        )
        acknowledge(self.database, {
            "AwsSolutions-RDS3": "Single-AZ on purpose: the metadata is Superset's settings and users; the dashboards "
                                 "are re-imported from git by the deploy task, and 7 days of automated backups restore "
                                 "the rest. Multi-AZ would double the instance's cost for a minutes-long outage.",
            "AwsSolutions-RDS6": "Superset connects with the generated password from Secrets Manager (ECS secrets); "
                                 "IAM database authentication would need a token refresher in every gunicorn worker.",
            **({"AwsSolutions-RDS10": "Deletion protection follows the environment's removal policy (decision 0221): "
                                      "this environment is destroyed with its stacks; prod's database is protected."}
               if env.removal_policy == "destroy" else {}),
        })
        database_secret = self.database.secret
        assert database_secret is not None
        acknowledge(self.database, {
            "AwsSolutions-SMG4": "Running tasks hold the password from their start (ECS secrets): a rotation would cut "
                                 "them off until a redeploy. Rotate by hand with a service restart (docs/dashboards.md).",
        })
        self.secrets: dict[str, secretsmanager.ISecret] = {
            "metadata": database_secret,
            "secret_key": generated_secret(
                self, "SecretKey", env=env, component="dashboards-secret-key", key=self.key,
                description=f"Superset's SECRET_KEY ({env.name}): signs sessions, encrypts stored connection secrets",
                value=secretsmanager.SecretStringGenerator(password_length=64, exclude_punctuation=True),
                not_rotated_because="Changing SECRET_KEY needs `superset re-encrypt-secrets` with the previous key "
                                    "and signs every user out: a planned, manual change (docs/dashboards.md)."),
            "admin": generated_secret(
                self, "AdminPassword", env=env, component="dashboards-admin", key=self.key,
                description=f"Password of Superset's bootstrap admin ({env.name}), set by the deploy task",
                value=secretsmanager.SecretStringGenerator(password_length=32, exclude_punctuation=True),
                not_rotated_because="The deploy task sets the admin's password from this secret on each run; a "
                                    "rotation Lambda would change it without telling Superset."),
        }

        # --- sign-in -------------------------------------------------------------------------------------------
        auth: dict[str, str] = {"AUTH_MODE": "db", "PUBLIC_SCHEME": "http"}
        auth_secrets: dict[str, ecs.Secret] = {}
        self.user_pool: cognito.UserPool | None = None
        if https and settings.oidc:  # the user's own OIDC provider, its client secret set after the deploy
            self.secrets["oidc_client"] = generated_secret(
                self, "OidcClientSecret", env=env, component="dashboards-oidc-client", key=self.key,
                description=f"Client secret of Superset at the OIDC provider ({env.name}): a placeholder until you "
                            "put the provider's value (docs/dashboards.md)",
                value=secretsmanager.SecretStringGenerator(password_length=32, exclude_punctuation=True),
                not_rotated_because="The value is the OIDC provider's, set by hand from it; a rotation Lambda here "
                                    "could not change it at the provider.")
            auth = oidc_environment(settings.oidc.metadata_url, settings.oidc.client_id, settings.oidc.groups_claim)
            auth_secrets = {"OIDC_CLIENT_SECRET": ecs.Secret.from_secrets_manager(self.secrets["oidc_client"])}
        elif https:
            auth = self._user_pool(env, f"https://{settings.domain_name}")

        # --- the service ---------------------------------------------------------------------------------------
        self.cluster = ecs.Cluster(self, "Cluster", cluster_name=name, vpc=self.vpc,
                                   container_insights_v2=ecs.ContainerInsights.ENABLED)
        self.log_group = encrypted_log_group(self, "Logs", env=env, name=f"/lakehouse/{env.name}/dashboards", key=key)
        self.image = ecs.ContainerImage.from_asset(
            str(DASHBOARDS_DIR), file="image/Dockerfile", platform=ecr_assets.Platform.LINUX_AMD64,
            exclude=IMAGE_CONTEXT, ignore_mode=IgnoreMode.DOCKER)
        self.task_role = iam.Role(self, "TaskRole", role_name=name,
                                  assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
                                  description="Superset: Athena in the analytics workgroup, the lake read")
        self._grant_queries(self.task_role, key, bucket_names)
        environment = {
            "DATABASE_HOST": self.database.db_instance_endpoint_address,
            "DATABASE_PORT": str(DATABASE_PORT), "DATABASE_DB": "superset",
            "SERVER_WORKER_AMOUNT": "2", "SERVER_THREADS_AMOUNT": "8",
            "GUNICORN_TIMEOUT": "120",  # an Athena query may take a while; the load balancer waits as long
            "AWS_DEFAULT_REGION": env.region,
            **auth,
        }
        secrets = {
            "DATABASE_USER": ecs.Secret.from_secrets_manager(database_secret, "username"),
            "DATABASE_PASSWORD": ecs.Secret.from_secrets_manager(database_secret, "password"),
            "SUPERSET_SECRET_KEY": ecs.Secret.from_secrets_manager(self.secrets["secret_key"]),
            **auth_secrets,
        }
        self.task_definition = self._task_definition("Service", family=name, role=self.task_role,
                                                      environment=environment, secrets=secrets, stream="superset")
        self.task_definition.default_container.add_port_mappings(ecs.PortMapping(container_port=SUPERSET_PORT))
        self.service = ecs.FargateService(
            self, "Service", service_name=name, cluster=self.cluster, task_definition=self.task_definition,
            desired_count=settings.min_tasks, min_healthy_percent=100, max_healthy_percent=200,
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            security_groups=[self.task_group], assign_public_ip=False,
            health_check_grace_period=Duration.minutes(3),
        )
        scaling = self.service.auto_scale_task_count(min_capacity=settings.min_tasks, max_capacity=settings.max_tasks)
        scaling.scale_on_cpu_utilization("Cpu", target_utilization_percent=CPU_TARGET_PERCENT,
                                         scale_in_cooldown=Duration.minutes(5), scale_out_cooldown=Duration.minutes(1))

        # --- load balancer -------------------------------------------------------------------------------------
        self.load_balancer = self._load_balancer(env, name)
        CfnOutput(self, "Url", description="Where Superset is served (with HTTPS: point domain_name's DNS record at "
                                           "LoadBalancerDns first)",
                  value=f"https://{settings.domain_name}/" if https else
                  f"http://{self.load_balancer.load_balancer_dns_name}/")
        CfnOutput(self, "LoadBalancerDns", value=self.load_balancer.load_balancer_dns_name)

        # --- the deploy task -----------------------------------------------------------------------------------
        docs = athena_bundle(env, bucket_names["athena-results"])
        self.bundle = s3_assets.Asset(
            self, "Bundle", path=str(write_bundle(docs, Path(tempfile.mkdtemp(prefix="dashboards-")) / "bundle.zip")),
            # the zip's entries carry the time they were written: the content is the identity
            asset_hash=hashlib.sha256(json.dumps(docs, sort_keys=True).encode()).hexdigest(),
            asset_hash_type=AssetHashType.CUSTOM)
        deploy_role = iam.Role(self, "DeployTaskRole", role_name=env.resource_name("dashboards-deploy"),
                               assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
                               description="Superset's deploy task: reads the rendered bundle")
        allow(deploy_role, ("s3:GetObject",), [arn(self, "s3", f"{self.bundle.s3_bucket_name}/{self.bundle.s3_object_key}",
                                                   regional=False)])
        self.deploy_task = self._task_definition(
            "Deploy", family=env.resource_name("dashboards-deploy"), role=deploy_role, stream="deploy",
            environment={**environment, "BUNDLE_S3_URI": self.bundle.s3_object_url},
            secrets={**secrets, "ADMIN_PASSWORD": ecs.Secret.from_secrets_manager(self.secrets["admin"])},
            command=["python", "/app/pythonpath/deploy.py"])
        self.deploy_resource = self._run_on_deploy(env, name)
        self.service.node.add_dependency(self.deploy_resource)  # migrations before new code
        for task in (self.task_definition, self.deploy_task):
            acknowledge(task.obtain_execution_role(), {  # the statement is CDK's, for the image pull
                "AwsSolutions-IAM5[Resource::*]": resourceless_reason(REGISTRY_TOKEN)})
        acknowledge(self, {
            "AwsSolutions-ECS2": "Only settings that are not secret are environment variables (host, port, workers, "
                                 "sign-in mode); the passwords and SECRET_KEY are ECS secrets from Secrets Manager.",
        })

    @property
    def availability_zones(self) -> list[str]:
        """The account's first ZONES zones, resolved by CloudFormation (Fn::GetAZs) at deploy. Overridden because
        a VPC asks its stack for zones, which for a stack with an account and region is a context lookup that
        synth can't make offline."""
        return [Fn.select(index, Fn.get_azs()) for index in range(ZONES)]

    def _task_definition(self, construct_id: str, *, family: str, role: iam.IRole, environment: Mapping[str, str],
                         secrets: Mapping[str, ecs.Secret], stream: str,
                         command: list[str] | None = None) -> ecs.FargateTaskDefinition:
        task = ecs.FargateTaskDefinition(
            self, f"{construct_id}Task", family=family, cpu=CPU, memory_limit_mib=MEMORY_MIB, task_role=role,
            runtime_platform=ecs.RuntimePlatform(cpu_architecture=ecs.CpuArchitecture.X86_64,
                                                 operating_system_family=ecs.OperatingSystemFamily.LINUX))
        task.add_container(
            "Superset", image=self.image, environment=dict(environment), secrets=dict(secrets), command=command,
            logging=ecs.LogDrivers.aws_logs(stream_prefix=stream, log_group=self.log_group),
            health_check=None if command else ecs.HealthCheck(
                command=["CMD-SHELL", f"curl -fsS http://localhost:{SUPERSET_PORT}{HEALTH_PATH} || exit 1"],
                interval=Duration.seconds(30), timeout=Duration.seconds(5), retries=3,
                start_period=Duration.seconds(120)),
        )
        return task

    def _grant_queries(self, role: iam.Role, key: kms.IKey, bucket_names: Mapping[str, str]) -> None:
        """Athena in the analytics workgroup only; the lake's tables and their files read; its results written."""
        env = self._env
        warehouse, results = bucket_names["warehouse"], bucket_names["athena-results"]
        allow(role, ATHENA_QUERY, [arn(self, "athena", f"workgroup/{env.workgroup_name}")])
        allow(role, ATHENA_METADATA, [arn(self, "athena", "datacatalog/AwsDataCatalog")])
        allow(role, CATALOG_READ, catalog_arns(self, (*DATABASES, *VIEW_DATABASES)),
              wildcard_reason="Dashboards and SQL Lab read the tables of the lake's databases and the views over them "
                              "(iceberg_tables/); Athena reads each table's metadata location from the catalog.")
        read = [warehouse_prefix(database) for database in DATABASES]
        allow_list(role, warehouse, read)
        allow(role, ("s3:GetObject",), [objects_arn(self, warehouse, prefix) for prefix in read],
              wildcard_reason="Athena reads the tables' data and metadata files as the caller; their names are made "
                              "at write time.")
        allow_list(role, results, [RESULTS_PREFIX])
        allow(role, ("s3:GetBucketLocation",), [bucket_arn(self, results)])
        allow(role, ("s3:GetObject", *WRITE_OBJECTS), [objects_arn(self, results, RESULTS_PREFIX)],
              wildcard_reason="Athena writes each query's result under the workgroup's results prefix as the caller, "
                              "and Superset reads it back; names are query ids.")
        allow_key(role, key)

    def _user_pool(self, env: EnvConfig, public_url: str) -> dict[str, str]:
        """A Cognito user pool, its hosted sign-in domain, a client for Superset and the groups of GROUP_ROLES;
        returns the task environment that signs in through it."""
        name = env.resource_name("dashboards")
        pool = self.user_pool = cognito.UserPool(
            self, "Users", user_pool_name=name, self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(email=True), auto_verify=cognito.AutoVerifiedAttrs(email=True),
            password_policy=cognito.PasswordPolicy(min_length=14, require_lowercase=True, require_uppercase=True,
                                                   require_digits=True, require_symbols=True),
            mfa=cognito.Mfa.REQUIRED, mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            deletion_protection=env.removal_policy == "retain", removal_policy=removal_policy(env),
        )
        plus = ("Threat protection (advanced security) needs the Plus feature plan, billed per active user; sign-in "
                "already requires a 14-character password and a TOTP code, and self sign-up is off.")
        acknowledge(pool, {"AwsSolutions-COG3": plus, "AwsSolutions-COG8": plus})
        pool.add_domain("Domain", cognito_domain=cognito.CognitoDomainOptions(
            domain_prefix=f"{name}-{env.account}"))
        client = pool.add_client(
            "Superset", user_pool_client_name=name, generate_secret=False,  # public client with PKCE (decision 0310)
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True),
                scopes=[cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL, cognito.OAuthScope.PROFILE],
                callback_urls=[f"{public_url}{OIDC_CALLBACK}"], logout_urls=[f"{public_url}/"]),
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
            prevent_user_existence_errors=True,
        )
        for group in GROUP_ROLES:
            cognito.CfnUserPoolGroup(self, f"Group{group.title().replace('-', '')}", user_pool_id=pool.user_pool_id,
                                     group_name=group, description=f"Superset roles {', '.join(GROUP_ROLES[group])}")
        return oidc_environment(
            f"https://cognito-idp.{env.region}.amazonaws.com/{pool.user_pool_id}/.well-known/openid-configuration",
            client.user_pool_client_id, "cognito:groups")

    def _load_balancer(self, env: EnvConfig, name: str) -> elbv2.ApplicationLoadBalancer:
        settings = env.dashboards
        logs = s3.Bucket(
            self, "LoadBalancerLogs", bucket_name=bucket_name(env, "dashboards-logs"),
            # the load balancer's log delivery writes SSE-S3 objects only
            encryption=s3.BucketEncryption.S3_MANAGED, enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED, versioned=True,
            lifecycle_rules=[s3.LifecycleRule(id="expire-logs", expiration=Duration.days(365),
                                              noncurrent_version_expiration=Duration.days(7))],
            removal_policy=removal_policy(env),
        )
        acknowledge(logs, {"AwsSolutions-S1": "This bucket holds the load balancer's access logs; logging the log "
                                              "bucket's own accesses would add a bucket for little."})
        load_balancer = elbv2.ApplicationLoadBalancer(
            self, "LoadBalancer", load_balancer_name=name, vpc=self.vpc, internet_facing=True,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            security_group=self.load_balancer_group, drop_invalid_header_fields=True,
            idle_timeout=Duration.seconds(120))
        load_balancer.log_access_logs(logs, prefix="load-balancer")
        targets = elbv2.ApplicationTargetGroup(
            self, "Targets", vpc=self.vpc, port=SUPERSET_PORT, protocol=elbv2.ApplicationProtocol.HTTP,
            target_type=elbv2.TargetType.IP, targets=[self.service], deregistration_delay=Duration.seconds(30),
            health_check=elbv2.HealthCheck(path=HEALTH_PATH, healthy_http_codes="200", interval=Duration.seconds(30)))
        if settings.certificate_arn:
            load_balancer.add_listener(
                "Https", port=443, protocol=elbv2.ApplicationProtocol.HTTPS, open=True,
                certificates=[acm.Certificate.from_certificate_arn(self, "Certificate", settings.certificate_arn)],
                ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS, default_target_groups=[targets])
            load_balancer.add_redirect(source_port=80, source_protocol=elbv2.ApplicationProtocol.HTTP,
                                       target_port=443, target_protocol=elbv2.ApplicationProtocol.HTTPS)
        else:
            load_balancer.add_listener("Http", port=80, protocol=elbv2.ApplicationProtocol.HTTP, open=True,
                                       default_target_groups=[targets])
        acknowledge(self.load_balancer_group, {
            "AwsSolutions-EC23": "The dashboards' front door is public by design: every request signs in (OIDC or "
                                 "Superset's own sign-in); only 80 and 443 are open.",
        })
        return load_balancer

    def _run_on_deploy(self, env: EnvConfig, name: str) -> CustomResource:
        """A custom resource whose create and update run the deploy task and wait for it to stop (fails when it
        failed). Its properties are the image's and the bundle's hashes: a deploy changing either runs it."""
        handler_name = env.resource_name("dashboards-deploy-waiter")
        role = iam.Role(self, "WaiterRole", role_name=handler_name,
                        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        logs = encrypted_log_group(self, "WaiterLogs", env=env, name=f"/aws/lambda/{handler_name}", key=self._key)
        logs.grant_write(role)
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["ecs:RunTask"], resources=[self.deploy_task.task_definition_arn],
            conditions={"ArnEquals": {"ecs:cluster": self.cluster.cluster_arn}}))
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["iam:PassRole"],
            resources=[self.deploy_task.task_role.role_arn, self.deploy_task.obtain_execution_role().role_arn]))
        allow(role, ("ecs:DescribeTasks",), [Arn(
            f"arn:{self.partition}:ecs:{self.region}:{self.account}:task/{name}/*",
            f"arn:<AWS::Partition>:ecs:{self.region}:{self.account}:task/{name}/*")],
            wildcard_reason="Task ids are made when the task starts; the resource is this cluster's tasks only.")
        environment = {
            "CLUSTER": self.cluster.cluster_name, "TASK_DEFINITION": self.deploy_task.task_definition_arn,
            "SUBNETS": ",".join(s.subnet_id for s in self.vpc.private_subnets),
            "SECURITY_GROUP": self.task_group.security_group_id,
        }
        code = lambda_.Code.from_inline(WAITER.read_text())

        def handler(construct_id: str, entry: str, function_name: str) -> lambda_.Function:
            return lambda_.Function(self, construct_id, function_name=function_name, runtime=lambda_.Runtime.PYTHON_3_14,
                                    handler=f"index.{entry}", code=code, role=role, log_group=logs,
                                    timeout=Duration.seconds(30), environment=environment)

        on_event = handler("WaiterStart", "on_event", handler_name)
        is_complete = handler("WaiterCheck", "is_complete", f"{handler_name}-check")
        # the provider framework's own functions and waiter state machine: our roles, encrypted logs with a retention
        # (two roles: one shared would make a cycle through the waiter state machine's policies)
        framework_roles = [iam.Role(self, role_id, assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
                           for role_id in ("ProviderRole", "ProviderWaiterRole")]
        provider_logs = encrypted_log_group(self, "ProviderLogs", env=env, key=self._key,
                                            name=f"/aws/lambda/{handler_name}-provider")
        for framework_role in framework_roles:
            provider_logs.grant_write(framework_role)
        provider = cr.Provider(
            self, "DeployTaskProvider", on_event_handler=on_event, is_complete_handler=is_complete,
            framework_on_event_role=framework_roles[0], framework_complete_and_timeout_role=framework_roles[1],
            log_group=provider_logs, provider_function_name=f"{handler_name}-provider",
            disable_waiter_state_machine_logging=True,  # see AwsSolutions-SF1 below
            query_interval=Duration.seconds(20), total_timeout=Duration.minutes(30))
        for framework_role in framework_roles:
            acknowledge(framework_role, {
                f"AwsSolutions-IAM5[Resource::{nag_ref(function)}:*]": "Granted by CDK's provider framework: it may "
                    "invoke any version of the waiter's functions, which it owns alone."
                for function in (on_event, is_complete)
            })
        acknowledge(provider, {
            f"AwsSolutions-IAM5[Resource::<{self.get_logical_id(child.node.default_child)}.Arn>:*]":
                "Granted by CDK's provider framework: its waiter state machine may invoke any version of the "
                "framework's own functions."
            for child in provider.node.children if isinstance(child, lambda_.Function)
        } | {
            "AwsSolutions-SF1": "The waiter state machine only polls the deploy task: each poll is logged by the "
                                "is_complete function, the task's work by the task itself. Its own logging would "
                                "have CDK grant logs:CreateLogStream and logs:PutLogEvents on every resource.",
            "AwsSolutions-SF2": "CDK's provider framework offers no X-Ray option for its waiter state machine; it "
                                "only polls the deploy task, whose own log is in the dashboards log group.",
        })
        return CustomResource(self, "DeployTaskRun", service_token=provider.service_token,
                              resource_type="Custom::SupersetDeployTask",
                              properties={"Image": self.image_hash(), "Bundle": self.bundle.asset_hash})

    def image_hash(self) -> str:
        return self.deploy_task.default_container.image_name  # the asset's tag is its content hash
