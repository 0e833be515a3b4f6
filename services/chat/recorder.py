"""Records turns to sessions off the critical path, and never loses one quietly.

Turns wait in a bounded queue; a background task writes them, retrying with backoff while
sessions is down (AppendTurn is idempotent by turn id, so a retry cannot duplicate). When
the queue is full the oldest turn is dropped, logged and counted.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random

from runtime.errors import InvalidArgument, LecternError, NotFound
from services.chat.ports import Conversations, TurnRecord

log = logging.getLogger("lectern.chat.recorder")


class Recorder:
    def __init__(self, conversations: Conversations, capacity: int = 10_000) -> None:
        self.conversations = conversations
        self.queue: collections.deque[TurnRecord] = collections.deque()
        self.capacity = capacity
        self.dropped = 0
        self.recorded = 0
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    def submit(self, turn: TurnRecord) -> None:
        if len(self.queue) >= self.capacity:
            lost = self.queue.popleft()
            self.dropped += 1
            log.error("record buffer full; oldest turn dropped",
                      extra={"conversation_id": lost.conversation_id, "dropped_total": self.dropped})
        self.queue.append(turn)
        self._wake.set()

    async def _run(self) -> None:
        delay = 0.2
        while True:
            if not self.queue:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            turn = self.queue[0]
            try:
                await self.conversations.append(turn)
            except (InvalidArgument, NotFound) as exc:
                # Sessions will never take this turn (e.g. the reader erased the conversation).
                log.warning("turn not recordable; skipped", extra={"error": exc.message})
                self.queue.popleft()
                self._idle.set()
                continue
            except LecternError as exc:
                log.warning("sessions unavailable; will retry",
                            extra={"error": exc.message, "backlog": len(self.queue)})
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 10.0)
                continue
            self.queue.popleft()
            self._idle.set()
            self.recorded += 1
            delay = 0.2

    async def drain(self, seconds: float) -> None:
        """Gives queued turns up to ``seconds`` to be written (used at shutdown)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                while self.queue:
                    self._idle.clear()
                    await self._idle.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.queue:
            log.error("turns not recorded at shutdown", extra={"count": len(self.queue)})
