"""A forwarding HTTP proxy on 127.0.0.1 for tests: one request per connection, counted."""

from __future__ import annotations

import socket
import socketserver
import threading
from urllib.parse import urlsplit


class Proxy:
    """Takes `GET http://host:port/path HTTP/1.1`, sends `GET /path` to host:port, pipes back."""

    def __init__(self) -> None:
        self.requests: list[str] = []  # the absolute URLs it was asked for
        owner = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = self.request.recv(65536)
                    if not chunk:
                        return
                    head += chunk
                line, _, rest = head.partition(b"\r\n")
                method, target, version = line.decode().split(" ")
                owner.requests.append(target)
                url = urlsplit(target)
                path = url.path + (f"?{url.query}" if url.query else "")
                headers = [
                    h for h in rest.split(b"\r\n") if not h.lower().startswith(b"connection")
                ]
                request = f"{method} {path} {version}\r\n".encode() + b"\r\n".join(headers)
                request = request.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)
                with socket.create_connection((url.hostname, url.port or 80)) as upstream:
                    upstream.sendall(request)
                    while data := upstream.recv(65536):
                        self.request.sendall(data)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
