"""A bounded schemathesis run against the gateway's own OpenAPI document: no input, however
odd, may produce a 5xx. Run as a subprocess so the services in this process keep serving."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.conftest import ADMIN


async def test_fuzzing_the_openapi_contract_finds_no_server_errors(gateway: str, ingested: dict[str, object],
                                                                  tmp_path: Path) -> None:
    cli = Path(sys.executable).parent / "schemathesis"
    process = await asyncio.create_subprocess_exec(
        str(cli), "run", f"{gateway}/openapi.json", "--checks", "not_a_server_error", "--max-examples", "15",
        "--phases", "examples,coverage,fuzzing", "--request-timeout", "30", "--generation-deterministic",
        # Ingest would read files; it is covered by its own tests, so fuzzing skips it.
        "--exclude-path", "/v1/ingest", "-H", f"Authorization: Bearer {ADMIN}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=tmp_path,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=280)
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-4000:]
