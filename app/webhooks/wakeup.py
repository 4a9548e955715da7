"""Waking the worker the moment a transaction that adds outbox messages commits. On PostgreSQL a
trigger on `outbox_message` sends NOTIFY haven_outbox (migration 0014) and the worker LISTENs;
on SQLite, and while the database is away, the worker simply waits out its poll interval."""

import threading
import time

from sqlalchemy import Engine

CHANNEL = "haven_outbox"


class OutboxWakeup:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.listening = engine.dialect.name == "postgresql"
        self._pooled = None  # the pool's wrapper, kept out of the pool while it listens
        self._connection = None

    def listen(self) -> None:
        """Start listening now, so no message committed from here on is missed."""
        if self.listening and self._connection is None:
            pooled = self.engine.raw_connection()
            try:
                connection = pooled.driver_connection
                connection.rollback()  # idle, so that it may become autocommit
                connection.autocommit = True
                connection.execute(f"LISTEN {CHANNEL}")
            except Exception:
                pooled.invalidate()
                raise
            self._pooled, self._connection = pooled, connection

    def wait(self, stop: threading.Event, seconds: float) -> None:
        """Until a message is committed, `seconds` have passed, or `stop` is set."""
        if not self.listening or stop.is_set():
            stop.wait(seconds)
            return
        deadline = time.monotonic() + seconds
        try:
            self.listen()
            while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
                # In slices, so that a worker asked to stop does so within a second.
                for _ in self._connection.notifies(timeout=min(left, 1.0), stop_after=1):
                    return
        except Exception:  # the database went away: listen again once it is back
            self.close()
            stop.wait(seconds)

    def close(self) -> None:
        if self._pooled is not None:
            self._pooled.invalidate()  # never hand a listening autocommit connection back
            self._pooled = self._connection = None
