"""Importing code does nothing: every module of the services loads in a fresh interpreter without
touching the environment, starting a thread or a task, or changing how errors map. Behaviour
comes from explicit start-up (settings, ``ServiceSpec``), never from what a process imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from tests.conftest import ROOT

PACKAGES = ("runtime", "embedding", "services", "gateway")

# Runs inside a loop, so that a module creating a task at import would be caught too.
IMPORT_EVERYTHING = """
import asyncio, importlib, json, os, pkgutil, sys, threading

async def main():
    environ = dict(os.environ)
    threads = {t.ident for t in threading.enumerate()}
    modules = []
    for package in PACKAGES:
        root = importlib.import_module(package)
        modules.append(package)
        for info in pkgutil.walk_packages(root.__path__, package + "."):
            importlib.import_module(info.name)
            modules.append(info.name)
    import asyncpg
    from runtime.status import NETWORK
    print(json.dumps({
        "modules": modules,
        "environ": sorted(k for k in set(environ) | set(os.environ) if environ.get(k) != os.environ.get(k)),
        "threads": [t.name for t in threading.enumerate() if t.ident not in threads],
        "tasks": [repr(t) for t in asyncio.all_tasks() if t is not asyncio.current_task()],
        "postgres_error_maps_to": NETWORK.dependency(asyncpg.PostgresConnectionError()),
    }))

asyncio.run(main())
"""


def run_python(code: str, **variables: object) -> Any:
    preamble = "".join(f"{name} = {value!r}\n" for name, value in variables.items())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    env["PYTHONPATH"] = f"{ROOT}:{ROOT / 'gen'}"
    done = subprocess.run([sys.executable, "-c", preamble + code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_every_module_changes_nothing_and_starts_nothing() -> None:
    seen = run_python(IMPORT_EVERYTHING, PACKAGES=PACKAGES)
    # Walked for real: the modules that used to act at import are among those loaded.
    assert {"embedding.local", "runtime.postgres", "services.sessions.service", "gateway.app"} <= set(seen["modules"])
    assert seen["environ"] == [], "a module edited os.environ at import"
    assert seen["threads"] == [], "a module started a thread at import"
    assert seen["tasks"] == [], "a module started a task at import"
    # runtime.postgres declares Postgres's errors; loading it maps nothing for anyone else.
    assert seen["postgres_error_maps_to"] is None


def test_a_service_that_declares_postgres_errors_needs_nothing_else_imported() -> None:
    seen = run_python("""
import json, sys
import asyncpg
from runtime.status import NETWORK
declared = NETWORK.plus(asyncpg.PostgresConnectionError, dependency="postgres")
print(json.dumps({"loaded": "runtime.postgres" in sys.modules,
                  "declared": declared.dependency(asyncpg.ConnectionDoesNotExistError()),
                  "undeclared": NETWORK.dependency(asyncpg.ConnectionDoesNotExistError())}))
""")
    assert seen == {"loaded": False, "declared": "postgres", "undeclared": None}
