"""The batch pipeline's time limits, as definition substitutions of its ASL: CDK and the local cloud
(lakehouse/cloud/provision.py) fill in the same numbers.

- `GlueJobTimeoutSeconds`: each Glue task's own timeout, the job's (`glue_timeout_minutes`). The task's clock
  starts at StartJobRun, before the job's, so the task times out first, as States.Timeout, which its Retry
  does not match. (Glue reports its own timeout as States.TaskFailed, which the Retry matches: a job that
  timed out would run, and time out, three times while the run holds the lock.)
- `RunLeaseSeconds`: the run lock's lease, from the run's start. A run ends within the ASL's TimeoutSeconds
  (Step Functions enforces it, and stops the job it waits for); should that stop fail, the job still ends
  within its own timeout. So a lock is never taken over while anything of its run can still be running.
"""
from __future__ import annotations

import json

from cdk_app.config import PROJECT_ROOT, EnvConfig

BATCH_PIPELINE_ASL = PROJECT_ROOT / "step_functions" / "batch_pipeline.asl.json"


def run_timeout_seconds() -> int:
    """The state machine's own timeout: its ASL's TimeoutSeconds, one number for every environment."""
    return int(json.loads(BATCH_PIPELINE_ASL.read_text())["TimeoutSeconds"])


def substitutions(env: EnvConfig) -> dict[str, str]:
    """{GlueJobTimeoutSeconds, RunLeaseSeconds} for `env` (definition substitutions are strings)."""
    job_timeout = env.glue_timeout_minutes * 60
    return {"GlueJobTimeoutSeconds": str(job_timeout), "RunLeaseSeconds": str(run_timeout_seconds() + job_timeout)}
