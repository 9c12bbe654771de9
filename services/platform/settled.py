"""Waking a request that waits for a message's outcome, instead of re-reading the database.

Whoever settles messages (the engine host: sent or failed) announces their ids on one
Redis channel, in one publish per group. Each web process keeps one listener thread on
that channel; a waiting request registers the message it waits for, and the listener wakes
it when the id comes by. The database stays the answer: a woken request reads the message
once. A notification missed (the listener reconnecting after a Redis blip) costs at most
SAFETY_SECONDS, after which the request looks at the database anyway.
"""

from __future__ import annotations

import logging
import threading

from flask import current_app
from redis import Redis
from redis.exceptions import RedisError

from extensions import queues

log = logging.getLogger(__name__)
CHANNEL = "wagate:settled"
# The longest a waiting request goes without looking at the database itself.
SAFETY_SECONDS = 1.0
RECONNECT_SECONDS = (0.1, 0.5, 1.0, 2.0, 5.0)


def settled_announce(message_ids: list[str]) -> None:
    """Tell the waiting requests, wherever they are, that these messages settled."""
    if message_ids:
        queues.connection.publish(CHANNEL, " ".join(message_ids))


def settled_on_statuses(user_id: str, events: list) -> None:
    """A subscriber (MessageStatusChanged): messages that left the queue wake their waiters,
    in one announcement for all of them."""
    settled_announce([event.message_id for event in events if event.settled])


class SettledListener:
    """One process's listener on the settled channel and the requests waiting on it."""

    def __init__(self, connection: Redis) -> None:
        self.connection = connection
        self.waiters: dict[str, list[threading.Event]] = {}
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._listen_forever, name="settled-listener", daemon=True)
        self.thread.start()

    def register(self, message_id: str) -> threading.Event:
        """An event set when `message_id` settles (register before looking, so none is missed)."""
        woken = threading.Event()
        with self.lock:
            self.waiters.setdefault(message_id, []).append(woken)
        return woken

    def unregister(self, message_id: str, woken: threading.Event) -> None:
        with self.lock:
            waiting = self.waiters.get(message_id, [])
            if woken in waiting:
                waiting.remove(woken)
            if not waiting:
                self.waiters.pop(message_id, None)

    def _wake(self, data: bytes | str) -> None:
        text = data.decode() if isinstance(data, bytes) else data
        with self.lock:
            for message_id in text.split():
                for woken in self.waiters.get(message_id, ()):
                    woken.set()

    def stop(self) -> None:
        """End the listener (within a second); requests still waiting fall back to looking."""
        self.stopping.set()

    def _listen_forever(self) -> None:
        failures = 0
        while not self.stopping.is_set():
            try:
                self._listen()
            except (RedisError, OSError, ValueError) as exc:
                self.subscribed.clear()
                delay = RECONNECT_SECONDS[min(failures, len(RECONNECT_SECONDS) - 1)]
                failures += 1
                log.warning("settled listener lost Redis (%s); again in %.1f s", exc, delay)
                self.stopping.wait(delay)

    def _listen(self) -> None:
        pubsub = self.connection.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(CHANNEL)
            while not self.stopping.is_set():
                message = pubsub.get_message(timeout=1.0)
                if not self.subscribed.is_set() and pubsub.subscribed:
                    self.subscribed.set()
                if message is not None and message["type"] == "message":
                    self._wake(message["data"])
        finally:
            pubsub.close()


_listeners_lock = threading.Lock()


def settled_listener_stop(extensions: dict) -> None:
    """Stop the app's listener, if it started one (a process winding down, a test's app)."""
    listener = extensions.pop("wagate.settled", None)
    if listener is not None:
        listener.stop()


def settled_listener() -> SettledListener:
    """This process's listener for the app's Redis, started on first use."""
    extensions = current_app.extensions
    listener = extensions.get("wagate.settled")
    if listener is None:
        with _listeners_lock:
            listener = extensions.get("wagate.settled")
            if listener is None:
                listener = extensions["wagate.settled"] = SettledListener(queues.connection)
    listener.subscribed.wait(SAFETY_SECONDS)
    return listener
