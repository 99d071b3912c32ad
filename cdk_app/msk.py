"""Optional MSK Serverless ingestion (`msk_enabled` in cdk.json): a Kafka topic the cleaner also reads.

The cluster lives in its own VPC of private isolated subnets: no internet gateway and no NAT,
since nothing in it talks to the internet. The cleaner's event source mapping runs in
provisioned mode, which gives Kafka the same error handling as Kinesis (bisect, partial batch
failures, retry and record-age limits) and invokes the function from Lambda's side. Its on-failure
destination, the cleaner's SQS queue, is reached from the pollers' network interfaces in this VPC,
so the VPC has an SQS interface endpoint with private DNS, which only the pollers' (the cluster's)
group may reach, on 443 (docs/decisions/0210-msk-serverless-ingestion.md).

Topics are not CloudFormation resources on MSK Serverless (nor auto-created): a client holding
`producer_policy` creates the topic `TOPIC` once (docs/infrastructure.md shows how).
"""
from __future__ import annotations

from aws_cdk import Fn, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_msk as msk
from constructs import Construct

from cdk_app.cleaner import Cleaner
from cdk_app.config import EnvConfig
from cdk_app.nag import acknowledge
from cdk_app.grants import resourceless_reason
from cdk_app.python_function import TRACING, encrypted_log_group
from lambdas.contracts import clickstream

