"""The local cloud: the embedded moto server, its patches, the resources provisioned from the same
definitions CDK deploys, and the pollers that play Lambda's event source mappings."""
