"""A hostile API on 127.0.0.1: it accepts every connection, reads, and never answers."""

from __future__ import annotations

import socket
import threading
import time


class MuteServer:
    """Accepts connections on a free port of 127.0.0.1 and holds them open, silent."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self._listener.settimeout(0.2)  # so the accept loop sees `close`
        self.port = int(self._listener.getsockname()[1])
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.accepted = 0
        self._conns: list[socket.socket] = []
        self._changed = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._accept, name="mute server", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._changed:
                self._conns.append(conn)  # the request stays unread and unanswered
                self.accepted += 1
                self._changed.notify_all()

    def wait_connections(self, n: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.accepted < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{self.accepted} connections, not {n}")
                self._changed.wait(left)

    def close(self) -> None:
        self._closed = True
        self._thread.join(5)
        self._listener.close()
        with self._changed:
            for conn in self._conns:
                conn.close()
