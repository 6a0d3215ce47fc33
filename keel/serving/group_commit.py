"""Group commit for the prediction log: the rows of concurrent requests are committed together, in
one transaction (one fsync), and each request is acknowledged only once its group is durable.

One writer thread per process owns the commits. A request queues its rows and waits on a future;
the writer takes everything queued, commits it, and resolves the futures. While a group is being
synced the next one gathers, so groups grow with the load and a lone request waits for nothing but
its own commit (no timer: PostgreSQL's `commit_delay = 0`). A request the event loop serves alone
(no other request in flight) commits on the loop itself: the hand-over to the writer thread and back
would cost it more than its commit (benchmarks/RESULTS.md); a request arriving meanwhile waits at most
that one commit. A store that refuses a group fails every request in it (each caller answers 503),
never some of them silently.

`on_loop=True` (a SQLite log written by this process alone) commits the groups on the event loop
itself: the rows of every request that reached its commit during one turn of the loop are committed at
the start of the next, in one transaction, and their futures resolved there. No writer thread then
competes with the loop for the interpreter lock, and while the fsync blocks the loop the requests that
arrive meanwhile gather for the next group (benchmarks/RESULTS.md: about a fifth more requests a second
at c=32). A store another process writes too (PostgreSQL, several workers) keeps the writer thread: the
loop must not wait for another process's lock or a network round trip.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
from concurrent.futures import Future
from typing import Callable, List, Optional, Sequence, Tuple, Union

from keel.serving.prediction_log import encoded

logger = logging.getLogger(__name__)

# A group holds at most this many rows (one 10,000-row batch request is still one group).
MAX_GROUP_ROWS = 10_000
_STOP = object()
# What a queued request waits on: a thread's Future (`submit`) or an event loop's (`commit`).
Waiter = Union[Future, "asyncio.Future"]


class LogUnavailable(RuntimeError):
    """The prediction log refused a commit (the database is down, the disk is full, ...)."""


class GroupCommitter:
    """Commits queued requests' rows in groups through `log.append_requests` (see PredictionLog)."""

    def __init__(self, log, max_group_rows: int = MAX_GROUP_ROWS,
                 on_commit: Optional[Callable[[int], None]] = None, on_loop: bool = False):
        self.log = log
        self.max_group_rows = max_group_rows
        self.on_commit = on_commit  # told each group's request count (the service's metrics)
        self.on_loop = on_loop  # `commit` groups on the caller's event loop instead of the writer thread
        self._loop_group: List[Tuple[List[dict], "asyncio.Future"]] = []
        self._queue: "queue.SimpleQueue" = queue.SimpleQueue()
        self._writer: Optional[threading.Thread] = None
        self._pid: Optional[int] = None
        self._start_lock = threading.Lock()
        self._committing = threading.Lock()  # one commit at a time: the writer's or a lone request's
        self.groups = 0  # commits made (tests and benchmarks read the mean group size from it)
        self.requests = 0

    # --- callers ------------------------------------------------------------------------------------
    def submit(self, rows: List[dict]) -> Future:
        """Queue one request's rows; the future resolves to their count once committed, or raises
        DuplicateRequest (its request id is in the log already) or LogUnavailable."""
        future: Future = Future()
        if not rows:
            future.set_result(0)
            return future
        self._ensure_writer()
        # Encoded here, on the caller's thread: the writer holds the interpreter lock as little as it can.
        self._queue.put((encoded(rows), future))
        return future

    def append(self, rows: List[dict]) -> int:
        """Commit one request's rows, blocking until its group is durable."""
        return self.submit(rows).result()

    async def commit(self, rows: List[dict], alone: bool = False) -> int:
        """`append` for an event loop: the loop serves other requests while the group commits. The
        caller waits on an asyncio future the writer settles with one wake-up of the loop per group
        (no thread-safe Future and its lock per request, no callback chain between the two). A caller
        `alone` on its loop commits there, unless the writer is committing (then it joins the queue)."""
        if not rows:
            return 0
        if alone and self._committing.acquire(blocking=False):
            try:
                [outcome] = self._outcomes([encoded(rows)])
            finally:
                self._committing.release()
            if outcome is not None:
                raise outcome
            return len(rows)
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        if self.on_loop:
            self._loop_group.append((encoded(rows), waiter))
            if len(self._loop_group) == 1:  # the first of this turn's group: committed next turn
                loop.call_soon(self._commit_loop_group)
        else:
            self._ensure_writer()
            self._queue.put((encoded(rows), waiter))
        return await waiter

    def _commit_loop_group(self) -> None:
        """On the event loop: commit the requests queued during the last turn (at most `max_group_rows`
        rows a transaction; a larger request alone) and settle their futures."""
        queued, self._loop_group = self._loop_group, []
        group: List[Tuple[List[dict], "asyncio.Future"]] = []
        rows = 0
        for request in queued:
            if group and rows + len(request[0]) > self.max_group_rows:
                self._commit_on_loop(group)
                group, rows = [], 0
            group.append(request)
            rows += len(request[0])
        self._commit_on_loop(group)

    def _commit_on_loop(self, group: List[Tuple[List[dict], "asyncio.Future"]]) -> None:
        with self._committing:
            outcomes = self._outcomes([rows for rows, _ in group])
        _settle([(waiter, len(rows), outcome) for (rows, waiter), outcome in zip(group, outcomes)])

    def close(self) -> None:
        """Commit what is queued and stop the writer."""
        writer = self._writer
        if writer is not None and writer.is_alive() and self._pid == os.getpid():
            self._queue.put((None, _STOP))
            writer.join()
        self._writer = None

    # --- the writer ---------------------------------------------------------------------------------
    def _ensure_writer(self) -> None:
        if self._writer is not None and self._pid == os.getpid():
            return
        with self._start_lock:
            if self._writer is None or self._pid != os.getpid():  # a forked child needs its own
                self._pid = os.getpid()
                self._writer = threading.Thread(target=self._run, name="keel-prediction-log", daemon=True)
                self._writer.start()

    def _take_group(self) -> Tuple[List[Tuple[List[dict], Waiter]], bool]:
        """Block for one request, then take whatever else is queued (up to the row limit)."""
        first = self._queue.get()
        if first[1] is _STOP:
            return [], True
        group, rows = [first], len(first[0])
        while rows < self.max_group_rows:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item[1] is _STOP:
                self._commit(group)
                return [], True
            group.append(item)
            rows += len(item[0])
        return group, False

    def _run(self) -> None:
        while True:
            group, stop = self._take_group()
            if group:
                self._commit(group)
            if stop:
                return

    def _outcomes(self, requests: List[List[dict]]) -> List[Optional[Exception]]:
        """Commit the requests' rows as one group (the caller holds `_committing`); per request None
        (durable), DuplicateRequest, or LogUnavailable when the store refused the whole group."""
        try:
            outcomes = self.log.append_requests(requests)
        except Exception as error:  # the whole group failed: every caller hears it
            logger.error("prediction log: a group of %d requests could not be committed: %s", len(requests), error)
            failure = LogUnavailable(f"the prediction log could not commit: {type(error).__name__}: {error}")
            outcomes = [failure] * len(requests)
        self.groups += 1
        self.requests += len(requests)
        if self.on_commit is not None:
            self.on_commit(len(requests))
        return outcomes

    def _commit(self, group: Sequence[Tuple[List[dict], Waiter]]) -> None:
        with self._committing:
            outcomes = self._outcomes([rows for rows, _ in group])
        on_loops = {}
        for (rows, future), outcome in zip(group, outcomes):
            if isinstance(future, asyncio.Future):
                on_loops.setdefault(future.get_loop(), []).append((future, len(rows), outcome))
            elif outcome is None:
                future.set_result(len(rows))
            else:
                future.set_exception(outcome)
        for loop, waiters in on_loops.items():
            try:
                loop.call_soon_threadsafe(_settle, waiters)
            except RuntimeError:  # that loop is closed: no one is waiting there any more
                pass


def _settle(waiters) -> None:
    """On the waiters' event loop: each request's outcome (a cancelled waiter's caller is gone)."""
    for waiter, count, outcome in waiters:
        if waiter.cancelled():
            continue
        if outcome is None:
            waiter.set_result(count)
        else:
            waiter.set_exception(outcome)
