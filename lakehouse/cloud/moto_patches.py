"""Every patch of moto internals, in one place, so a moto upgrade that breaks one fails loudly.

moto serves the real AWS APIs over HTTP, but pretends where AWS would run code: Glue job runs
succeed at once without running their script, and Lambda invokes need Docker. These patches plug
the project's real code into moto's task execution, in-process:

1. Step Functions `.sync` on Glue: moto's callback path calls `interrupt_all()` on an endpoint
   that only exists for `.waitForTaskToken` services; Glue has `.sync` and no task token, so every
   `glue:startJobRun.sync` crashed. We add the missing None guard (as LocalStack PR #13705 does).
2. GetJobRun, as called by the ASL interpreter, returns datetimes that its JSON output can't
   carry: convert them to epoch millis, as the real service's JSON protocol does.
3. Glue StartJobRun runs the registered job callable (our Spark job) in a thread, with real
   RUNNING / SUCCEEDED / FAILED states and the error message of a failed run.
4. GetJobRun shows ErrorMessage, a real ExecutionTime, and CompletedOn only once terminal.
5. Lambda Invoke runs the registered handler in-process, with the function's environment
   variables, and turns an exception into a FunctionError as AWS does.
6. Step Functions `states:startExecution` (and its `.sync`, `.sync:2`): moto's port of the
   interpreter leaves out the request and response normalisation, so the ASL's `StateMachineArn`
   never became the API's `stateMachineArn` (a KeyError), and the child's result would keep the
   API's casing instead of `ExecutionArn`, `Status`, `Output`. We restore it from botocore's model,
   with times as epoch millis.
7. Kinesis shards: moto's GetRecords walks every record of the shard from the first, and races PutRecords
   on the same dict ("OrderedDict mutated during iteration", a 500) once producers and pollers run
   together under sustained load. A shard's reads and writes take one lock, and a read starts at the
   iterator's position: moto numbers a shard's records 1, 2, 3... in the order they arrive.

`tests/integration/test_moto_patches.py` tests each one. Pinned to moto==5.2.5.
"""
from __future__ import annotations

import datetime
import functools
import inspect
import io
import json
import logging
import os
import sys
import textwrap
import threading
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, TextIO

import botocore
import botocore.session
from botocore.model import OperationModel
from moto.awslambda.models import LambdaFunction
from moto.core.config import default_user_config
from moto.core.utils import utcnow
from moto.glue.models import FakeJob, FakeJobRun
from moto.kinesis.models import Record, Shard
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_callback as _callback_module,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_glue as _glue_module,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
    StateTaskServiceSfn,
)

log = logging.getLogger(__name__)

GlueJob = Callable[[dict[str, str]], Any]
LambdaHandler = Callable[[dict[str, Any], Any], Any]

# Job name -> callable(args). Raising means the run FAILED. Unregistered jobs keep moto's behaviour.
GLUE_JOBS: dict[str, GlueJob] = {}
# Function name -> handler(event, context). Unregistered functions keep moto's behaviour.
LAMBDA_HANDLERS: dict[str, LambdaHandler] = {}

_env_lock = threading.Lock()  # os.environ is process-wide: one in-process invoke at a time
_applied = False
# Where a function's stdout (its structured logs and EMF metrics) goes, as CloudWatch Logs would
# keep it: LOG_DIR/<function>.log. None: the process's own stdout.
LOG_DIR: Path | None = None


class MotoChanged(RuntimeError):
    """moto's internals no longer look as these patches expect: re-check them for this version."""


def _guard_sync_interrupt() -> None:
    """Patch 1: recompile moto's own method with `if callback_endpoint is not None:` added."""
    cls = _callback_module.StateTaskServiceCallback
    method = cls._eval_integration_pattern
    lines, first_line = inspect.getsourcelines(method)
    source = textwrap.dedent("".join(lines))
    bad = "callback_endpoint.interrupt_all()"
    if source.count(bad) != 1:
        raise MotoChanged(f"{cls.__name__}._eval_integration_pattern no longer has one '{bad}'")
    source = source.replace(bad, f"if callback_endpoint is not None: {bad}")
    namespace: dict[str, Any] = {}
    # Same file name and line numbers, so tracebacks still point into moto's source.
    code = compile("\n" * (first_line - 1) + source, inspect.getsourcefile(method) or "<moto>", "exec")
    exec(code, vars(_callback_module), namespace)  # noqa: S102 - moto's own source, one line changed
    cls._eval_integration_pattern = namespace[method.__name__]


def _job_run_datetimes_to_millis(parsed: dict[str, Any], **_: Any) -> None:
    run = parsed.get("JobRun", {})
    for key, value in list(run.items()):
        if isinstance(value, datetime.datetime):
            run[key] = int(value.timestamp() * 1000)


