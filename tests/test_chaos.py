"""Chaos: under a small chat load, each process of a `lectern run` stack is SIGKILLed in turn
(sessions, retrieval, ingest, chat, gateway, then embedded Postgres). The supervisor must bring
the stack back without a human within RECOVERY_LIMIT, /healthz must never say "ok" while the
killed part is down, and every turn that got its `done` event must be stored exactly once.

Real processes on loopback ports, one stack for the module; prints a table of recovery times."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from cli.supervisor.run_state import ProcessRecord
from tests.test_make_run import SERVICES, Run, free_ports

pytestmark = pytest.mark.slow

VICTIMS = (*SERVICES, "postgres")
RECOVERY_LIMIT = 15.0
HEALTH_INTERVAL = 0.3  # each service's own dependency check; /healthz can lag by this much
CLIENTS = 3
MAX_TURNS = 1500  # a bound on the load, whatever the timings
PAUSE = 0.05  # between one client's turns: a steady load that leaves the restarts some CPU
TURNS_PER_CONVERSATION = 2
SAMPLE_PERIOD = 0.1


@dataclass
class Conversation:
    id: str = ""
    token: str = ""
    accepted: list[str] = field(default_factory=list)
    """Questions whose turn got its `done` event, in order."""
    failed: list[str] = field(default_factory=list)
    """Questions that got no `done` (refused, broken stream): stored at most once."""


@dataclass
class Load:
    conversations: list[Conversation] = field(default_factory=list)
    sent: int = 0

    @property
    def accepted(self) -> int:
        return sum(len(c.accepted) for c in self.conversations)


async def ask(client: httpx.AsyncClient, conversation: Conversation, question: str) -> bool:
    """One turn over SSE; True when it ended with `done` (and the conversation has its id)."""
    body: dict[str, str] = {"message": question}
    headers = {}
    if conversation.id:
        body["conversation_id"] = conversation.id
        headers["X-Conversation-Token"] = conversation.token
    events: dict[str, dict[str, object]] = {}
    try:
        async with client.stream("POST", "/v1/chat", json=body, headers=headers, timeout=20) as reply:
            if reply.status_code != 200:
                return False
            name = ""
            async for line in reply.aiter_lines():
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    events[name] = json.loads(line[6:])
    except httpx.HTTPError:
        return False
    meta = events.get("meta", {})
    if not conversation.id and meta.get("conversation_id"):
        conversation.id, conversation.token = str(meta["conversation_id"]), str(meta["conversation_token"])
    return "done" in events and "error" not in events and bool(conversation.id)


async def chat_load(url: str, load: Load, stop: asyncio.Event, client_no: int) -> None:
    async with httpx.AsyncClient(base_url=url) as client:
        while not stop.is_set() and load.sent < MAX_TURNS:
            conversation = Conversation()
            load.conversations.append(conversation)
            for turn in range(TURNS_PER_CONVERSATION):
                if stop.is_set() or load.sent >= MAX_TURNS:
                    break
                question = f"How do I calibrate the gyroscope? (client {client_no}, conversation " \
                           f"{len(load.conversations)}, turn {turn})"
                load.sent += 1
                if await ask(client, conversation, question):
                    conversation.accepted.append(question)
                    await asyncio.sleep(PAUSE)
                else:
                    conversation.failed.append(question)
                    await asyncio.sleep(0.2)
                    break  # a conversation ends at its first failed turn; its record is then fixed


@dataclass
class Recovery:
    name: str
    killed: float
    """Wall-clock time of the SIGKILL."""
    seconds: float
    samples: list[tuple[float, bool]]
    """(wall-clock time a /healthz request was sent, whether it said ok)."""
    replacement: ProcessRecord


async def healthy(client: httpx.AsyncClient) -> bool:
    try:
        reply = await client.get("/healthz", timeout=1)
    except httpx.HTTPError:
        return False
    return reply.status_code == 200 and reply.json().get("status") == "ok"


async def kill_and_recover(run: Run, client: httpx.AsyncClient, name: str) -> Recovery:
    deadline = time.monotonic() + 60
    while not await healthy(client):  # each kill starts from a whole stack
        assert time.monotonic() < deadline, f"stack not whole before killing {name}:\n{run.output}"
        await asyncio.sleep(SAMPLE_PERIOD)
    victim = run.children()[name]
    killed = time.time()
    os.kill(victim.pid, signal.SIGKILL)
    samples: list[tuple[float, bool]] = []
    while True:
        sent = time.time()
        ok = await healthy(client)
        samples.append((sent, ok))
        replacement = run.children().get(name)
        if ok and replacement is not None and replacement.pid != victim.pid:
            return Recovery(name, killed, time.time() - killed, samples, replacement)
        assert sent - killed < RECOVERY_LIMIT, f"{name} not back within {RECOVERY_LIMIT}s:\n{run.output}"
        await asyncio.sleep(SAMPLE_PERIOD)


def lies(recovery: Recovery) -> list[float]:
    """Seconds after the kill at which /healthz said ok while the killed part was certainly down:
    after its health could have noticed, and before its replacement even existed."""
    noticed = recovery.killed + HEALTH_INTERVAL + 0.7  # a probe in flight at the kill, then one interval
    return [round(t - recovery.killed, 2) for t, ok in recovery.samples
            if ok and noticed < t < recovery.replacement.started]


async def stored_messages(client: httpx.AsyncClient, conversation: Conversation) -> list[tuple[str, str]]:
    reply = await client.get(f"/v1/conversations/{conversation.id}", timeout=10,
                             headers={"X-Conversation-Token": conversation.token})
    assert reply.status_code == 200, reply.text
    return [(m["role"], m["content"]) for m in reply.json()["messages"]]


def check_stored(conversation: Conversation, stored: list[tuple[str, str]]) -> str:
    """'' when the conversation holds its accepted turns exactly once (and any failed one at most
    once, since it may have been stored before its stream broke); else what is wrong."""
    users = [content for role, content in stored if role == "user"]
    assistants = len(stored) - len(users)
    expected = conversation.accepted
    if users[:len(expected)] != expected or any(users.count(q) > 1 for q in users):
        return f"user messages {users} for accepted {expected}"
    extra = users[len(expected):]
    if not set(extra) <= set(conversation.failed):
        return f"unexpected messages {extra}"
    if assistants != len(users):
        return f"{assistants} answers for {len(users)} questions"
    return ""


@pytest.fixture(scope="module")
def chaos_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    home = tmp_path_factory.mktemp("chaos")
    run = Run(home, free_ports(5), extra_env={
        "LECTERN_RATE_LIMIT_PER_MINUTE": "0",  # the load comes from one address on purpose
        "LECTERN_HEALTH_INTERVAL_SECONDS": str(HEALTH_INTERVAL),
        "LECTERN_GRACE_SECONDS": "2",
    })
    try:
        run.wait_for("Press Ctrl-C", timeout=240)
        yield run
    finally:
        children = run.children() if (home / "supervisor.json").exists() else {}
        run.stop()
        left = [n for n, c in children.items() if c.process() is not None]
        for record in children.values():
            if (process := record.process()) is not None:
                process.kill()
        assert left == [], f"still running after the stack stopped: {left}"


async def test_the_stack_heals_itself_and_loses_no_accepted_turn(chaos_stack: Run,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    run = chaos_stack
    load, stop = Load(), asyncio.Event()
    clients = [asyncio.create_task(chat_load(run.url, load, stop, n)) for n in range(CLIENTS)]
    recoveries: list[Recovery] = []
    try:
        async with httpx.AsyncClient(base_url=run.url) as client:
            await asyncio.sleep(2)  # the load is under way before the first kill
            for name in VICTIMS:
                recoveries.append(await kill_and_recover(run, client, name))
                await asyncio.sleep(1)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*clients), 60)

    async with httpx.AsyncClient(base_url=run.url) as client:
        problems: dict[str, str] = {}
        stored = 0
        for conversation in (c for c in load.conversations if c.accepted):
            deadline = time.monotonic() + 10  # "eventually": a turn may still be in the retry queue
            while problem := check_stored(conversation, messages := await stored_messages(client, conversation)):
                if time.monotonic() > deadline:
                    problems[conversation.id] = problem
                    break
                await asyncio.sleep(0.5)
            stored += sum(role == "user" for role, _ in messages)
    whole = re.findall(r"the stack is whole again: every process is SERVING, ([0-9.]+)s", run.output)
    with capsys.disabled():
        print(table(recoveries, load, stored, [float(w) for w in whole]))

    for recovery in recoveries:
        assert recovery.seconds < RECOVERY_LIMIT, f"{recovery.name} took {recovery.seconds:.1f}s"
        assert any(not ok for _, ok in recovery.samples), f"/healthz never noticed {recovery.name} was down"
        assert lies(recovery) == [], f"/healthz said ok while {recovery.name} was down: {lies(recovery)} s after"
    assert f"{SERVICES[0]} exited (SIGKILL)" in run.output and "the stack is whole again" in run.output
    assert load.accepted > 10, f"only {load.accepted} of {load.sent} turns were accepted"
    assert problems == {}, f"{len(problems)} conversations wrong: {problems}"


def table(recoveries: list[Recovery], load: Load, stored: int, whole: list[float]) -> str:
    """Recovery as the test saw it (SIGKILL to /healthz ok with a new process) and as the
    supervisor logged it (its crash seen to "the stack is whole again")."""
    lines = ["", "| killed | recovery (s) | supervisor: whole again (s) | /healthz samples not ok |",
             "| --- | --- | --- | --- |"]
    lines += [f"| {r.name} | {r.seconds:.1f} | {whole[i] if i < len(whole) else '-'} | "
              f"{sum(not ok for _, ok in r.samples)} of {len(r.samples)} |" for i, r in enumerate(recoveries)]
    lines.append(f"turns sent {load.sent}, accepted (done) {load.accepted}, stored {stored} "
                 "(accepted ones exactly once; a failed one may be stored), "
                 f"conversations {sum(1 for c in load.conversations if c.accepted)} checked")
    return "\n".join(lines)
