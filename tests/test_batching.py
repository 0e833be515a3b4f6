"""The batcher holds the tasks that run its batches, and closing it ends them: no batch is left
to the garbage collector, and no caller waits for an answer that will never come."""

from __future__ import annotations

import asyncio
import gc

import pytest

from runtime.batching import Batcher
from runtime.errors import Unavailable


class Gate:
    """A batched call that waits to be let through, recording each batch it was given."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.started = asyncio.Event()
        self.batches: list[list[int]] = []
        self.cancelled = 0

    async def run(self, items: list[int]) -> list[int]:
        self.batches.append(items)
        self.started.set()
        try:
            await self.open.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return [i * 10 for i in items]


async def test_the_batcher_holds_each_running_batch_until_it_ends() -> None:
    gate = Gate()
    batcher: Batcher[int, int] = Batcher(gate.run)
    callers = [asyncio.create_task(batcher.submit(i)) for i in range(3)]
    await gate.started.wait()
    (running,) = batcher.tasks
    gc.collect()  # a task the loop alone refers to may be collected mid-batch
    assert not running.done() and batcher.tasks == {running}
    gate.open.set()
    assert await asyncio.gather(*callers) == [0, 10, 20]
    await asyncio.sleep(0)  # the done callback runs on the next turn of the loop
    assert running.done() and not batcher.tasks
    assert gate.batches == [[0, 1, 2]] and batcher.calls == 1


async def test_closing_cancels_the_running_batch_and_fails_every_waiting_caller() -> None:
    gate = Gate()
    batcher: Batcher[int, int] = Batcher(gate.run, max_batch=2)
    callers = [asyncio.create_task(batcher.submit(i)) for i in range(3)]  # a batch of two; one waits
    await gate.started.wait()
    (running,) = batcher.tasks
    async with asyncio.timeout(5):
        await batcher.close()
    assert running.cancelled() and gate.cancelled == 1 and not batcher.tasks
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(r, Unavailable) for r in results), results
    assert gate.batches == [[0, 1]]  # the waiting caller's batch never started
    with pytest.raises(Unavailable, match="shutting down"):
        await batcher.submit(4)
    assert gate.batches == [[0, 1]]


async def test_closing_an_idle_batcher_returns_at_once() -> None:
    batcher: Batcher[int, int] = Batcher(Gate().run)
    async with asyncio.timeout(1):
        await batcher.close()
    assert not batcher.tasks
