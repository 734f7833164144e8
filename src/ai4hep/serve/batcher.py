"""Triton-style dynamic batcher: requests queued for one model are concatenated along the batch axis into one
session.run, and the outputs are split back.

Only requests whose inputs have identical non-batch shapes (and so the same object count) are batched together;
nothing is padded, since padding would change what a model without a mask computes. A request that does not fit
the forming batch waits, in order, for the next one. The collector dispatches when the batch reaches max_batch_size
or when the oldest request has waited max_queue_delay_microseconds (0: take what is queued now). At most `instances`
batches run at once; while they run, new requests queue up, so load itself makes batches bigger.

Idle dispatch (the default; config parameter `ai4hep.idle_dispatch: "false"` turns it off): waiting only pays when
other requests can come meanwhile. A request that arrives while none of the model's other requests are inside the
batcher, and none have overlapped in the last CONCURRENCY_MEMORY_NS, runs at once: a lone sequential client never
waits for company that cannot come. The first overlap switches the window back on for the next second.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque

import numpy as np

from ai4hep.serve.tensors import InferError

# epoll and select time out in whole milliseconds, so a 100 us timer sleeps ~1 ms: the last stretch of a queue delay
# is waited by yielding to the event loop (other requests keep arriving meanwhile) instead of by a timer.
SPIN_BELOW_NS = 2_000_000
CONCURRENCY_MEMORY_NS = 1_000_000_000


class _Request:
    __slots__ = ("batch", "feed", "future", "key", "start")

    def __init__(self, feed: dict[str, np.ndarray], batch: int, future: asyncio.Future, key: tuple, start: int) -> None:
        self.feed, self.batch, self.future, self.key, self.start = feed, batch, future, key, start


class Batcher:
    def __init__(
        self, model, max_batch_size: int, max_queue_delay_us: int, instances: int, idle_dispatch: bool = True
    ) -> None:
        self.model = model
        self.input_names = [s.name for s in model.inputs]
        self.max_batch = max_batch_size
        self.delay_ns = max_queue_delay_us * 1000
        self.pending: deque[_Request] = deque()
        self.slots = asyncio.Semaphore(instances)
        self.wake = asyncio.Event()
        self.flushing = False  # set when the server drains: dispatch at once, wait for nothing
        self.running: set[asyncio.Task] = set()
        self.idle_dispatch = idle_dispatch
        self.inside = 0  # requests submitted and not yet answered
        self.concurrent_until = 0  # perf_counter_ns up to which requests are expected to overlap
        self.task = asyncio.get_running_loop().create_task(self._collect(), name=f"batcher-{model.name}")

    async def submit(self, feed: dict[str, np.ndarray], batch: int) -> list[np.ndarray]:
        start = time.perf_counter_ns()
        if self.inside:
            self.concurrent_until = start + CONCURRENCY_MEMORY_NS
        self.inside += 1
        try:
            future = asyncio.get_running_loop().create_future()
            key = tuple(feed[name].shape[1:] for name in self.input_names)
            if self.model.trim is not None:  # cut padding: batch jets of similar lengths (serve/padding.py)
                key += (self.model.trim.bucket(feed),)
            request = _Request(feed, batch, future, key, start)
            if self._lone(start):
                # Short runs happen on the loop, start to end, so two requests that arrived together would never
                # be inside at once: yield once, and whatever arrived with this one shows itself.
                await asyncio.sleep(0)
                if self._lone(start) and not self.pending and not self.slots.locked():
                    # nothing to wait for and nothing ahead: run here, without the collector's two hops
                    await self.slots.acquire()
                    await self._execute([request])
                    return await future
            self.pending.append(request)
            self.wake.set()
            return await future
        finally:
            self.inside -= 1

    def _lone(self, start: int) -> bool:
        """Idle dispatch applies to a request that arrived at `start`: no overlap seen in the last second."""
        return self.idle_dispatch and start >= self.concurrent_until

    def _delay(self, first: _Request) -> int:
        """How long the batch led by `first` may wait for company (ns)."""
        return 0 if self._lone(first.start) else self.delay_ns

    def _ready(self, key: tuple) -> int:
        """Items that the batch led by a request with `key` could take now."""
        n = 0
        for r in self.pending:
            if r.key == key:
                n += r.batch
                if n >= self.max_batch:
                    break
        return n

    def _take(self, key: tuple) -> list[_Request]:
        taken, kept, n = [], deque(), 0
        while self.pending:
            r = self.pending.popleft()
            if r.key == key and n + r.batch <= self.max_batch and not r.future.done():
                taken.append(r)
                n += r.batch
            elif not r.future.done():  # cancelled requests (client gone) are dropped here
                kept.append(r)
        self.pending = kept
        return taken

    async def _collect(self) -> None:
        while True:
            while not self.pending:
                self.wake.clear()
                await self.wake.wait()
            await self.slots.acquire()
            key = self.pending[0].key
            deadline = self.pending[0].start + self._delay(self.pending[0])
            while not self.flushing and self._ready(key) < self.max_batch:
                left = deadline - time.perf_counter_ns()
                if left <= 0:
                    break
                if left < SPIN_BELOW_NS:  # the loop's poll sleeps whole milliseconds: yield instead of a timer
                    await asyncio.sleep(0)
                    continue
                self.wake.clear()
                with contextlib.suppress(asyncio.TimeoutError):  # not the builtin TimeoutError on Python 3.10
                    await asyncio.wait_for(self.wake.wait(), (left - SPIN_BELOW_NS) * 1e-9)
            batch = self._take(key)
            if not batch:
                self.slots.release()
                continue
            task = asyncio.get_running_loop().create_task(self._execute(batch))
            self.running.add(task)
            task.add_done_callback(self.running.discard)

    async def _execute(self, batch: list[_Request]) -> None:
        try:
            await self._run(batch)
        finally:
            self.slots.release()

    async def _run(self, batch: list[_Request]) -> None:
        stats = self.model.stats
        t0 = time.perf_counter_ns()
        for r in batch:
            stats.queued(t0 - r.start)
        try:
            if len(batch) == 1:
                feed = batch[0].feed
            else:
                feed = {name: np.concatenate([r.feed[name] for r in batch]) for name in self.input_names}
            total = sum(r.batch for r in batch)
            t1 = time.perf_counter_ns()
            outputs = await self.model.execute(feed, total)
            t2 = time.perf_counter_ns()
            for name, out in zip(self.model.output_names, outputs, strict=True):
                if out.shape[:1] != (total,):
                    problem = f"model '{self.model.name}' output '{name}' has no batch axis {out.shape}"
                    raise InferError(problem, "internal")
            start = 0
            for r in batch:
                if not r.future.done():
                    r.future.set_result([o[start : start + r.batch] for o in outputs])
                start += r.batch
            stats.executed(total, len(batch), t1 - t0, t2 - t1, time.perf_counter_ns() - t2)
        except Exception as exc:
            if len(batch) > 1:  # one bad request must not fail the others: run each on its own
                await asyncio.gather(*(self._run([r]) for r in batch))
            elif not batch[0].future.done():
                batch[0].future.set_exception(exc)

    async def drain(self) -> None:
        """Dispatch everything queued without waiting for more; return when it has run."""
        self.flushing = True
        self.wake.set()
        while self.pending or self.running:
            await asyncio.sleep(0.001)
