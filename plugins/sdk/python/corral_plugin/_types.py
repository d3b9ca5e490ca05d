"""The types a plugin author sees: Info, Job, Reporter and the errors."""

import json
import threading
from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass(frozen=True)
class Info:
    """Describes the plugin to the host (shown by `corral plugin list`).

    The host knows a plugin by its file name in plugin_dir; name is the
    plugin's own idea of its name and only logged when they differ.
    """

    name: str
    version: str = ""
    description: str = ""


class NonRetryable(Exception):
    """Raise it (or raise from it) to fail the job at once, without retries.

    Any other exception fails only the attempt: the job is retried with
    backoff until it runs out of attempts.
    """


class Cancelled(Exception):
    """Raised by Job.check() once the job is cancelled or timed out."""


@dataclass
class Job:
    """One attempt of a job, handed to run(job, reporter).

    cancelled is a threading.Event that is set when the job is cancelled,
    reaches its timeout, or the host goes away. run must then return
    promptly: a job still running 3 seconds later makes the SDK exit the
    plugin process (the host restarts it), because a Python thread cannot
    be stopped from outside. Check it in loops (job.check() raises
    Cancelled), and wait on it instead of sleeping:
    `if job.cancelled.wait(1.0): ...`.
    """

    id: str
    attempt: int
    queue: str
    payload: bytes
    # Seconds this attempt may run (None: no timeout). cancelled is set
    # when it has passed.
    timeout: Optional[float] = None
    cancelled: threading.Event = field(default_factory=threading.Event, repr=False)

    def text(self) -> str:
        """Returns the payload decoded as UTF-8."""
        return self.payload.decode("utf-8")

    def json(self) -> Any:
        """Returns the payload parsed as JSON."""
        return json.loads(self.payload)

    def check(self) -> None:
        """Raises Cancelled if the job has been cancelled or timed out."""
        if self.cancelled.is_set():
            raise Cancelled("job cancelled or timed out")


class Reporter:
    """Streams a job's log lines and progress back to the host.

    Safe to use from several threads. Calls made after run has returned are
    dropped.
    """

    def log(self, line: str) -> None:
        """Adds a line to the job's log (`corral job logs`), stream "plugin".

        A string with newlines becomes several lines.
        """
        self.output("plugin", line)

    def output(self, stream: str, line: str) -> None:
        """Adds a line to the job's log on stream "stdout", "stderr" or
        "plugin" (use stdout/stderr for a child process's output)."""
        raise NotImplementedError

    def progress(self, percent: float, message: str = "") -> None:
        """Reports how far the job is: percent done from 0 to 100 (an int or
        a float; values outside are clamped) and a short message, shown by
        `corral job status` and `job submit -wait`."""
        raise NotImplementedError
