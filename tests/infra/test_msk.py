"""MSK Serverless ingestion: present exactly where `msk_enabled`, private, IAM-only, least privilege."""
from __future__ import annotations

import pytest
from aws_cdk.assertions import Template

from cdk_app.config import environments, load
from cdk_app.msk import HTTPS_PORT, IAM_PORT, TOPIC
from tests.infra.helpers import as_list, cleaner_mapping_settings, flatten_arn, logical_id, only, resources, role_statements

MSK_TYPES = ("AWS::MSK::ServerlessCluster", "AWS::EC2::VPC", "AWS::EC2::SecurityGroup", "AWS::EC2::FlowLog",
             "AWS::EC2::VPCEndpoint")
POLLERS = "MSK Serverless brokers, and the Lambda pollers (they use the cluster group)"
ENDPOINT = "SQS interface endpoint: HTTPS from the Lambda pollers only"


def _template(synthesized, env: str) -> Template:
    return Template.from_stack(synthesized(env).stage.ingestion)


def test_cdk_json_enables_msk_in_prod_only() -> None:
    # the assertions below cover both switch positions only while this holds
    assert {name: settings["msk_enabled"] for name, settings in environments().items()} == {
        "local": False, "dev": False, "prod": True}


@pytest.mark.parametrize("env", ["dev", "local"])
def test_switched_off_there_is_no_cluster_network_or_kafka_mapping(synthesized, env: str) -> None:
    template = _template(synthesized, env)
    for cfn_type in MSK_TYPES:
        assert resources(template, cfn_type) == {}, cfn_type
    assert all("Topics" not in m["Properties"] for m in resources(template, "AWS::Lambda::EventSourceMapping").values())
    assert synthesized(env).stage.ingestion.msk is None
    assert not any(a.startswith("kafka") for s in role_statements(template, load(env).function_name("cleaner"))
                   for a in as_list(s["Action"]))


@pytest.fixture(scope="module")
def prod(synthesized) -> Template:
    return _template(synthesized, "prod")


def test_cluster_is_serverless_iam_only_in_private_subnets(prod: Template) -> None:
    config = load("prod")
    cluster = only(prod, "AWS::MSK::ServerlessCluster")
    assert cluster["ClusterName"] == config.resource_name("events")
    assert cluster["ClientAuthentication"] == {"Sasl": {"Iam": {"Enabled": True}}}
    [vpc_config] = cluster["VpcConfigs"]
    subnets = resources(prod, "AWS::EC2::Subnet")
    assert {s["Ref"] for s in vpc_config["SubnetIds"]} == set(subnets)
    # one subnet per zone, zones taken from the account at deploy (synth is offline)
    zones = sorted(s["Properties"]["AvailabilityZone"]["Fn::Select"][0] for s in subnets.values())
    assert zones == list(range(len(subnets))) and len(zones) >= 2
    assert all(s["Properties"]["MapPublicIpOnLaunch"] is False for s in subnets.values())
    # no way out to the internet, none needed
    for cfn_type in ("AWS::EC2::InternetGateway", "AWS::EC2::NatGateway", "AWS::EC2::Route"):
        assert resources(prod, cfn_type) == {}, cfn_type
    cluster_group = logical_id(prod, "AWS::EC2::SecurityGroup", GroupDescription=POLLERS)
    assert vpc_config["SecurityGroups"] == [{"Fn::GetAtt": [cluster_group, "GroupId"]}]


def test_security_groups_open_only_the_iam_port_and_the_sqs_endpoint_between_themselves(prod: Template) -> None:
    groups = resources(prod, "AWS::EC2::SecurityGroup")
    endpoint_group = logical_id(prod, "AWS::EC2::SecurityGroup", GroupDescription=ENDPOINT)
    cluster_group = logical_id(prod, "AWS::EC2::SecurityGroup", GroupDescription=POLLERS)
    for name, group in groups.items():  # no inline rule, in particular no allow-all egress
        assert "SecurityGroupIngress" not in group["Properties"]
        if name == endpoint_group:  # an endpoint only answers: CDK's placeholder that denies all egress
            assert group["Properties"]["SecurityGroupEgress"] == [{
                "CidrIp": "255.255.255.255/32", "Description": "Disallow all traffic", "FromPort": 252,
                "IpProtocol": "icmp", "ToPort": 86}]
        else:
            assert "SecurityGroupEgress" not in group["Properties"]
    egress = resources(prod, "AWS::EC2::SecurityGroupEgress")
    # an egress rule of its own per group: CloudFormation then drops EC2's default allow-all egress
    assert {r["Properties"]["GroupId"]["Fn::GetAtt"][0] for r in egress.values()} == set(groups) - {endpoint_group}
    rules = list(resources(prod, "AWS::EC2::SecurityGroupIngress").values()) + list(egress.values())
    assert len(rules) == 6
    https = set()
    for rule in rules:
        props = rule["Properties"]
        peer = props.get("SourceSecurityGroupId") or props.get("DestinationSecurityGroupId")
        assert peer["Fn::GetAtt"][0] in groups  # never a CIDR
        assert props["IpProtocol"] == "tcp" and props["FromPort"] == props["ToPort"]
        if props["FromPort"] == HTTPS_PORT:
            https.add((props["GroupId"]["Fn::GetAtt"][0], peer["Fn::GetAtt"][0], "SourceSecurityGroupId" in props))
        else:
            assert props["FromPort"] == IAM_PORT
    # 443 only from the pollers' (cluster) group out to the endpoint's, and into the endpoint's from it
    assert https == {(cluster_group, endpoint_group, False), (endpoint_group, cluster_group, True)}


