"""A local HTTP server for the URL import's tests: each path answers as a test set it up (an
image, a redirect, a lying Content-Length, bytes dripped slowly, HTML), and every request it
got is kept (path and Host header)."""

from __future__ import annotations

import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_length: int | None = None  # None: the body's length; -1: no Content-Length (close ends it)
    drip_seconds: float = 0.0  # a byte every this many seconds, after the head
    chunked: bool = False  # Transfer-Encoding: chunked, 64 KiB a chunk (no Content-Length)


class ImageServer:
    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, str]] = []
        self.stopping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                server.requests.append((self.path, self.headers.get("Host", "")))
                route = server.routes.get(self.path.split("?")[0], Route(404, b"not here"))
                self.send_response(route.status)
                for name, value in route.headers.items():
                    self.send_header(name, value)
                length = len(route.body) if route.content_length is None else route.content_length
                if route.chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                elif length >= 0:
                    self.send_header("Content-Length", str(length))
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    if route.chunked:
                        for start in range(0, len(route.body), 65536):
                            piece = route.body[start:start + 65536]
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                        self.wfile.write(b"0\r\n\r\n")
                    elif route.drip_seconds:
                        for index in range(len(route.body)):
                            self.wfile.write(route.body[index:index + 1])
                            self.wfile.flush()
                            if server.stopping.wait(route.drip_seconds):
                                return
                    else:
                        self.wfile.write(route.body)
                except OSError:  # the client went away (it stopped reading): what a test wants
                    pass
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.scheme = "http"
        if tls is not None:  # HTTPS: the handshake happens as a connection is accepted
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), name="image-server",
                                       daemon=True)
        self.thread.start()

    def serve(self, path: str, **route) -> str:
        """Answer ``path`` as ``route`` says; its URL on 127.0.0.1."""
        self.routes[path] = Route(**route)
        return self.url(path)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]

    def close(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
