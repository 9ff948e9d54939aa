"""A local fake of the Telegram Bot API's ``sendMessage`` for the alert tests.

    with FakeTelegram(token="123:abc") as tg:
        monkeypatch.setenv("TELEGRAM_API_URL", tg.url)  # "http://127.0.0.1:<port>"
        ...
        assert tg.messages[0].text.startswith("P0 CRITICAL")

``POST /bot<token>/sendMessage`` with a JSON body ``{chat_id, text}`` answers like Telegram
(``{"ok": true, "result": {...}}``; a wrong token gets 401, a missing field 400) and records the message.
Faults: :meth:`fail` answers 500 to the next ``count`` requests (None: until cleared), :meth:`hang` holds
every answer for ``seconds``; :meth:`clear_faults` ends both (and releases hanging requests).
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class SentMessage:
    chat_id: str
    text: str


class FakeTelegram:
    def __init__(self, *, token: str = "123456:test-token"):
        self.token = token
        self.messages: list[SentMessage] = []
        self.requests = 0
        self._lock = threading.Lock()
        self._fail_left: int | None = 0
        self._hang_s = 0.0
        self._release = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FakeTelegram:
        fake = self

        class Handler(_Handler):
            owner = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="fake-telegram", daemon=True).start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeTelegram:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # ------------------------------------------------------------------ faults
    def fail(self, count: int | None = None) -> None:
        with self._lock:
            self._fail_left = count

    def hang(self, seconds: float) -> None:
        with self._lock:
            self._hang_s = seconds
            self._release.clear()

    def clear_faults(self) -> None:
        with self._lock:
            self._fail_left, self._hang_s = 0, 0.0
            self._release.set()

    # ------------------------------------------------------------------ called by the handler
    def _answer(self, path: str, body: bytes) -> tuple[int, dict]:
        with self._lock:
            self.requests += 1
            hang_s = self._hang_s
            failing = self._fail_left is None or self._fail_left > 0
            if failing and self._fail_left is not None:
                self._fail_left -= 1
        if hang_s:
            self._release.wait(hang_s)
        if failing:
            return 500, {"ok": False, "error_code": 500, "description": "Internal Server Error"}
        if path != f"/bot{self.token}/sendMessage":
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        try:
            payload = json.loads(body)
            message = SentMessage(chat_id=str(payload["chat_id"]), text=str(payload["text"]))
        except (ValueError, KeyError, TypeError):
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: message text is empty"}
        with self._lock:
            self.messages.append(message)
            message_id = len(self.messages)
        return 200, {"ok": True, "result": {"message_id": message_id, "date": int(time.time()),
                                            "chat": {"id": message.chat_id}, "text": message.text}}


class _Handler(BaseHTTPRequestHandler):
    owner: FakeTelegram
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        status, answer = self.owner._answer(self.path, self.rfile.read(n) if n else b"")
        payload = json.dumps(answer).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:  # the client gave up (timeout) while we hung
            self.close_connection = True
