"""A webhook receiver on 127.0.0.1 that verifies every delivery with `standardwebhooks`.

The reference implementation checks our signatures, not our own code. The receiver can
answer with a scripted status, and can go down (port closed) and come back on the same port.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


class Receiver:
    def __init__(self, secrets: list[str]) -> None:
        self.verifiers = [Webhook(s) for s in secrets]
        self.received: list[dict[str, Any]] = []  # verified deliveries, in arrival order
        self.attempts: list[str] = []  # webhook-id of every request, verified or not
        self.rejected: list[str] = []
        self.script: list[int] = []  # statuses to answer next, then 204
        self.delay = 0.0  # answer this late (a slow endpoint)
        self.in_flight = 0  # requests being answered now, and the most at once
        self.max_in_flight = 0
        self.posting: dict[str, int] = {}  # webhook-id → its requests being answered now
        self.overlaps: list[str] = []  # ids posted again while a post of them was in flight
        self.cond = threading.Condition()
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                msg_id = self.headers.get("webhook-id", "")
                with receiver.cond:
                    receiver.in_flight += 1
                    receiver.max_in_flight = max(receiver.max_in_flight, receiver.in_flight)
                    if receiver.posting.get(msg_id):
                        receiver.overlaps.append(msg_id)
                    receiver.posting[msg_id] = receiver.posting.get(msg_id, 0) + 1
                    receiver.cond.notify_all()
                if receiver.delay:
                    threading.Event().wait(receiver.delay)  # a slow endpoint, not a sync
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver.cond:
                    receiver.attempts.append(headers.get("webhook-id", ""))
                    status = receiver.script.pop(0) if receiver.script else 204
                    if status < 300:
                        try:
                            for verifier in receiver.verifiers:
                                verifier.verify(body, headers)
                        except WebhookVerificationError as exc:
                            receiver.rejected.append(str(exc))
                            status = 401
                        else:
                            receiver.received.append(
                                {"headers": headers, "event": json.loads(body)}
                            )
                    receiver.in_flight -= 1
                    receiver.posting[msg_id] -= 1
                    receiver.cond.notify_all()
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # the default 5 drops concurrent connects (SYN retries)

        self._server = Server(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def is_up(self) -> bool:
        return self._server is not None

    def down(self) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
        self._server = None

    def events(self) -> list[dict[str, Any]]:
        with self.cond:
            return [r["event"] for r in self.received]

    def wait_for(self, predicate, timeout: float = 20.0, what: str = "") -> None:
        with self.cond:
            if not self.cond.wait_for(predicate, timeout):
                raise AssertionError(
                    f"receiver: timed out waiting for {what}; got {len(self.received)}, "
                    f"attempts {len(self.attempts)}, rejected {self.rejected[:3]}"
                )

    def close(self) -> None:
        if self._server is not None:
            self.down()
