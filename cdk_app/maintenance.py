"""Daily table maintenance in AWS: the job, its state machine's ASL and its schedule (cdk_app/schedules.py).

The job (glue_jobs/maintenance.py) runs in the processing stack's GlueJobs, whose role already
reads, writes and deletes every table's files; the state machine is step_functions/maintenance.asl.json.
"""
from __future__ import annotations

from cdk_app.config import PROJECT_ROOT

JOB = "maintenance"
ASL_FILE = PROJECT_ROOT / "step_functions" / "maintenance.asl.json"
# 02:30 UTC: after the night's batch runs have settled; a commit race with one is retried by the ASL.
SCHEDULE = "cron(30 2 * * ? *)"
