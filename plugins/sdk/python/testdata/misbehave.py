#!/usr/bin/env python3
"""A Python plugin for the host's tests: payload "hang" ignores cancellation,
"stderr" prints a plain line to stderr, "print" calls print(); any
config other than {} is rejected."""
import sys
import time

import corral_plugin as corral


class Misbehave:
    info = corral.Info(name="misbehave", version="0.0.1")

    def configure(self, config):
        if config:
            raise ValueError(f"unknown keys {sorted(config)}")

    def run(self, job, reporter):
        if job.payload == b"hang":
            reporter.log("hanging")
            time.sleep(3600)  # ignores job.cancelled on purpose
        if job.payload == b"stderr":
            print("plain line from python", file=sys.stderr, flush=True)
        if job.payload == b"print":
            print("print() after the handshake", flush=True)
        return b"ok"


if __name__ == "__main__":
    corral.serve(Misbehave())
