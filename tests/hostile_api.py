"""A hostile Assistants API on 127.0.0.1: answers every run and step list from a script.

`answers(path, n)` gives the JSON body of the n-th request (from 0) to a path, or a
(status, body) pair, so a test can make an object's status change between polls.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answers = Callable[[str, int], Any]


class HostileApi:
    def __init__(self, answers: Answers) -> None:
        self.counts: Counter[str] = Counter()
        lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                with lock:
                    n = api.counts[path]
                    api.counts[path] += 1
                answer = answers(path, n)
                status, answer = answer if isinstance(answer, tuple) else (200, answer)
                body = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