_original_glue_client = _glue_module.StateTaskServiceGlue._get_glue_client


def _glue_client(resource_runtime_part: Any, state_credentials: Any) -> Any:
    """Patch 2: the ASL interpreter's Glue client, with GetJobRun datetimes as epoch millis."""
    client = _original_glue_client(resource_runtime_part, state_credentials)
    client.meta.events.register("after-call.glue.GetJobRun", _job_run_datetimes_to_millis)
    return client


_original_start_job_run = FakeJob.start_job_run
_original_job_run_as_dict = FakeJobRun.as_dict


def _start_job_run(self: FakeJob, **kwargs: Any) -> str:
    """Patch 3: StartJobRun runs the registered job in a thread (moto would just say SUCCEEDED)."""
    run_id = _original_start_job_run(self, **kwargs)
    job = GLUE_JOBS.get(self.name)
    if job is not None:
        run = next(r for r in self.job_runs if r.job_run_id == run_id)
        run._transitions = []  # moto's state manager must not advance this run by itself
        run.status = "STARTING"
        run.error_message = None
        thread = threading.Thread(target=_run_job, args=(run, job), daemon=True, name=f"glue-{self.name}")
        thread.start()
    return run_id


def _run_job(run: FakeJobRun, job: GlueJob) -> None:
    run.started_on = run.modified_on = utcnow()
    run.status = "RUNNING"
    # Glue passes arguments as "--key": value; jobs read them without the dashes (getResolvedOptions).
    args = {key.removeprefix("--"): value for key, value in (run.arguments or {}).items()}
    args.update(JOB_NAME=run.job_name, JOB_RUN_ID=run.job_run_id)
    try:
        job(args)
        state = "SUCCEEDED"
    except BaseException as error:  # noqa: BLE001 - a job's failure is its run's result
        # A Py4JJavaError's useful text is the JVM exception's first line.
        text = str(getattr(error, "java_exception", None) or error).strip()
        run.error_message = f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"
        log.error("glue job %s run %s failed\n%s", run.job_name, run.job_run_id, traceback.format_exc())
        state = "FAILED"
    run.completed_on = run.modified_on = utcnow()
    run.status = state  # last: a poller never sees a terminal state without its other fields


def _job_run_as_dict(self: FakeJobRun) -> dict[str, Any]:
    """Patch 4: GetJobRun fields of a run that really ran."""
    result = _original_job_run_as_dict(self)
    if hasattr(self, "error_message"):
        done = result["JobRunState"] in ("SUCCEEDED", "FAILED", "STOPPED", "ERROR", "TIMEOUT")
        end = self.completed_on if done else utcnow()
        result["ExecutionTime"] = int((end - self.started_on).total_seconds())
        if not done:
            result.pop("CompletedOn", None)
        if self.error_message:
            result["ErrorMessage"] = self.error_message
    return result


_original_invoke_lambda = LambdaFunction._invoke_lambda


_log_files: dict[Path, TextIO] = {}
_stdout_lock = threading.Lock()


class _StdoutByThread(io.TextIOBase):
    """sys.stdout while functions run in moto's request threads: a thread running a function writes to
    that function's log, every other thread to the stdout there was before. (Swapping sys.stdout for
    the whole process would also send the CLI's own lines, printed meanwhile, into the function's log.)"""

    def __init__(self, default: TextIO) -> None:
        self.default = default
        self.targets: dict[int, TextIO] = {}

    def _target(self) -> TextIO:
        return self.targets.get(threading.get_ident(), self.default)

    def write(self, text: str) -> int:
        return self._target().write(text)

    def flush(self) -> None:
        self._target().flush()

    def isatty(self) -> bool:
        return self._target().isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._target(), "encoding", "utf-8")


@contextmanager
def function_output(function_name: str) -> Iterator[None]:
    """Send this thread's stdout to the function's log file while its code runs (also around its
    import, since Powertools' Logger keeps the stdout it sees when it is created: it keeps the router,
    which sends each write to the log of the function running in the writing thread)."""
    if LOG_DIR is None:
        yield
        return
    path = LOG_DIR / f"{function_name}.log"
    if path not in _log_files or _log_files[path].closed:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        _log_files[path] = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - lives with the process
    with _stdout_lock:
        if not isinstance(sys.stdout, _StdoutByThread):
            sys.stdout = _StdoutByThread(sys.stdout)
        router = sys.stdout
    thread = threading.get_ident()
    previous = router.targets.get(thread)
    router.targets[thread] = _log_files[path]
    try:
        yield
    finally:
        if previous is None:
            router.targets.pop(thread, None)
        else:
            router.targets[thread] = previous


