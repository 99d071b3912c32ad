"""The live committer's queue settings, shared by its handler, CDK (cdk_app/live_committer.py) and the local
cloud (lakehouse/cloud/provision.py). A module of its own: importing the handler creates its Powertools Logger,
which keeps the stdout it sees then, and the local cloud routes a function's output to its log file only while
the function runs (lakehouse/cloud/moto_patches.py)."""
from __future__ import annotations

COMMIT_EVERY = "LIVE_COMMIT_EVERY_SECONDS"  # cdk.json's live_commit_every_seconds (cdk_app/config.py)
FIFO_BATCH = 10  # SQS FIFO's most messages a delivery: a table with this many waiting commits at once
COMMIT_ATTEMPTS = 5  # failed commits of a message before the queue parks it in its dead-letter queue
# The queue's maxReceiveCount: a deferred message is received once more than it is committed, and a message is
# deferred at most once (on its first receive only: ApproximateReceiveCount 1), so 1 deferral + 5 commit attempts
# = 6 receives before the dead-letter queue.
MAX_RECEIVES = 1 + COMMIT_ATTEMPTS
