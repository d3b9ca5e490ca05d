"""Running job attempts: one thread per attempt, its cancellation, its
events, and the exit of a process whose job ignores cancellation."""

import json
import logging
import math
import os
import sys
import threading
import traceback
from typing import Any, Callable, Set

from . import worker_pb2 as pb
from ._types import Job, NonRetryable, Reporter

# How long run may go on after its job was cancelled or timed out. Past it
# the SDK exits the process with EXIT_HUNG (the host restarts the plugin):
# a Python thread cannot be stopped from outside.
CANCEL_GRACE = 3.0

# Exit codes: a job ignored cancellation; the host process died.
EXIT_HUNG = 70
EXIT_ORPHANED = 71

# Limits that keep every message under gRPC's default 4 MiB receive limit:
# one oversized message would end the Session, and every job with it.
MAX_RESULT_BYTES = 4 * 1024 * 1024 - 64 * 1024
MAX_LOG_LINE = 1024 * 1024


def _result_bytes(value: Any) -> bytes:
    """Converts what run returned into the job's result bytes."""
    if value is None:
        return b""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (dict, list)):
        return json.dumps(value).encode("utf-8")
    raise NonRetryable(
        f"run returned {type(value).__name__}; return bytes, str, None, or a dict or list (sent as JSON)"
    )


class Runtime:
    """What every call of the process shares: the worker, the protocol
    version, the logger and the set of running calls."""

    def __init__(self, worker: Any, api_version: int, logger: logging.Logger):
        self.worker = worker
        self.api_version = api_version
        self.logger = logger
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._calls: Set["Call"] = set()
        # cleanup runs before the process exits on its own (a hung job).
        self.cleanup: Callable[[], None] = lambda: None

    def start(self, req: "pb.RunRequest", make_event: Callable[..., Any], put: Callable[[Any], None]) -> "Call":
        """Starts req on a thread of its own. make_event(**fields) builds the
        protocol's event message; put(event) sends it."""
        call = Call(self, req, make_event, put)
        with self._lock:
            self._calls.add(call)
        call.begin()
        return call

    def _done(self, call: "Call") -> None:
        with self._lock:
            self._calls.discard(call)
            self._idle.notify_all()

    def cancel_all(self) -> None:
        """Cancels every running call."""
        with self._lock:
            calls = list(self._calls)
        for call in calls:
            call.cancel()

    def wait_idle(self, timeout: float) -> bool:
        """Waits up to timeout seconds for every call to finish."""
        with self._lock:
            return self._idle.wait_for(lambda: not self._calls, timeout)


class Call(Reporter):
    """One job attempt: the Reporter handed to run, and its cancellation."""

    def __init__(self, rt: Runtime, req: "pb.RunRequest", make_event: Callable[..., Any], put: Callable[[Any], None]):
        self._rt = rt
        self._make = make_event
        self._put = put
        timeout = req.timeout_ms / 1000.0 if req.timeout_ms > 0 else None
        self.job = Job(
            id=req.job_id,
            attempt=req.attempt,
            queue=req.queue,
            payload=bytes(req.payload),
            timeout=timeout,
        )
        # _lock orders this call's events and guards the flags below.
        self._lock = threading.Lock()
        self._finished = False
        self._timers = []

    def begin(self) -> None:
        """Arms the timeout and starts run on a thread."""
        if self.job.timeout is not None:
            self._timer(self.job.timeout, self.cancel)
        threading.Thread(target=self._run, name=f"corral-job-{self.job.id}", daemon=True).start()

    def _timer(self, seconds: float, fn: Callable[[], None]) -> None:
        t = threading.Timer(seconds, fn)
        t.daemon = True
        self._timers.append(t)
        t.start()

    def cancel(self) -> None:
        """Sets the job's cancelled event; a run still going CANCEL_GRACE
        later ends the process."""
        with self._lock:
            if self._finished or self.job.cancelled.is_set():
                return
            self.job.cancelled.set()
            self._timer(CANCEL_GRACE, self._hung)

    def _hung(self) -> None:
        with self._lock:
            if self._finished:
                return
        self._rt.logger.error(
            "job %s ignored cancellation for %.0fs; exiting so the host restarts the plugin",
            self.job.id,
            CANCEL_GRACE,
        )
        self._rt.cleanup()
        sys.stderr.flush()
        os._exit(EXIT_HUNG)

    def _run(self) -> None:
        try:
            result = _result_bytes(self._rt.worker.run(self.job, self))
            if len(result) > MAX_RESULT_BYTES:
                raise NonRetryable(
                    f"result of {len(result)} bytes exceeds the plugin protocol's limit of {MAX_RESULT_BYTES} bytes"
                )
            event = self._make(result=pb.Result(data=result))
        except NonRetryable as e:
            event = self._make(error=pb.Error(message=str(e) or "non-retryable error", non_retryable=True))
        except BaseException as e:  # noqa: B902 - a job's failure, whatever it is
            if not self.job.cancelled.is_set():
                self._rt.logger.warning(
                    "job %s failed: %s", self.job.id, "".join(traceback.format_exception(type(e), e, e.__traceback__))
                )
            message = str(e) or type(e).__name__
            event = self._make(error=pb.Error(message=message, non_retryable=False))
        self._send(event, final=True)
        self._rt._done(self)

    def _send(self, event: Any, final: bool = False) -> None:
        with self._lock:
            if self._finished:
                return
            if final:
                self._finished = True
                for t in self._timers:
                    t.cancel()
            self._put(event)

    # Reporter

    def output(self, stream: str, line: str) -> None:
        for part in str(line).splitlines() or [""]:
            if len(part) > MAX_LOG_LINE:
                part = part[:MAX_LOG_LINE] + " [truncated]"
            self._send(self._make(log=pb.Log(stream=str(stream), line=part)))

    def progress(self, percent: float, message: str = "") -> None:
        p = float(percent)
        p = 0.0 if math.isnan(p) else max(0.0, min(100.0, p))
        self._send(self._make(progress=pb.Progress(percent=p, message=str(message))))