@contextmanager
def _function_environment(variables: dict[str, str]) -> Iterator[None]:
    """The function's environment variables for the duration of one in-process invoke."""
    with _env_lock:
        saved = {key: os.environ.get(key) for key in variables}
        os.environ.update(variables)
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def _invoke_lambda(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
    """Patch 5: Invoke runs the registered handler in-process (moto would need Docker)."""
    handler = LAMBDA_HANDLERS.get(self.function_name)
    if handler is None:
        return _original_invoke_lambda(self, event)
    if isinstance(event, (str, bytes)):
        event = json.loads(event or "{}")
    try:
        with _function_environment(dict(self.environment_vars or {})), function_output(self.function_name):
            result = handler(event or {}, None)
        return json.dumps(result), False, ""
    except Exception as error:  # noqa: BLE001 - reported as FunctionError, as AWS does
        trace = traceback.format_exc()
        body = {"errorMessage": str(error), "errorType": type(error).__name__, "stackTrace": trace.splitlines()}
        return json.dumps(body), True, trace


@functools.cache
def _sfn_operations() -> dict[str, OperationModel]:
    """Step Functions' API operations by their boto3 method name (start_execution, ...)."""
    model = botocore.session.get_session().get_service_model("stepfunctions")
    return {botocore.xform_name(name): model.operation_model(name) for name in model.operation_names}


_original_sfn_normalise_parameters = StateTaskServiceSfn._normalise_parameters


def _sfn_normalise_parameters(self: StateTaskServiceSfn, parameters: dict[str, Any],
                              boto_service_name: str | None = None, service_action_name: str | None = None) -> None:
    """Patch 6 (request): moto's own step (Input as a JSON string), then the ASL's keys in the API's casing."""
    _original_sfn_normalise_parameters(self, parameters, boto_service_name, service_action_name)
    self._to_boto_request(parameters, _sfn_operations()[self._get_boto_service_action(service_action_name)].input_shape)


def _sfn_normalise_response(self: StateTaskServiceSfn, response: Any, boto_service_name: str | None = None,
                            service_action_name: str | None = None) -> None:
    """Patch 6 (response): the API's keys in the ASL's casing (ExecutionArn, Status, Output, ...), its
    times as epoch millis (as the service's integration results carry them: JSON has no datetime)."""
    if isinstance(response, dict):
        response.update({key: int(value.timestamp() * 1000) for key, value in response.items()
                         if isinstance(value, datetime.datetime)})
    self._from_boto_response(response, _sfn_operations()[self._get_boto_service_action(service_action_name)]
                             .output_shape)


_SHARD_LOCK = threading.Lock()  # one for every shard: a put or a read holds it for microseconds


def _put_record(self: Shard, partition_key: str, data: str, explicit_hash_key: str) -> str:
    """moto's Shard.put_record (the next sequence number after the newest), under the shard lock, finding the
    newest without listing every key."""
    with _SHARD_LOCK:
        sequence_number = next(reversed(self.records), 0) + 1
        self.records[sequence_number] = Record(partition_key, data, sequence_number, explicit_hash_key)
    return str(sequence_number)


def _get_records(self: Shard, last_sequence_id: str, limit: int | None) -> tuple[list[Record], int, int]:
    """moto's Shard.get_records (the records after `last_sequence_id`, the last one returned, how far behind the
    newest record they are), reading by sequence number instead of scanning, under the shard lock."""
    last = int(last_sequence_id)
    with _SHARD_LOCK:
        newest = next(reversed(self.records), 0) if self.records else 0
        end = newest if limit is None else min(newest, last + limit)
        results = [self.records[n] for n in range(last + 1, end + 1) if n in self.records]
        behind = self.records[newest].created_at - results[-1].created_at if results else 0.0
    return results, (results[-1].sequence_number if results else last), int(behind * 1000)


def apply() -> None:
    """Apply all patches once per process, before the first execution starts."""
    global _applied
    if _applied:
        return
    default_user_config["stepfunctions"] = {"execute_state_machine": True}
    _guard_sync_interrupt()
    _glue_module.StateTaskServiceGlue._get_glue_client = staticmethod(_glue_client)
    FakeJob.start_job_run = _start_job_run
    FakeJobRun.as_dict = _job_run_as_dict
    LambdaFunction._invoke_lambda = _invoke_lambda
    StateTaskServiceSfn._normalise_parameters = _sfn_normalise_parameters
    StateTaskServiceSfn._normalise_response = _sfn_normalise_response
    Shard.put_record = _put_record
    Shard.get_records = _get_records
    _applied = True
