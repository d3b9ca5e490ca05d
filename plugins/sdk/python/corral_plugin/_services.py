"""The gRPC services a Corral plugin serves: the Worker service
(corral.plugins.v1.Worker) and go-plugin's health, controller and stdio
services. The go-plugin ones are tiny and encoded by hand, so no generated
code is needed for them."""

import json
import queue
import threading
from typing import Any, Callable, Iterator

import grpc

from . import worker_pb2 as pb
from ._calls import Runtime

_WORKER = "corral.plugins.v1.Worker"

# grpc.health.v1.HealthCheckResponse{status: SERVING}: field 1, varint 1.
_HEALTH_SERVING = b"\x08\x01"


def _info_of(worker: Any):
    info = getattr(worker, "info")
    return info() if callable(info) else info


class WorkerService:
    """Implements corral.plugins.v1.Worker over the author's worker."""

    def __init__(self, rt: Runtime, stopping: threading.Event):
        self._rt = rt
        self._stopping = stopping

    def info(self, request: "pb.Empty", context) -> "pb.InfoResponse":
        i = _info_of(self._rt.worker)
        return pb.InfoResponse(
            name=i.name, version=i.version, description=i.description, api_version=self._rt.api_version
        )

    def configure(self, request: "pb.ConfigureRequest", context) -> "pb.Empty":
        configure = getattr(self._rt.worker, "configure", None)
        if configure is not None:
            raw = bytes(request.config_json).strip()
            try:
                config = json.loads(raw) if raw else {}
                configure(config)
            except Exception as e:  # the plugin is listed as failed with this message
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e) or type(e).__name__)
        return pb.Empty()

    def run(self, request: "pb.RunRequest", context) -> Iterator["pb.RunEvent"]:
        """Protocol version 1: one job per stream; the final event ends it."""
        out: "queue.Queue" = queue.Queue()

        def put(event):
            out.put(event)
            if event.WhichOneof("event") in ("result", "error"):
                out.put(None)

        call = self._rt.start(request, pb.RunEvent, put)
        # The host cancels a version 1 job by cancelling its stream.
        context.add_callback(call.cancel)
        context.add_callback(lambda: out.put(None))
        while True:
            event = out.get()
            if event is None:
                return
            yield event

    def session(self, requests: Iterator["pb.SessionMessage"], context) -> Iterator["pb.SessionEvent"]:
        """Protocol version 2: every job of the process over one stream."""
        if self._rt.api_version < 2:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, f"worker API version {self._rt.api_version} has no Session")
        out: "queue.Queue" = queue.Queue()
        calls = {}
        lock = threading.Lock()
        ended = threading.Event()

        def reader():
            try:
                for msg in requests:
                    kind = msg.WhichOneof("msg")
                    if kind == "start":
                        call_id = msg.call_id

                        def put(event, _id=call_id):
                            if ended.is_set():
                                return
                            out.put(event)
                            if event.WhichOneof("event") in ("result", "error"):
                                with lock:
                                    calls.pop(_id, None)

                        def make(_id=call_id, **fields):
                            return pb.SessionEvent(call_id=_id, **fields)

                        with lock:
                            calls[call_id] = None
                        call = self._rt.start(msg.start, make, put)
                        with lock:
                            if call_id in calls:
                                calls[call_id] = call
                    elif kind == "cancel":
                        with lock:
                            call = calls.get(msg.call_id)
                        if call is not None:
                            call.cancel()
            except Exception:  # the stream broke; same as its end
                pass
            finish()

        def finish():
            # The session is over: drop later events, cancel every job.
            ended.set()
            with lock:
                running = [c for c in calls.values() if c is not None]
                calls.clear()
            for call in running:
                call.cancel()
            out.put(None)

        context.add_callback(finish)
        threading.Thread(target=reader, name="corral-session-reader", daemon=True).start()
        while True:
            event = out.get()
            if event is None:
                return
            yield event


def worker_handler(svc: WorkerService) -> grpc.GenericRpcHandler:
    """Returns the generic handler that routes Worker RPCs to svc."""
    return grpc.method_handlers_generic_handler(
        _WORKER,
        {
            "Info": grpc.unary_unary_rpc_method_handler(
                svc.info, request_deserializer=pb.Empty.FromString, response_serializer=pb.InfoResponse.SerializeToString
            ),
            "Configure": grpc.unary_unary_rpc_method_handler(
                svc.configure,
                request_deserializer=pb.ConfigureRequest.FromString,
                response_serializer=pb.Empty.SerializeToString,
            ),
            "Run": grpc.unary_stream_rpc_method_handler(
                svc.run, request_deserializer=pb.RunRequest.FromString, response_serializer=pb.RunEvent.SerializeToString
            ),
            "Session": grpc.stream_stream_rpc_method_handler(
                svc.session,
                request_deserializer=pb.SessionMessage.FromString,
                response_serializer=pb.SessionEvent.SerializeToString,
            ),
        },
    )


def goplugin_handlers(stopping: threading.Event, shutdown: Callable[[], None]) -> list:
    """Returns handlers for go-plugin's own services: grpc.health.v1.Health
    (Check answers SERVING), plugin.GRPCController (Shutdown makes the
    plugin exit) and plugin.GRPCStdio (StreamStdio sends nothing: the SDK
    does not capture stdout/stderr, which go to the host's stderr pipe)."""

    def check(request: bytes, context) -> bytes:
        return _HEALTH_SERVING

    def shutdown_rpc(request: bytes, context) -> bytes:
        shutdown()
        return b""

    def stream_stdio(request: bytes, context) -> Iterator[bytes]:
        done = threading.Event()
        context.add_callback(done.set)
        while not done.is_set() and not stopping.wait(0.05):
            pass
        return iter(())

    raw = dict(request_deserializer=None, response_serializer=None)
    return [
        grpc.method_handlers_generic_handler(
            "grpc.health.v1.Health", {"Check": grpc.unary_unary_rpc_method_handler(check, **raw)}
        ),
        grpc.method_handlers_generic_handler(
            "plugin.GRPCController", {"Shutdown": grpc.unary_unary_rpc_method_handler(shutdown_rpc, **raw)}
        ),
        grpc.method_handlers_generic_handler(
            "plugin.GRPCStdio", {"StreamStdio": grpc.unary_stream_rpc_method_handler(stream_stdio, **raw)}
        ),
    ]
