"""serve(): the plugin's main loop, and the stderr logger."""

import datetime
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from concurrent import futures
from typing import Any, Callable, Optional

from . import _handshake as hs
from ._calls import CANCEL_GRACE, EXIT_ORPHANED, Runtime
from ._types import Info

# How often the plugin checks that the host process still lives.
_WATCHDOG_INTERVAL = 0.25


class _JSONLines(logging.Handler):
    """Writes records as hclog JSON lines, which the host parses: the level
    is kept and the line shows in the agent's log under the plugin's name."""

    _LEVELS = {
        logging.DEBUG: "debug",
        logging.INFO: "info",
        logging.WARNING: "warn",
        logging.ERROR: "error",
        logging.CRITICAL: "error",
    }

    def __init__(self, stream):
        super().__init__()
        self._stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        try:
            ts = datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
            entry = {
                "@level": self._LEVELS.get(record.levelno, "info"),
                "@message": record.getMessage(),
                "@timestamp": ts.isoformat(timespec="microseconds"),
            }
            extra = getattr(record, "fields", None)
            if isinstance(extra, dict):
                entry.update({str(k): v for k, v in extra.items()})
            self._stream.write(json.dumps(entry, default=str) + "\n")
            self._stream.flush()
        except Exception:  # a broken stderr must not break the job
            self.handleError(record)


_logger: Optional[logging.Logger] = None
_logger_lock = threading.Lock()


def logger() -> logging.Logger:
    """Returns the plugin's logger (a logging.Logger named "corral_plugin").

    It writes to stderr as JSON lines that the agent merges into its own log
    with their level, under the plugin's name. Use it for the plugin's own
    diagnostics; use Reporter.log for lines that belong to a job's log.
    Plain lines on stderr (print(..., file=sys.stderr)) show in the agent's
    log at INFO. Never write to stdout before serve() has printed the
    handshake; after it, the SDK sends stdout to stderr as well.
    """
    global _logger
    with _logger_lock:
        if _logger is None:
            lg = logging.getLogger("corral_plugin")
            lg.setLevel(logging.DEBUG)
            lg.addHandler(_JSONLines(sys.stderr))
            lg.propagate = False
            _logger = lg
        return _logger


class _FunctionWorker:
    """Adapts a run(job, reporter) function to the worker interface."""

    def __init__(self, run: Callable, info: Info, configure: Optional[Callable]):
        self.run = run
        self.info = info
        if configure is not None:
            self.configure = configure


def _watch_parent(ppid: int, on_orphaned: Callable[[], None]) -> None:
    while True:
        time.sleep(_WATCHDOG_INTERVAL)
        if os.getppid() != ppid:
            on_orphaned()
            return


def serve(worker: Any, *, info: Optional[Info] = None, configure: Optional[Callable] = None) -> None:
    """Serves worker as a Corral worker plugin; never returns.

    worker is an object with an `info` attribute (an Info, or a method
    returning one), a `run(job, reporter)` method and, optionally, a
    `configure(config: dict)` method that validates the plugin's config {}
    block (raise to reject it). A plain function `run(job, reporter)` works
    too, with info= (and configure=) given here.

    run returns the job's result: bytes, str (UTF-8), None (empty), or a dict
    or list (sent as JSON). Raising NonRetryable fails the job for good; any
    other exception fails the attempt, which is retried. run is called on a
    thread of its own per job, so jobs run concurrently.
    """
    if callable(worker) and not hasattr(worker, "run"):
        if info is None:
            raise TypeError("serve(function) needs info=Info(name=..., version=...)")
        worker = _FunctionWorker(worker, info, configure)
    elif info is not None:
        raise TypeError("info= is only for serve(function); give the worker an info attribute")
    if not hasattr(worker, "info"):
        raise TypeError("the worker has no info attribute (an Info describing the plugin)")

    import grpc  # imported here so a missing grpcio is reported by name

    from ._services import WorkerService, goplugin_handlers, worker_handler

    try:
        hs.check_cookie()
    except hs.HandshakeError as e:
        hs.fail(e)
    version = hs.negotiate_version()
    log = logger()
    ppid = os.getppid()
    stopping = threading.Event()
    # The host stops plugins through the controller's Shutdown; an agent
    # stopped with Ctrl-C must not take its plugins down before that.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # SIGTERM stops the plugin as Shutdown does (and removes its socket).
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())

    rt = Runtime(worker, version, log)
    svc = WorkerService(rt, stopping)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=256, thread_name_prefix="corral-grpc"),
        handlers=[worker_handler(svc)] + goplugin_handlers(stopping, stopping.set),
    )

    sock_dir = tempfile.mkdtemp(prefix="corral-plugin-", dir=os.environ.get("PLUGIN_UNIX_SOCKET_DIR") or None)
    sock = os.path.join(sock_dir, "plugin.sock")
    rt.cleanup = lambda: shutil.rmtree(sock_dir, ignore_errors=True)
    client_pem = hs.client_cert()
    cert_der = None
    try:
        if client_pem is not None:
            cert_pem, key_pem, cert_der = hs.server_certificate()
            creds = grpc.ssl_server_credentials(
                [(key_pem, cert_pem)], root_certificates=client_pem, require_client_auth=True
            )
            server.add_secure_port("unix:" + sock, creds)
        else:
            server.add_insecure_port("unix:" + sock)
        server.start()
    except hs.HandshakeError as e:
        shutil.rmtree(sock_dir, ignore_errors=True)
        hs.fail(e)

    # The handshake line is the only thing ever written to stdout. After it
    # stdout goes to stderr (fd level, so child processes inherit that).
    sys.stdout.write(hs.handshake_line(version, "unix", sock, cert_der) + "\n")
    sys.stdout.flush()
    os.dup2(2, 1)

    def orphaned():
        log.error("host process is gone; exiting")
        rt.cancel_all()
        rt.wait_idle(CANCEL_GRACE)
        rt.cleanup()
        os._exit(EXIT_ORPHANED)

    threading.Thread(target=_watch_parent, args=(ppid, orphaned), name="corral-watchdog", daemon=True).start()
    log.debug("plugin serving", extra={"fields": {"protocol_version": version, "address": sock}})

    while not stopping.wait(1.0):
        pass
    # Shutdown: cancel running jobs, give them CANCEL_GRACE, then go.
    rt.cancel_all()
    rt.wait_idle(CANCEL_GRACE)
    server.stop(0.5).wait(2.0)
    rt.cleanup()
    sys.stderr.flush()
    os._exit(0)
