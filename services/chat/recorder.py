"""Records turns to sessions; never loses one quietly, and never lets one block the others.

The engine writes each turn itself before the answer's ``done`` event (``record``), so the
reader's feedback on it cannot race the write. Only a turn whose write fails transiently, or
whose conversation still has turns waiting (its turns are written in the order they were
answered), waits here: in a bounded queue that a background task writes with backoff
(AppendTurn is idempotent by turn id, so a retry cannot duplicate).

Every turn ends in one of four counted outcomes (``RecorderStats``):

- recorded: sessions took it;
- rejected: sessions refused it as invalid (INVALID_ARGUMENT, NOT_FOUND, ... any code not in
  ``TRANSIENT``). It would be refused forever: logged and dropped at once, never retried;
- abandoned: sessions failed transiently ``MAX_ATTEMPTS`` times in a row on it (about a minute
  of backoff): logged and dropped, so no turn holds the head of the queue for long, not even
  one whose write itself brings sessions down;
- overflowed: the queue was full when a newer turn arrived: the oldest is dropped.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
from dataclasses import dataclass

from runtime.errors import Aborted, DeadlineExceeded, Internal, LecternError, ResourceExhausted, Unavailable
from services.chat.ports import Conversations, TurnRecord

log = logging.getLogger("lectern.chat.recorder")

# Failures that may pass: sessions or its database restarting, overloaded or slow. INTERNAL is
# here too: it says nothing about the turn itself (a driver error sessions did not foresee, seen
# when Postgres was killed mid-write), and a bounded retry of an idempotent write loses nothing.
TRANSIENT: tuple[type[Exception], ...] = (
    Unavailable, DeadlineExceeded, ResourceExhausted, Aborted, Internal, TimeoutError,
)
WRITE_SECONDS = 2.0
"""Bound of the engine's own write before ``done``; AppendTurn normally takes milliseconds."""
MAX_ATTEMPTS = 12
"""Queued tries of one turn; with the backoff below, about a minute for sessions to come back."""
BACKOFF_SECONDS = (0.2, 10.0)
"""First and longest pause between tries (doubling, jittered)."""


@dataclass(frozen=True)
class RecorderStats:
    recorded: int
    rejected: int
    abandoned: int
    overflowed: int
    pending: int


class Recorder:
    def __init__(self, conversations: Conversations, capacity: int = 10_000,
                 backoff_seconds: tuple[float, float] = BACKOFF_SECONDS) -> None:
        self.conversations = conversations
        self.queue: collections.deque[TurnRecord] = collections.deque()
        self.capacity = capacity
        self.backoff_seconds = backoff_seconds
        self.recorded = 0
        self.rejected = 0
        self.abandoned = 0
        self.overflowed = 0
        self._queued_by_conversation: collections.Counter[str] = collections.Counter()
        self._writing: TurnRecord | None = None  # the head, while the background task writes it
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    def stats(self) -> RecorderStats:
        return RecorderStats(self.recorded, self.rejected, self.abandoned, self.overflowed, len(self.queue))

    async def record(self, turn: TurnRecord) -> bool:
        """Writes ``turn`` now (within WRITE_SECONDS), or queues it: when its conversation has
        turns waiting, when sessions fails transiently, or when the caller is cancelled (the
        reader left as the answer ended; it was still given). False when sessions rejected it:
        it will never be recorded. Raises nothing but CancelledError."""
        if self._queued_by_conversation[turn.conversation_id]:
            self.submit(turn)
            return True
        try:
            async with asyncio.timeout(WRITE_SECONDS):
                await self.conversations.append(turn)
        except asyncio.CancelledError:
            self.submit(turn)
            raise
        except TRANSIENT as exc:
            log.warning("turn not recorded yet; queued for retry",
                        extra={"conversation_id": turn.conversation_id, "error": _reason(exc)})
            self.submit(turn)
            return True
        except Exception as exc:  # whatever sessions refuses, the answer was given
            self._reject(turn, exc)
            return False
        self.recorded += 1
        return True

    def submit(self, turn: TurnRecord) -> None:
        writing = 1 if self._writing is not None else 0
        if len(self.queue) - writing >= self.capacity:
            # The oldest turn not being written now: the one in flight ends as its write does.
            lost = self._remove(writing)
            self.overflowed += 1
            log.error("record buffer full; oldest turn dropped",
                      extra={"conversation_id": lost.conversation_id, "dropped_total": self.overflowed})
        self.queue.append(turn)
        self._queued_by_conversation[turn.conversation_id] += 1
        self._wake.set()

    def _remove(self, index: int = 0) -> TurnRecord:
        turn = self.queue[index]
        del self.queue[index]
        self._queued_by_conversation[turn.conversation_id] -= 1
        if not self._queued_by_conversation[turn.conversation_id]:
            del self._queued_by_conversation[turn.conversation_id]
        self._idle.set()
        return turn

    def _reject(self, turn: TurnRecord, exc: Exception) -> None:
        self.rejected += 1
        log.error("turn rejected by sessions; dropped, not retried",
                  exc_info=None if isinstance(exc, LecternError) else exc,
                  extra={"conversation_id": turn.conversation_id, "turn_id": turn.turn_id, "error": _reason(exc),
                         "rejected_total": self.rejected})

    async def _run(self) -> None:
        first, longest = self.backoff_seconds
        delay = first
        head: TurnRecord | None = None
        attempts = 0  # failed tries of ``head``
        while True:
            if not self.queue:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            if self.queue[0] is not head:
                head, attempts = self.queue[0], 0
            if await self._write_head(head, attempts + 1):
                delay = first
                continue
            # Sessions is failing: the next try, of this turn or the next one, waits.
            attempts += 1
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, longest)

    async def _write_head(self, turn: TurnRecord, attempt: int) -> bool:
        """One try of the turn at the head of the queue; False when sessions failed transiently."""
        self._writing = turn
        try:
            await self.conversations.append(turn)
        except TRANSIENT as exc:
            if attempt < MAX_ATTEMPTS:
                log.warning("sessions failing; will retry",
                            extra={"error": _reason(exc), "backlog": len(self.queue), "attempt": attempt})
                return False
            self._remove()
            self.abandoned += 1
            log.error("turn not recorded after retries; dropped",
                      extra={"conversation_id": turn.conversation_id, "turn_id": turn.turn_id,
                             "attempts": attempt, "error": _reason(exc), "abandoned_total": self.abandoned})
            return False
        except Exception as exc:  # one bad turn must not stop the recorder
            self._remove()
            self._reject(turn, exc)
            return True
        finally:
            self._writing = None
        self._remove()
        self.recorded += 1
        return True

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


def _reason(exc: Exception) -> str:
    return exc.message if isinstance(exc, LecternError) else f"{type(exc).__name__}: {exc}"