TOPIC = clickstream.SOURCE  # one topic per contract, named after its source
IAM_PORT = 9098  # MSK's SASL/IAM listener; the only port the cluster opens
HTTPS_PORT = 443  # the SQS endpoint's
VPC_CIDR = "10.80.0.0/16"
ZONES = 3  # MSK Serverless wants subnets in at least two availability zones; three survive the loss of one
# Provisioned pollers: the only mode with Kafka bisect/retry/partial-failure controls. One poller
# reads about 5 MB/s; raise the maximum before the topic outgrows it.
MIN_POLLERS, MAX_POLLERS = 1, 3
# Lambda's Kafka poller opens network interfaces in the cluster's subnets, as the function's role.
NETWORK_INTERFACE_ACTIONS = ("ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface", "ec2:DescribeNetworkInterfaces",
                             "ec2:DescribeVpcs", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups")


def availability_zones() -> list[str]:
    """The account's first ZONES zones, resolved by CloudFormation (Fn::GetAZs) at deploy: synth can't
    look them up (offline, no credentials), and zone names differ between accounts."""
    return [Fn.select(index, Fn.get_azs()) for index in range(ZONES)]


class MskIngestion(Construct):
    """`vpc`, `cluster` (CfnServerlessCluster, IAM auth only), `cluster_security_group`,
    `client_security_group` (for producers), `sqs_endpoint` and its `endpoint_security_group`,
    `producer_policy` (attach to producers' roles), `consumers` (the cleaners fed by `feed`)."""

    def __init__(self, scope: Construct, construct_id: str, *, env: EnvConfig, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self._env = env
        self.consumers: list[Cleaner] = []  # the cleaners `feed` gave a mapping on TOPIC
        self.vpc = ec2.Vpc(
            self, "Vpc",
            vpc_name=env.resource_name("msk"),
            ip_addresses=ec2.IpAddresses.cidr(VPC_CIDR),
            availability_zones=availability_zones(),
            nat_gateways=0,
            subnet_configuration=[ec2.SubnetConfiguration(
                name="brokers", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24)],
            # nothing uses the default group; restricting it would add a custom-resource Lambda
            restrict_default_security_group=False,
        )
        self.vpc.add_flow_log("FlowLogs", destination=ec2.FlowLogDestination.to_cloud_watch_logs(
            encrypted_log_group(self, "FlowLogGroup", env=env, key=key, name=f"/lakehouse/{env.name}/msk-vpc-flow-logs")))

        self.cluster_security_group = ec2.SecurityGroup(
            self, "ClusterSecurityGroup", vpc=self.vpc, allow_all_outbound=False,
            description="MSK Serverless brokers, and the Lambda pollers (they use the cluster group)")
        self.client_security_group = ec2.SecurityGroup(
            self, "ClientSecurityGroup", vpc=self.vpc, allow_all_outbound=False,
            description="Kafka producers: may reach the brokers IAM port, nothing else")
        brokers = ec2.Port.tcp(IAM_PORT)
        # the pollers' interfaces carry the cluster's group: they reach the brokers within it
        self.cluster_security_group.add_ingress_rule(self.cluster_security_group, brokers, "Lambda pollers to brokers")
        self.cluster_security_group.add_egress_rule(self.cluster_security_group, brokers, "Lambda pollers to brokers")
        self.cluster_security_group.add_ingress_rule(self.client_security_group, brokers, "producers to brokers")
        self.client_security_group.add_egress_rule(self.cluster_security_group, brokers, "producers to brokers")

        # The mapping's on-failure destination is SQS, which the pollers reach from their interfaces in
        # these isolated subnets: through an interface endpoint, whose private DNS answers sqs.<region>.
        self.endpoint_security_group = ec2.SecurityGroup(
            self, "SqsEndpointSecurityGroup", vpc=self.vpc, allow_all_outbound=False,
            description="SQS interface endpoint: HTTPS from the Lambda pollers only")
        https = ec2.Port.tcp(HTTPS_PORT)
        self.endpoint_security_group.add_ingress_rule(self.cluster_security_group, https,
                                                      "Lambda pollers to SQS (on-failure destination)")
        self.cluster_security_group.add_egress_rule(self.endpoint_security_group, https,
                                                    "Lambda pollers to SQS (on-failure destination)")
        self.sqs_endpoint = self.vpc.add_interface_endpoint(
            "SqsEndpoint", service=ec2.InterfaceVpcEndpointAwsService.SQS, private_dns_enabled=True,
            subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            security_groups=[self.endpoint_security_group], open=False)  # not the whole VPC: the rule above

        self.cluster_name = env.resource_name("events")
        self.cluster = msk.CfnServerlessCluster(
            self, "Cluster",
            cluster_name=self.cluster_name,
            client_authentication=msk.CfnServerlessCluster.ClientAuthenticationProperty(
                sasl=msk.CfnServerlessCluster.SaslProperty(iam=msk.CfnServerlessCluster.IamProperty(enabled=True))),
            vpc_configs=[msk.CfnServerlessCluster.VpcConfigProperty(
                subnet_ids=[s.subnet_id for s in self.vpc.isolated_subnets],
                security_groups=[self.cluster_security_group.security_group_id])],
        )
        self.producer_policy = iam.ManagedPolicy(
            self, "ProducerPolicy",
            managed_policy_name=env.resource_name("msk-producer"),
            description=f"Produce to (and create) the '{TOPIC}' topic of {self.cluster_name}",
            statements=[
                iam.PolicyStatement(actions=["kafka-cluster:Connect"], resources=[self.cluster.attr_arn]),
                iam.PolicyStatement(
                    actions=["kafka-cluster:CreateTopic", "kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"],
                    resources=[self._kafka_arn("topic", TOPIC)]),
            ],
        )

    def _kafka_arn(self, kind: str, name: str) -> str:
        """ARN of a topic or consumer group of the cluster: `<kind>/<cluster name>/<cluster uuid>/<name>`."""
        stack = Stack.of(self)
        cluster_uuid = Fn.select(2, Fn.split("/", self.cluster.attr_arn))
        return f"arn:{stack.partition}:kafka:{stack.region}:{stack.account}:{kind}/{self.cluster_name}/{cluster_uuid}/{name}"

    def feed(self, cleaner: Cleaner) -> lambda_.EventSourceMapping:
        """The cleaner's mapping on TOPIC, with the cleaner's own settings, and exactly its permissions."""
        group = self._env.function_name("cleaner")  # a consumer group of its own
        self.consumers.append(cleaner)
        role = cleaner.function.role
        for actions, resource in (
            (("kafka:DescribeClusterV2", "kafka:GetBootstrapBrokers"), self.cluster.attr_arn),
            (("kafka-cluster:Connect", "kafka-cluster:DescribeClusterDynamicConfiguration"), self.cluster.attr_arn),
            (("kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"), self._kafka_arn("topic", TOPIC)),
            (("kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup"), self._kafka_arn("group", group)),
        ):
            role.add_to_principal_policy(iam.PolicyStatement(actions=list(actions), resources=[resource]))
        role.add_to_principal_policy(iam.PolicyStatement(actions=list(NETWORK_INTERFACE_ACTIONS), resources=["*"]))
        acknowledge(role, {"AwsSolutions-IAM5[Resource::*]": resourceless_reason(*NETWORK_INTERFACE_ACTIONS, *TRACING)})
        return lambda_.EventSourceMapping(
            self, "CleanerMapping",
            target=cleaner.function.function,
            event_source_arn=self.cluster.attr_arn,
            kafka_topic=TOPIC,
            kafka_consumer_group_id=group,
            provisioned_poller_config=lambda_.ProvisionedPollerConfig(minimum_pollers=MIN_POLLERS,
                                                                      maximum_pollers=MAX_POLLERS),
            **cleaner.mapping_options(),
        )
