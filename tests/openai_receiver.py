"""A webhook receiver on 127.0.0.1 written as for OpenAI's webhooks: every delivery goes
through `client.webhooks.unwrap(body, headers)` of the official `openai` package, which
verifies the signature (and its timestamp against the real time) and parses the event.

A delivery it refuses is answered 400, as such a handler would.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import openai


class OpenAIReceiver:
    def __init__(self, secret: str) -> None:
        self.client = openai.OpenAI(api_key="x", webhook_secret=secret)
        self.events: list[Any] = []  # what unwrap returned, in arrival order
        self.bodies: list[bytes] = []  # the raw bodies of those
        self.headers: list[dict[str, str]] = []
        self.rejected: list[str] = []  # unwrap's errors
        self.script: list[int] = []  # statuses to answer next (unverified), then 200
        self.gate = threading.Event()  # requests wait for it (a slow endpoint); open at start
        self.gate.set()
        self.cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.gate.wait(30)
                with receiver.cond:
                    status = receiver.script.pop(0) if receiver.script else 200
                    if status == 200:
                        try:
                            event = receiver.client.webhooks.unwrap(body, headers)
                        except (openai.InvalidWebhookSignatureError, ValueError) as exc:
                            receiver.rejected.append(f"{type(exc).__name__}: {exc}")
                            status = 400
                        else:
                            receiver.events.append(event)
                            receiver.bodies.append(body)
                            receiver.headers.append(headers)
                    receiver.cond.notify_all()
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/openai-hook"

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 20.0) -> None:
        with self.cond:
            if not self.cond.wait_for(predicate, timeout):
                raise AssertionError(f"receiver: got {len(self.events)}; {self.rejected[:3]}")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
