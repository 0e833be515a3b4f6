"""Repository-level checks: contracts lint clean, docker-compose.yml and the README agree with
the settings the code reads."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml

import cli.supervisor  # noqa: F401  - every settings module is imported, so the registry is full
import gateway.settings  # noqa: F401
import services.chat.settings
import services.ingest.settings
import services.retrieval.settings
import services.sessions.settings  # noqa: F401
from cli.config_table import render
from runtime.env import REGISTRY
from runtime.settings import PEERS
from tests.conftest import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
STANDARD = {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"}


def test_protos_follow_buf_style_and_lint_clean() -> None:
    for proto in (ROOT / "protos").rglob("*.proto"):
        rel = proto.relative_to(ROOT / "protos")
        package = ".".join(rel.parent.parts)
        assert f"package {package};" in proto.read_text(), rel
    buf = shutil.which("buf") or str(Path(__import__("sys").executable).parent / "buf")
    result = subprocess.run([buf, "lint", "protos"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_has_the_stack_and_healthy_dependencies() -> None:
    assert {"qdrant", "postgres", "ingest", "retrieval", "chat", "sessions", "gateway"} <= set(SERVICES)
    assert SERVICES["qdrant"]["image"].startswith("qdrant/qdrant")
    assert SERVICES["postgres"]["image"].startswith("pgvector/pgvector")
    for name, service in SERVICES.items():
        assert "healthcheck" in service or name == "gateway", name
        for dependency in service.get("depends_on", {}).values():
            assert dependency == {"condition": "service_healthy"}, name
    for name in ("ingest", "retrieval", "chat", "sessions", "gateway"):
        assert SERVICES[name]["build"] == "."
        assert SERVICES[name]["command"][-1] == ("gateway" if name == "gateway" else f"services.{name}")


def test_compose_variables_ports_and_addresses_match_the_code() -> None:
    for name, service in SERVICES.items():
        for var in service.get("environment", {}):
            assert var in REGISTRY or var in STANDARD, f"{name}: {var} is not read by the code"
    for name, peer in PEERS.items():
        env = SERVICES[name]["environment"]
        port = env[peer.port_var.name]
        assert env["LECTERN_SERVICE"] == name
        for other in ("ingest", "retrieval", "chat", "sessions", "gateway"):
            addr = SERVICES[other]["environment"][peer.addr_var.name]
            assert addr == f"{name}:{port}", (other, addr)
    retrieval = SERVICES["retrieval"]["environment"]
    assert retrieval["QDRANT_URL"] == "http://qdrant:6333" and retrieval["LECTERN_INDEX_BACKEND"] == "qdrant"
    assert SERVICES["gateway"]["ports"] == [f"{SERVICES['gateway']['environment']['LECTERN_GATEWAY_PORT']}:8080"]


def test_readme_documents_every_variable_and_both_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    table = {m.group(1) for m in re.finditer(r"^\| `([A-Z_]+)` \|", readme, re.M)}
    assert set(REGISTRY) <= table, sorted(set(REGISTRY) - table)
    assert table <= set(REGISTRY), sorted(table - set(REGISTRY))
    assert render() in readme, "README table is stale: run `lectern config-table`"
    assert readme.index("make run") < readme.index("make test") < readme.index("```mermaid")
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci
