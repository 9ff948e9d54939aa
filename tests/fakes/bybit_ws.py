"""A fake Bybit V5 WebSocket server for the *unmodified* pybit ``WebSocket`` client over loopback (notes A.7).

Serves ``/v5/public/{spot|linear}`` (``kline.{interval}.{symbol}``, ``tickers.{symbol}``) and ``/v5/private``
(``order``, ``execution``, ``position``, ``wallet``) on ``ws://127.0.0.1:<port>``, speaking the documented
protocol: JSON ``ping`` answered with the channel's pong shape, ``auth`` checked with :func:`sign_ws` and an
``expires`` later than the exchange clock, subscribe acks delayed ``ack_delay_s`` (pybit's ack race, A.9 #1;
private acks carry no ``req_id``), a ticker snapshot after subscribing, RFC 6455 ping frames answered.

The private topics publish the :class:`~tests.fakes.bybit_exchange.FakeBybitExchange`'s real events (it calls
:meth:`FakeBybitWS._on_exchange` through ``exchange.listeners``): every order status change, every execution,
then the position (linear) and the wallet. Public bars are pushed by the test (:meth:`push_kline`).

Faults (thread-safe):

* :meth:`drop` -- close (1001) or abort (TCP) the connections of a channel; ``hold=True`` keeps new handshakes
  waiting until :meth:`release`, so events in between are lost for sure;
* :meth:`duplicate_next` -- the next message on a topic is sent twice (the copy optionally patched);
* :meth:`delay_next` -- the next message on a topic is held until a message on ``until`` has been sent
  (an older order update after a newer one; ``order`` Filled before its ``execution``);
* :meth:`lose_next` -- the next message on a topic is never sent;
* :meth:`silence` -- the current connections of a channel go quiet: no pong frames, no data (a zombie socket);
* :meth:`send_raw` -- any text to every connection of a channel (poison messages);
* :meth:`refuse_auth` -- every later private ``auth`` is answered "Params Error" (A.7), valid or not.
"""
from __future__ import annotations

import asyncio
import hmac
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import Opcode

from tests.fakes.bybit_exchange import FakeBybitExchange, _s, sign_ws

PRIVATE_TOPICS = frozenset({"order", "execution", "position", "wallet"})
KLINE_DIGITS = {"open": 2, "high": 2, "low": 2, "close": 2, "volume": 3, "turnover": 4}
STEP_MS = {"1": 60_000, "3": 180_000, "5": 300_000, "15": 900_000, "30": 1_800_000, "60": 3_600_000,
           "120": 7_200_000, "240": 14_400_000, "360": 21_600_000, "720": 43_200_000, "D": 86_400_000}


@dataclass(eq=False)
class WsConn:
    """One accepted connection (``channel``: "private" | "public"; ``category`` for public ones)."""

    channel: str
    category: str | None
    ws: ServerConnection
    out: asyncio.Queue
    conn_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    topics: set = field(default_factory=set)
    authed: bool = False
    silent: bool = False
    closed: bool = False

    @property
    def live(self) -> bool:
        return not self.closed and not self.silent


@dataclass
class _Rule:
    kind: str  # duplicate | delay | lose
    topic: str
    until: str | None = None
    patch: dict | None = None


def _now_ms() -> int:
    return int(time.time() * 1000)


def _patched(text: str, patch: dict) -> str:
    msg = json.loads(text)
    for item in msg["data"]:
        item.update(patch)
    return json.dumps(msg)


class FakeBybitWS:
    """The WebSocket side of the fake exchange (see the module docstring)."""

    def __init__(self, exchange: FakeBybitExchange, *, ack_delay_s: float = 0.05):
        self.exchange = exchange
        self.ack_delay_s = ack_delay_s
        self.auth_refused = False
        self.connections: list[WsConn] = []
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []
        self._held: list[tuple[str, str, str]] = []  # (until, topic, text)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "FakeBybitWS":
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-bybit-ws", daemon=True)
        self._thread.start()
        self._run(self._serve())
        self.exchange.listeners.append(self._on_exchange)
        return self

    async def _serve(self) -> None:
        self._gates = {"private": asyncio.Event(), "public": asyncio.Event()}
        for gate in self._gates.values():
            gate.set()
        self._server = await serve(self._handle, "127.0.0.1", 0, process_request=self._admit,
                                   ping_interval=None, open_timeout=None, compression=None, close_timeout=1)

    def stop(self) -> None:
        if self._loop is None:
            return
        self.exchange.listeners.remove(self._on_exchange)
        self._run(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()
        self._loop = None

    async def _shutdown(self) -> None:
        for gate in self._gates.values():
            gate.set()
        self._server.close()
        await self._server.wait_closed()

    def __enter__(self) -> "FakeBybitWS":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(5)

    @property
    def port(self) -> int:
        return self._server.sockets[0].getsockname()[1]

    def url(self, channel: str = "private") -> str:
        """``private`` or a public category (``linear``, ``spot``)."""
        path = "private" if channel == "private" else f"public/{channel}"
        return f"ws://127.0.0.1:{self.port}/v5/{path}"

    # ------------------------------------------------------------------ observation
    def live(self, channel: str) -> list[WsConn]:
        with self._lock:
            return [c for c in self.connections if c.channel == channel and c.live]

    def connection_count(self, channel: str) -> int:
        with self._lock:
            return sum(1 for c in self.connections if c.channel == channel)

    def subscribed(self, channel: str, topic: str) -> bool:
        """A live connection of ``channel`` is subscribed to ``topic`` (and authenticated if private)."""
        return any(topic in c.topics and (c.authed or channel != "private") for c in self.live(channel))

    # ------------------------------------------------------------------ connections
    async def _admit(self, connection, request):
        if request.path == "/v5/private":
            await self._gates["private"].wait()
        elif request.path.startswith("/v5/public/"):
            await self._gates["public"].wait()
        else:
            return connection.respond(404, "not found\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        path = ws.request.path
        private = path == "/v5/private"
        conn = WsConn("private" if private else "public", None if private else path.rsplit("/", 1)[1], ws,
                      asyncio.Queue())
        with self._lock:
            self.connections.append(conn)
        writer = asyncio.create_task(self._write(conn))
        try:
            async for text in ws:
                if not conn.silent:
                    self._on_client(conn, text)
        except ConnectionClosed:
            pass
        finally:
            conn.closed = True
            writer.cancel()

    async def _write(self, conn: WsConn) -> None:
        try:
            while True:
                await conn.ws.send(await conn.out.get())
        except ConnectionClosed:
            pass

    def _send(self, conn: WsConn, msg: dict | str, delay: float = 0.0) -> None:
        """Queue one message to ``conn`` (from the loop thread)."""
        text = msg if isinstance(msg, str) else json.dumps(msg)
        if delay:
            self._loop.call_later(delay, conn.out.put_nowait, text)
        else:
            conn.out.put_nowait(text)

    def _on_client(self, conn: WsConn, text: str) -> None:
        try:
            msg = json.loads(text)
            op = msg.get("op")
        except (ValueError, AttributeError):
            return
        req_id = msg.get("req_id", "")
        if op == "ping":
            if conn.channel == "private":
                self._send(conn, {"req_id": req_id, "op": "pong", "args": [str(_now_ms())],
                                  "conn_id": conn.conn_id})
            else:
                self._send(conn, {"success": True, "ret_msg": "pong", "conn_id": conn.conn_id, "req_id": req_id,
                                  "op": "ping"})
        elif op == "auth":
            conn.authed = conn.channel == "private" and self._auth_ok(msg.get("args"))
            self._send(conn, {"success": conn.authed, "ret_msg": "" if conn.authed else "Params Error",
                              "op": "auth", "conn_id": conn.conn_id})
        elif op in ("subscribe", "unsubscribe"):
            self._subscribe(conn, op, req_id, [str(a) for a in msg.get("args") or []])

    def _auth_ok(self, args) -> bool:
        ex = self.exchange
        if self.auth_refused:
            return False
        try:
            key, expires, signature = args
            fresh = int(expires) > ex.server_time_ms()
        except (TypeError, ValueError):
            return False
        return (fresh and hmac.compare_digest(str(key), ex.api_key)
                and hmac.compare_digest(str(signature), sign_ws(ex.api_secret, expires)))

    def _subscribe(self, conn: WsConn, op: str, req_id: str, topics: list[str]) -> None:
        if conn.channel == "private":
            ok = conn.authed and all(t in PRIVATE_TOPICS for t in topics)
            msg = "" if ok else ("Request not authorized" if not conn.authed else f"handler not found: {topics}")
        else:
            ok = all(t.startswith(("kline.", "tickers.")) for t in topics)
            msg = "" if ok else f"error:handler not found,topics:{topics}"
        if ok:
            with self._lock:
                (conn.topics.update if op == "subscribe" else conn.topics.difference_update)(topics)
        ack = {"success": ok, "ret_msg": msg, "conn_id": conn.conn_id, "op": op}
        if conn.channel == "public":
            ack["req_id"] = req_id  # private acks carry no req_id (A.7)
        self._send(conn, ack, self.ack_delay_s)
        if ok and op == "subscribe":
            for t in topics:
                if t.startswith("tickers."):
                    self._send(conn, self._ticker_text(conn.category, t.split(".", 1)[1]), self.ack_delay_s)

    # ------------------------------------------------------------------ publishing
    def _publish(self, topic: str, text: str, *, channel: str, category: str | None = None) -> None:
        """Send one message to every live subscriber, applying the pending faults (any thread)."""
        with self._lock:
            rule = next((r for r in self._rules if r.topic == topic), None)
            if rule is not None:
                self._rules.remove(rule)
            released = [(t, x) for u, t, x in self._held if u == topic]
            self._held = [h for h in self._held if h[0] != topic]
            out = [(topic, text)]
            if rule is not None and rule.kind == "lose":
                out = []
            elif rule is not None and rule.kind == "delay":
                self._held.append((rule.until, topic, text))
                out = []
            elif rule is not None and rule.kind == "duplicate":
                out.append((topic, _patched(text, rule.patch) if rule.patch else text))
            sends = [(c, x) for t, x in out + released for c in self.connections
                     if c.channel == channel and c.live and t in c.topics
                     and (c.authed if channel == "private" else c.category == category)]
        for conn, x in sends:
            self._loop.call_soon_threadsafe(self._send, conn, x)

    def _on_exchange(self, topic: str, record: dict) -> None:
        """Listener called by the exchange, under its lock, on every order change and execution."""
        ex = self.exchange
        if topic == "order":
            self._private("order", {**ex._order_view(record), "category": record["category"]})
            return
        item = {k: (str(v) if k == "execTime" else _s(v) if isinstance(v, Decimal) else v)
                for k, v in record.items()}
        self._private("execution", item)
        if record["category"] == "linear":
            self._private("position", {**ex._position_view(record["symbol"]), "category": "linear"})
        self._private("wallet", ex._r_wallet({"accountType": "UNIFIED"}, b"", {})[2]["list"][0])

    def _private(self, topic: str, item: dict) -> None:
        msg = {"id": str(uuid.uuid4()), "topic": topic, "creationTime": _now_ms(), "data": [item]}
        self._publish(topic, json.dumps(msg), channel="private")

    def _ticker_text(self, category: str, symbol: str) -> str:
        row = self.exchange._r_tickers({"category": category, "symbol": symbol}, b"", {})[2]["list"][0]
        return json.dumps({"topic": f"tickers.{symbol}", "type": "snapshot", "data": row, "cs": _now_ms(),
                           "ts": _now_ms()})

    def push_kline(self, symbol: str, start, row, *, interval: str = "1", category: str = "linear",
                   confirm: bool = True, **fields) -> None:
        """Publish one bar (``start``: a timestamp; ``row``: open/high/low/close/volume/turnover) on
        ``kline.{interval}.{symbol}``; ``fields`` override the formatted values (e.g. ``close=""``)."""
        start_ms = int(start.value // 1_000_000) if hasattr(start, "value") else int(start)
        bar = {"start": start_ms, "end": start_ms + STEP_MS[interval] - 1, "interval": interval}
        bar.update({k: f"{float(row[k]):.{nd}f}" for k, nd in KLINE_DIGITS.items()})
        bar.update(confirm=confirm, timestamp=_now_ms(), **fields)
        topic = f"kline.{interval}.{symbol}"
        msg = {"topic": topic, "type": "snapshot", "ts": _now_ms(), "data": [bar]}
        self._publish(topic, json.dumps(msg), channel="public", category=category)

    def push_ticker(self, symbol: str, category: str = "linear") -> None:
        self._publish(f"tickers.{symbol}", self._ticker_text(category, symbol), channel="public",
                      category=category)

    # ------------------------------------------------------------------ faults
    def drop(self, channel: str = "private", *, mode: str = "close", hold: bool = False) -> int:
        """Close (1001) or abort the live connections of ``channel``; returns how many were dropped."""
        assert mode in ("close", "abort")

        async def go() -> int:
            if hold:
                self._gates[channel].clear()
            with self._lock:
                victims = [c for c in self.connections if c.channel == channel and not c.closed]
                for c in victims:
                    c.closed = True
            for c in victims:
                if mode == "abort":
                    c.ws.transport.abort()
                else:
                    asyncio.ensure_future(c.ws.close(1001, "going away"))
            return len(victims)

        return self._run(go())

    def release(self, channel: str = "private") -> None:
        """Let held handshakes (``drop(hold=True)``) complete."""
        self._loop.call_soon_threadsafe(self._gates[channel].set)

    def duplicate_next(self, topic: str, patch: dict | None = None) -> None:
        with self._lock:
            self._rules.append(_Rule("duplicate", topic, patch=patch))

    def delay_next(self, topic: str, *, until: str) -> None:
        with self._lock:
            self._rules.append(_Rule("delay", topic, until=until))

    def lose_next(self, topic: str) -> None:
        with self._lock:
            self._rules.append(_Rule("lose", topic))

    def silence(self, channel: str = "public") -> int:
        """The live connections of ``channel`` stop answering (no pong frames, no data); returns how many."""

        async def go() -> int:
            victims = self.live(channel)
            for c in victims:
                c.silent = True
                send = c.ws.protocol.send_frame
                c.ws.protocol.send_frame = lambda frame, send=send: None if frame.opcode is Opcode.PONG \
                    else send(frame)
            return len(victims)

        return self._run(go())

    def refuse_auth(self, refuse: bool = True) -> None:
        self.auth_refused = refuse

    def send_raw(self, channel: str, text: str) -> None:
        for c in self.live(channel):
            self._loop.call_soon_threadsafe(self._send, c, text)
