"""SQLite's WAL checkpoints in the background, off the request path.

In WAL mode SQLite copies the write-ahead log back into the database file (a *checkpoint*) once the log
holds ``wal_autocheckpoint`` pages (1 000 by default), and it does so inside the COMMIT that crossed the
mark: that statement waits for the copy and its fsync. A hook call writes ~25 KB (its stored assessment
and page), so one call in ~90 paid 10-35 ms for a checkpoint (measured, ``bench`` notes in BENCHMARKS.md):
exactly the service's p99.

The service's own connections therefore never checkpoint (``PRAGMA wal_autocheckpoint=0``, set on connect
by :func:`service_connection_pragmas`), and :class:`WalCheckpointer` runs a ``PASSIVE`` checkpoint every
:data:`CHECKPOINT_SECONDS` on a connection of its own, in a worker thread (the standard library's
``sqlite3`` releases the GIL while SQLite works). A passive checkpoint waits for no reader or writer: the
hook's writes go on meanwhile. Every process that opens the database through :class:`service.db.Database`
runs one (the app's workers, the screening driver); several at once are harmless (one checkpoints, the
others find nothing to do or the log busy). The log stays bounded: at most what the processes write in
:data:`CHECKPOINT_SECONDS`, plus what a long reader pins. When the last connection closes, SQLite
checkpoints whatever is left, as it always did.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from pathlib import Path

import anyio.to_thread

log = logging.getLogger("hcc_cds.db")

CHECKPOINT_SECONDS = 0.5  # at ~300 hook calls a second (~7.5 MB of log), the log stays under ~4 MB


def service_connection_pragmas(dbapi_connection) -> None:
    """The service's connections leave checkpoints to :class:`WalCheckpointer` (see the module's text)."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA wal_autocheckpoint=0")
    finally:
        cursor.close()


class WalCheckpointer:
    """A background task: ``PRAGMA wal_checkpoint(PASSIVE)`` on ``path`` every ``interval`` seconds.

    Each round opens its own connection in the worker thread and closes it there: no connection is shared
    with the event loop, so nothing can close it while a checkpoint runs on it (that was a crash at shutdown).
    :meth:`stop` never cancels a round: it asks the task to end and waits for the round in flight.
    """

    def __init__(self, path: Path, interval: float = CHECKPOINT_SECONDS) -> None:
        self.path = path
        self.interval = interval
        self.checkpoints = 0  # passive checkpoints run (for tests and curiosity)
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._stopping = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="hcc-cds wal checkpointer")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            self._stopping.set()
            await task  # the round in flight, if any, finishes first (a checkpoint is milliseconds)

    async def _run(self) -> None:
        stopping = self._stopping
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self.interval)
            if stopping.is_set() or not self.path.exists():
                continue
            try:
                await anyio.to_thread.run_sync(self.checkpoint)
            except sqlite3.Error as exc:  # the next round tries again; the class only (never data)
                log.warning("WAL checkpoint failed: %s", type(exc).__name__)

    def checkpoint(self) -> tuple[int, int, int]:
        """One passive checkpoint (blocking): SQLite's (busy, log frames, frames checkpointed)."""
        # read-write, never create (mode=rw: a database not created yet is the migrations' to create);
        # no busy wait: a checkpoint that finds the log busy gives way and is retried next round
        uri = f"{self.path.resolve().as_uri()}?mode=rw"
        connection = sqlite3.connect(uri, uri=True, timeout=0, isolation_level=None)
        try:
            row = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        finally:
            connection.close()
        self.checkpoints += 1
        return (int(row[0]), int(row[1]), int(row[2]))
