"""AWS prices the project's cost figures use, in one place (the live path's model, lakehouse/operations/
live_model.py; meant for `lakehouse cost` too, issue 15). Each price says its unit, its region, the date it was
read and the pricing page it comes from. On-demand, no free tier: the free tiers (where a service has one) are
named beside the price and left to the reader, since an account's other workloads use them too.

Region: prod's in cdk.json (eu-west-1). Where the sources read gave the US East figure only, and the official
page lists eu-west-1 at the same rate, the note says so; check `REGION` and the date before quoting a figure.
"""
from __future__ import annotations

from dataclasses import dataclass

REGION = "eu-west-1"
PRICED_ON = "2026-12-08"


@dataclass(frozen=True)
class Price:
    usd: float  # per `per` units of `unit`
    per: int
    unit: str
    page: str  # the AWS pricing page
    note: str = ""
    region: str = REGION
    read_on: str = PRICED_ON

    def of(self, quantity: float) -> float:
        """USD for `quantity` units."""
        return quantity / self.per * self.usd


LAMBDA_REQUESTS = Price(0.20, 1_000_000, "requests", "https://aws.amazon.com/lambda/pricing/",
                        "free tier: 1M requests a month")
LAMBDA_GB_SECONDS_X86 = Price(0.0000166667, 1, "GB-seconds", "https://aws.amazon.com/lambda/pricing/",
                              "x86_64 (cdk_app/python_function.py), first 6 billion GB-s a month; free tier: 400,000 "
                              "GB-s a month")
SQS_FIFO_REQUESTS = Price(0.50, 1_000_000, "requests", "https://aws.amazon.com/sqs/pricing/",
                          "FIFO; each 64 KB chunk of a payload is one request, an empty receive is one too; free tier: "
                          "1M requests a month")
S3_STANDARD_PUTS = Price(0.005, 1_000, "PUT, COPY, POST, LIST requests", "https://aws.amazon.com/s3/pricing/",
                         "S3 Standard")
S3_STANDARD_GETS = Price(0.0004, 1_000, "GET, SELECT and other requests", "https://aws.amazon.com/s3/pricing/",
                         "S3 Standard")
GLUE_CATALOG_REQUESTS = Price(1.00, 1_000_000, "Data Catalog requests", "https://aws.amazon.com/glue/pricing/",
                              "the first 1M requests a month are free (and the first 1M objects stored)")
KMS_REQUESTS = Price(0.03, 10_000, "requests", "https://aws.amazon.com/kms/pricing/",
                     "symmetric-key API requests; free tier: 20,000 a month")
CLOUDWATCH_LOGS_INGESTED = Price(0.57, 1, "GB ingested", "https://aws.amazon.com/cloudwatch/pricing/",
                                 "standard log class, eu-west-1 (US East: $0.50); free tier: 5 GB a month")
