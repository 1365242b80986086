"""A Label Studio outage on demand: a reverse proxy on loopback in front of the real server, which
the stack is pointed at instead of the server. While it is up it forwards every request unchanged;
while it is down it answers as the load balancer in front of a restarting server would, 502 Bad
Gateway (mode "502"), or drops the connection without an answer (mode "reset").

    with OutageProxy(server.url) as proxy:
        deploy with LabelStudioUrl=proxy.url ...
        proxy.down(); ...; proxy.up()
"""

from __future__ import annotations

import http.client
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Literal
from urllib.parse import urlsplit

Mode = Literal["502", "reset"]
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}


@dataclass
class OutageCounters:
    forwarded: int = 0
    refused: int = 0  # requests that met the outage
    lock: threading.Lock = field(default_factory=threading.Lock)


class OutageProxy:
    def __init__(self, upstream_url: str, mode: Mode = "502") -> None:
        upstream = urlsplit(upstream_url)
        self.upstream = (upstream.hostname or "127.0.0.1", upstream.port or 80)
        self.mode: Mode = mode
        self.counters = OutageCounters()
        self._down = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="ls-outage-proxy", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def down(self) -> None:
        self._down.set()

    def up(self) -> None:
        self._down.clear()

    def __enter__(self) -> OutageProxy:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet
                return

            def _outage(self) -> None:
                with proxy.counters.lock:
                    proxy.counters.refused += 1
                if proxy.mode == "reset":
                    self.close_connection = True
                    self.connection.close()
                    return
                body = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
                self.send_response(502)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if proxy._down.is_set():
                    self._outage()
                    return
                upstream = http.client.HTTPConnection(*proxy.upstream, timeout=60)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    response = upstream.getresponse()
                    payload = response.read()
                finally:
                    upstream.close()
                with proxy.counters.lock:
                    proxy.counters.forwarded += 1
                self.send_response(response.status, response.reason)
                for key, value in response.getheaders():
                    if key.lower() not in _HOP_BY_HOP and key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _forward

        return Handler
