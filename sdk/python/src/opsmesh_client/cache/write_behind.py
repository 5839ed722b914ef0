"""Write-behind: ``set`` in a write-behind namespace returns once the value is in L1 and in
a bounded queue; the queue goes to Redis in batches (one MULTI/EXEC pipeline: the SETs,
then the invalidations for the other instances' L1).

- A batch is sent when ``behind_batch`` writes are pending or ``behind_interval_s`` has
  passed since the last send, and everything is sent on ``close``/``aclose``.
- Writes to a key still pending replace its value in place (the queue holds keys, not
  events), so a hot key costs one slot and one SET per batch.
- Queue full: the write falls back to write-through (sent before ``set`` returns). It is
  neither dropped nor blocked, so an acknowledged write is always either in Redis or in
  the queue; the fallbacks are counted (``fallbacks``).
- A batch that Redis refused stays queued (in order, newer writes to its keys winning) and
  is sent again after a capped exponential backoff: nothing acknowledged is lost while
  Redis comes back before the process ends. At exit with Redis down, ``close`` gives up
  after its timeout and logs how many writes were lost.
- Reads in this process see a pending value (it is looked up before L2); other instances
  see it once its batch is sent, and their L1 drops the old value when the invalidation
  that the batch carries arrives.
- A delete, and a value written through (a loader's, a refresh's), first remove the key
  from the queue under the lock that a batch is sent under, so an older pending value can
  never land after them.

``PendingWrites`` is the pure core (clocked, no I/O); ``WriteBehind`` (a thread) and
``AsyncWriteBehind`` (a task) send its batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from opsmesh_client.cache.base import Clock, Counts, Tiers
from opsmesh_client.cache.entry import Entry
from opsmesh_client.cache.l2 import AsyncStore, SyncStore, Write
from opsmesh_client.cache.settings import Namespace

log = logging.getLogger("opsmesh_client.cache")

_BACKOFF_FIRST_S = 0.1
_BACKOFF_MAX_S = 5.0
CLOSE_TIMEOUT_S = 10.0


@dataclass(slots=True)
class PendingWrite:
    key: str
    l2_key: str
    data: bytes
    entry: Entry
    seq: int


class PendingWrites:
    """One namespace's queue: bounded, keyed, in first-write order."""

    def __init__(self, ns: Namespace, clock: Clock, counts: Counts | None = None) -> None:
        self.ns = ns
        self.counts = counts if counts is not None else Counts()
        self._clock = clock
        self._items: OrderedDict[str, PendingWrite] = OrderedDict()
        self._lock = threading.Lock()
        self._seq = 0
        self.last_sent = clock()
        self.retry_at = 0.0
        self.failures = 0  # consecutive failed sends
        self.sent = 0  # writes that reached Redis from the queue

    def __len__(self) -> int:
        return len(self._items)

    @property
    def fallbacks(self) -> int:
        """Writes sent through because the queue was full."""
        return self.counts.behind_fallbacks

    def offer(self, key: str, l2_key: str, data: bytes, entry: Entry) -> bool:
        """Queue the write; False when the queue is full and the key is not in it."""
        with self._lock:
            self._seq += 1
            item = self._items.get(key)
            if item is not None:
                item.data, item.entry, item.seq = data, entry, self._seq
                return True
            if len(self._items) >= self.ns.behind_max_pending:
                self.counts.behind_fallbacks += 1
                return False
            self._items[key] = PendingWrite(key, l2_key, data, entry, self._seq)
            return True

    def pending(self, key: str) -> Entry | None:
        with self._lock:
            item = self._items.get(key)
            return item.entry if item is not None else None

    def discard(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)

    def due(self, now: float) -> bool:
        if not self._items or now < self.retry_at:
            return False
        return (
            len(self._items) >= self.ns.behind_batch
            or now - self.last_sent >= self.ns.behind_interval_s
        )

    def take(self) -> list[PendingWrite]:
        """The oldest batch, left in the queue until ``sent`` (so reads and newer writes
        still find its keys while it is on the wire)."""
        with self._lock:
            batch: list[PendingWrite] = []
            for item in self._items.values():
                if len(batch) == self.ns.behind_batch:
                    break
                batch.append(PendingWrite(item.key, item.l2_key, item.data, item.entry, item.seq))
            return batch

    def mark_sent(self, batch: list[PendingWrite]) -> None:
        with self._lock:
            for sent in batch:
                item = self._items.get(sent.key)
                if item is not None and item.seq == sent.seq:  # not rewritten meanwhile
                    del self._items[sent.key]
            self.sent += len(batch)
            self.last_sent = self._clock()
            self.failures = 0
            self.retry_at = 0.0

    def mark_failed(self) -> None:
        self.failures += 1
        backoff = min(_BACKOFF_FIRST_S * 2 ** (self.failures - 1), _BACKOFF_MAX_S)
        self.retry_at = self._clock() + backoff


