"""Concurrent single requests that share one batched call.

Callers that arrive while a batch is running wait for the next one, so under load each call
carries many requests and its fixed cost (a model call, a database round trip and commit) is
paid once for all of them; a lone caller still goes at once. Used for query embeddings and for
recording turns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from runtime.errors import Unavailable

T = TypeVar("T")
R = TypeVar("R")

BatchCall = Callable[[list[T]], Awaitable[Sequence[R | BaseException]]]


class Batcher(Generic[T, R]):
    """``run`` takes a batch and returns one result per item, in order; an item's result may be
    an exception, which only that item's caller gets. If ``run`` itself raises, every caller in
    the batch gets the error. ``close`` on shutdown cancels the batches under way and fails
    every caller still waiting with Unavailable."""

    def __init__(self, run: BatchCall[T, R], max_batch: int = 64, max_in_flight: int = 1) -> None:
        self.run = run
        self.max_batch = max_batch
        self.max_in_flight = max_in_flight
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._in_flight = 0
        # The batches under way: the loop keeps only weak references to tasks, and close()
        # must find them.
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self.calls = 0
        """Batched calls made (for tests and metrics)."""

    async def submit(self, item: T) -> R:
        if self._closed:
            raise _shutting_down()
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        self._start_batches()
        return await future

    def _start_batches(self) -> None:
        # One batch at a time by default: for recording turns, a second one in flight only
        # split the batches (more statements and commits for the same turns) and lowered
        # throughput. Work bound by one CPU thread per batch may use more.
        if self._pending and self._in_flight < self.max_in_flight and not self._closed:
            self._in_flight += 1
            task = asyncio.get_running_loop().create_task(self._one_batch())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _one_batch(self) -> None:
        try:
            await asyncio.sleep(0)  # let callers scheduled in this tick join the batch
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch:]
            live = [(item, f) for item, f in batch if not f.done()]  # cancelled callers need nothing
            if live:
                self.calls += 1
                await self._call(live)
        finally:
            self._in_flight -= 1
            self._start_batches()

    async def close(self) -> None:
        """Cancels the batches under way and fails every caller still waiting; later submits
        are refused. A caller must not wait for an answer that will never come."""
        self._closed = True
        if running := set(self._tasks):
            for task in running:
                task.cancel()
            await asyncio.wait(running)  # unlike gather, a cancel of close() itself still propagates
        waiting, self._pending = self._pending, []
        _fail([f for _, f in waiting], _shutting_down())

    @property
    def tasks(self) -> frozenset[asyncio.Task[None]]:
        """The batches under way (for tests)."""
        return frozenset(self._tasks)

    async def _call(self, live: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self.run([item for item, _ in live])
        except asyncio.CancelledError:  # close(): these callers get no answer
            _fail([f for _, f in live], _shutting_down())
            raise
        except Exception as exc:
            _fail([f for _, f in live], exc)
            return
        for (_, f), result in zip(live, results, strict=True):
            if f.done():
                continue
            if isinstance(result, BaseException):
                f.set_exception(result)
            else:
                f.set_result(result)


def _shutting_down() -> Unavailable:
    return Unavailable("shutting down; try again shortly")


def _fail(futures: Sequence[asyncio.Future[R]], error: BaseException) -> None:
    for f in futures:
        if not f.done():
            f.set_exception(error)
