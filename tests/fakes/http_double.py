"""What the SMS provider doubles share: a threaded HTTP server on 127.0.0.1 with programmable
latency (answer after processing, so a client that times out has still been served, as with the
real providers) and the ability to go down (connection refused) and come back on the same port."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class HttpDouble:
    name = "double"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host, self.port = host, port
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = None
        self._thread: threading.Thread | None = None
        self._latency = 0.0
        self._stalls: list[float] = []
        self._requests: list[tuple[str, str]] = []

    def start(self):
        self._stopping.clear()
        self._server = make_server(self.host, self.port, self._wsgi, threaded=True, request_handler=_QuietHandler)
        self.port = self._server.port
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"{self.name}-double", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._server = None

    # An outage: nothing listens on the port (connection refused) until up() starts it again.
    down = stop

    def up(self):
        return self.start()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The full endpoint URL (scheme, host, port) for TENCENT_SMS_ENDPOINT / ALIYUN_SMS_ENDPOINT."""
        return f"http://{self.host}:{self.port}"

    def set_latency(self, seconds: float) -> None:
        with self._lock:
            self._latency = seconds

    def stall_next(self, n: int = 1, seconds: float = 2.0) -> None:
        """The next `n` requests are never processed: answered 503 after `seconds`, so a client
        that times out first cannot tell whether its message was accepted (it was not)."""
        with self._lock:
            self._stalls += [seconds] * n

    @property
    def requests(self) -> list[tuple[str, str]]:
        """(action, outcome) of every API request, oldest first."""
        with self._lock:
            return list(self._requests)

    def _log(self, action: str, outcome: str) -> None:
        with self._lock:
            self._requests.append((action, outcome))

    def _wsgi(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        request = Request(environ)
        with self._lock:
            stall = self._stalls.pop(0) if self._stalls else None
        if stall is not None:
            self._stopping.wait(stall)
            return Response("upstream timeout", status=503)(environ, start_response)
        response = self.handle(request)
        with self._lock:
            latency = self._latency
        if latency:
            self._stopping.wait(latency)
        return response(environ, start_response)

    def handle(self, request: Request) -> Response:  # pragma: no cover - subclasses answer
        raise NotImplementedError