class _Queues:
    """What both senders share: a queue per write-behind namespace and a batch's wire form."""

    def __init__(self, tiers: Tiers, publish: bool) -> None:
        self.tiers = tiers
        self._publish = publish
        self.queues: dict[str, PendingWrites] = {}

    def queue(self, ns: Namespace) -> PendingWrites:
        queue = self.queues.get(ns.name)
        if queue is None:
            queue = self.queues[ns.name] = PendingWrites(
                ns, self.tiers.clock, self.tiers.counts[ns.name]
            )
        return queue

    def pending(self, ns: Namespace, key: str) -> Entry | None:
        queue = self.queues.get(ns.name)
        return queue.pending(key) if queue is not None else None

    def wire(self, ns: Namespace, batch: list[PendingWrite]) -> tuple[list[Write], list[str]]:
        sets = [(item.l2_key, item.data, self.tiers.l2_ttl(item.entry)) for item in batch]
        messages = (
            [self.tiers.invalidation(ns, item.key) for item in batch]
            if self._publish and ns.l1
            else []
        )
        return sets, messages

    def interval(self) -> float:
        """How often the sender looks at the clock: the shortest interval declared."""
        return min(q.ns.behind_interval_s for q in list(self.queues.values()))

    @property
    def fallbacks(self) -> int:
        return sum(q.fallbacks for q in list(self.queues.values()))

    def __len__(self) -> int:
        return sum(len(q) for q in list(self.queues.values()))


class WriteBehind(_Queues):
    """Sends on a daemon thread, started by the first queued write."""

    def __init__(
        self, tiers: Tiers, store: SyncStore, publish: bool, sleep: Callable[[float], None]
    ) -> None:
        super().__init__(tiers, publish)
        self._store = store
        self._sleep = sleep
        self._send_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def write(self, ns: Namespace, key: str, entry: Entry, data: bytes) -> bool:
        """True once queued; False: the queue is full (or the cache closed), the caller
        writes through."""
        if self._stop.is_set():
            return False
        queue = self.queue(ns)
        if not queue.offer(key, self.tiers.l2_key(ns, key), data, entry):
            return False
        if self._stop.is_set():  # closed by another thread meanwhile: its flush may be over
            return self.flush()
        self._ensure_thread()
        if len(queue) >= ns.behind_batch:
            self._wake.set()
        return True

    def discard(self, ns: Namespace, key: str) -> None:
        queue = self.queues.get(ns.name)
        if queue is not None:
            with self._send_lock:  # no batch holding an older value is on the wire
                queue.discard(key)

    def flush_due(self) -> int:
        """Send one batch of every queue that is due by the clock; the writes sent."""
        sent = 0
        for queue in list(self.queues.values()):
            if queue.due(self.tiers.clock()):
                sent += self._send(queue)
        return sent

    def flush(self, timeout_s: float = CLOSE_TIMEOUT_S) -> bool:
        """Send everything pending (retrying with backoff); False if the timeout passed."""
        deadline = self.tiers.clock() + timeout_s
        for queue in list(self.queues.values()):
            while len(queue):
                if self._send(queue) == 0:
                    wait = queue.retry_at - self.tiers.clock()
                    if self.tiers.clock() + wait >= deadline:
                        return False
                    self._sleep(max(wait, 0.0))  # the backoff before retrying
        return True

    def _send(self, queue: PendingWrites) -> int:
        with self._send_lock:
            batch = queue.take()
            if not batch:
                return 0
            sets, messages = self.wire(queue.ns, batch)
            if not self._store.write_batch(sets, self.tiers.channel, messages):
                queue.mark_failed()
                return 0
            queue.mark_sent(batch)
            return len(batch)

    def _ensure_thread(self) -> None:
        if self._thread is not None or self._stop.is_set():
            return
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="opsmesh-cache-behind", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval())
            self._wake.clear()
            try:
                while self.flush_due():
                    pass
            except Exception:  # a codec or clock bug must not end the sender silently
                log.exception("cache write-behind: sending a batch failed")

    def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
        if not self.flush(timeout_s):
            log.error("cache write-behind: %d writes not sent at close (Redis down)", len(self))


class AsyncWriteBehind(_Queues):
    """Sends on an asyncio task, started by the first queued write."""

    def __init__(
        self,
        tiers: Tiers,
        store: AsyncStore,
        publish: bool,
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        super().__init__(tiers, publish)
        self._store = store
        self._sleep = sleep
        self._send_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def write(self, ns: Namespace, key: str, entry: Entry, data: bytes) -> bool:
        if self._closed:
            return False
        queue = self.queue(ns)
        if not queue.offer(key, self.tiers.l2_key(ns, key), data, entry):
            return False
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="opsmesh-cache-behind"
            )
        if len(queue) >= ns.behind_batch:
            self._wake.set()
        return True

    async def discard(self, ns: Namespace, key: str) -> None:
        queue = self.queues.get(ns.name)
        if queue is not None:
            async with self._send_lock:
                queue.discard(key)

    async def flush_due(self) -> int:
        sent = 0
        for queue in list(self.queues.values()):
            if queue.due(self.tiers.clock()):
                sent += await self._send(queue)
        return sent

    async def flush(self, timeout_s: float = CLOSE_TIMEOUT_S) -> bool:
        deadline = self.tiers.clock() + timeout_s
        for queue in list(self.queues.values()):
            while len(queue):
                if await self._send(queue) == 0:
                    wait = queue.retry_at - self.tiers.clock()
                    if self.tiers.clock() + wait >= deadline:
                        return False
                    await self._sleep(max(wait, 0.0))  # the backoff before retrying
        return True

    async def _send(self, queue: PendingWrites) -> int:
        async with self._send_lock:
            batch = queue.take()
            if not batch:
                return 0
            sets, messages = self.wire(queue.ns, batch)
            if not await self._store.write_batch(sets, self.tiers.channel, messages):
                queue.mark_failed()
                return 0
            queue.mark_sent(batch)
            return len(batch)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval())
            self._wake.clear()
            try:
                while await self.flush_due():
                    pass
            except Exception:
                log.exception("cache write-behind: sending a batch failed")

    async def aclose(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if not await self.flush(timeout_s):
            log.error("cache write-behind: %d writes not sent at close (Redis down)", len(self))