def test_on_failure_queue_is_reached_through_an_sqs_interface_endpoint_with_private_dns(prod: Template) -> None:
    """Lambda's Kafka pollers send failed batches' records to the cleaner's SQS queue from the isolated
    subnets: AWS requires an endpoint (or a NAT) for that."""
    endpoint = only(prod, "AWS::EC2::VPCEndpoint")
    assert endpoint["VpcEndpointType"] == "Interface"
    assert endpoint["ServiceName"] == f"com.amazonaws.{load('prod').region}.sqs"
    assert endpoint["PrivateDnsEnabled"] is True  # the mapping calls sqs.<region>.amazonaws.com
    assert {s["Ref"] for s in endpoint["SubnetIds"]} == set(resources(prod, "AWS::EC2::Subnet"))
    endpoint_group = logical_id(prod, "AWS::EC2::SecurityGroup", GroupDescription=ENDPOINT)
    assert endpoint["SecurityGroupIds"] == [{"Fn::GetAtt": [endpoint_group, "GroupId"]}]
    vpc = only(prod, "AWS::EC2::VPC")
    assert vpc["EnableDnsHostnames"] is True and vpc["EnableDnsSupport"] is True  # private DNS needs both


def test_vpc_traffic_is_logged_to_an_encrypted_group(prod: Template) -> None:
    flow_log = only(prod, "AWS::EC2::FlowLog")
    assert flow_log["ResourceType"] == "VPC" and flow_log["TrafficType"] == "ALL"
    group = next(g for g in resources(prod, "AWS::Logs::LogGroup").values()
                 if g["Properties"]["LogGroupName"] == "/lakehouse/prod/msk-vpc-flow-logs")
    assert "Fn::ImportValue" in group["Properties"]["KmsKeyId"]


def test_cleaner_mapping_on_the_topic_has_the_kinesis_mappings_safeguards(prod: Template) -> None:
    config = load("prod")
    cluster = logical_id(prod, "AWS::MSK::ServerlessCluster")
    [mapping] = [m["Properties"] for m in resources(prod, "AWS::Lambda::EventSourceMapping").values()
                 if m["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [cluster, "Arn"]}]
    queue = logical_id(prod, "AWS::SQS::Queue", QueueName=config.resource_name("cleaner-dlq"))
    function = logical_id(prod, "AWS::Lambda::Function", FunctionName=config.function_name("cleaner"))
    assert mapping["FunctionName"] == {"Ref": function}
    assert mapping["Topics"] == [TOPIC] == ["clickstream"]
    assert mapping["AmazonManagedKafkaEventSourceConfig"] == {"ConsumerGroupId": config.function_name("cleaner")}
    expected = cleaner_mapping_settings(config, queue)
    assert {k: mapping.get(k) for k in expected} == expected
    # Kafka's error-handling controls exist in provisioned mode only
    assert mapping["ProvisionedPollerConfig"]["MinimumPollers"] >= 1


def test_cleaner_may_read_exactly_its_topic_and_group(prod: Template) -> None:
    config = load("prod")
    cluster = logical_id(prod, "AWS::MSK::ServerlessCluster")
    cluster_arn = {"Fn::GetAtt": [cluster, "Arn"]}
    kafka = {}
    for statement in role_statements(prod, config.function_name("cleaner")):
        for action in as_list(statement["Action"]):
            if action.startswith("kafka"):
                [resource] = as_list(statement["Resource"])
                kafka[action] = resource if resource == cluster_arn else flatten_arn(resource)
    uuid = repr({"Fn::Select": [2, {"Fn::Split": ["/", cluster_arn]}]})
    prefix = f"arn:aws:kafka:{config.region}:{config.account}"
    topic = f"{prefix}:topic/{config.resource_name('events')}/{uuid}/clickstream"
    group = f"{prefix}:group/{config.resource_name('events')}/{uuid}/{config.function_name('cleaner')}"
    assert kafka == {
        "kafka:DescribeClusterV2": cluster_arn, "kafka:GetBootstrapBrokers": cluster_arn,
        "kafka-cluster:Connect": cluster_arn, "kafka-cluster:DescribeClusterDynamicConfiguration": cluster_arn,
        "kafka-cluster:DescribeTopic": topic, "kafka-cluster:ReadData": topic,
        "kafka-cluster:DescribeGroup": group, "kafka-cluster:AlterGroup": group,
    }


def test_producers_get_a_policy_for_the_topic_alone(prod: Template) -> None:
    config = load("prod")
    policy = only(prod, "AWS::IAM::ManagedPolicy")
    assert policy["ManagedPolicyName"] == config.resource_name("msk-producer")
    actions = sorted(a for s in policy["PolicyDocument"]["Statement"] for a in as_list(s["Action"]))
    assert actions == ["kafka-cluster:Connect", "kafka-cluster:CreateTopic", "kafka-cluster:DescribeTopic",
                       "kafka-cluster:WriteData"]
    topic_resources = [flatten_arn(s["Resource"]) for s in policy["PolicyDocument"]["Statement"]
                       if "kafka-cluster:WriteData" in as_list(s["Action"])]
    assert len(topic_resources) == 1 and topic_resources[0].endswith("/clickstream")
