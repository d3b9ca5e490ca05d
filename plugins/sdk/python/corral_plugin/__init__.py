"""corral_plugin: write Corral worker plugins in Python.

A plugin is an executable script that describes itself, runs jobs and
calls serve():

    import corral_plugin as corral

    class Upper:
        info = corral.Info(name="upper", version="1.0.0", description="upper-cases the payload")

        def run(self, job, reporter):
            reporter.log(f"upper-casing {len(job.payload)} bytes")
            reporter.progress(50, "working")
            return job.payload.upper()

    if __name__ == "__main__":
        corral.serve(Upper())

The SDK speaks the protocol of plugins/proto/README.md: the go-plugin
handshake with Corral's magic cookie, automatic mTLS (needs the
`cryptography` module), worker protocol versions 1 and 2, go-plugin's
health, controller (Shutdown) and stdio services, cancellation, timeouts,
progress, logs and non-retryable errors. It needs grpcio and protobuf
(Debian: python3-grpcio python3-protobuf python3-cryptography).
"""

import sys as _sys

try:
    import google.protobuf  # noqa: F401
    import grpc  # noqa: F401
except ImportError as _e:
    # The agent shows a plugin's first stderr line when it fails to start;
    # make it this one rather than "Traceback (most recent call last):".
    print(
        f"corral_plugin: {_e}: install python3-grpcio and python3-protobuf (Debian) "
        "or `pip install grpcio protobuf cryptography`",
        file=_sys.stderr,
        flush=True,
    )
    raise

from ._calls import CANCEL_GRACE, EXIT_HUNG, EXIT_ORPHANED  # noqa: E402
from ._handshake import API_VERSION, MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE, MIN_API_VERSION
from ._serve import logger, serve
from ._types import Cancelled, Info, Job, NonRetryable, Reporter

__all__ = [
    "API_VERSION",
    "CANCEL_GRACE",
    "Cancelled",
    "EXIT_HUNG",
    "EXIT_ORPHANED",
    "Info",
    "Job",
    "MAGIC_COOKIE_KEY",
    "MAGIC_COOKIE_VALUE",
    "MIN_API_VERSION",
    "NonRetryable",
    "Reporter",
    "logger",
    "serve",
]

__version__ = "0.1.0"
