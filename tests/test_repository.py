"""Repository-level checks: contracts lint clean, docker-compose.yml and docs/configuration.md
agree with the settings the code reads, and the README and docs/ hold together."""

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
from cli.config_table import TABLE_FILE, render
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


def test_the_configuration_page_documents_every_variable() -> None:
    page = TABLE_FILE.read_text()
    table = {m.group(1) for m in re.finditer(r"^\| `([A-Z_]+)` \|", page, re.M)}
    assert set(REGISTRY) <= table, sorted(set(REGISTRY) - table)
    assert table <= set(REGISTRY), sorted(table - set(REGISTRY))
    assert render() in page, f"the table in {TABLE_FILE} is stale: run `lectern config-table`"


def test_the_readme_gives_both_commands_and_ci_runs_its_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    commands = re.search(r"```bash\n(make run .*)\n(make test .*)\n```", readme)
    assert commands, "the README's first block gives `make run` and `make test`"
    assert readme.index("make run") < readme.index("make test") < readme.index("```mermaid")
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert "make test" in ci, "CI runs the README's test command as the README gives it"


def _anchors(page: Path) -> set[str]:
    """The ids GitHub gives a Markdown page's headings."""
    from services.ingest.book.slugs import github_slug

    prose = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {github_slug(m.group(1).strip()) for m in re.finditer(r"^#{1,6} (.+)$", prose, re.M)}


def test_the_readme_links_every_page_of_docs_and_every_link_resolves() -> None:
    pages = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *(ROOT / "bench-results").glob("*.md")]
    readme_links = set()
    broken = []
    for page in pages:
        prose = re.sub(r"```.*?```|`[^`\n]*`", "", page.read_text(), flags=re.S)  # code is not linked
        for target, anchor in re.findall(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)", prose):
            if "://" in target or target.startswith("mailto:"):
                continue
            path = (page.parent / target).resolve()
            if not path.exists() or (anchor and path.suffix == ".md" and anchor not in _anchors(path)):
                broken.append(f"{page.relative_to(ROOT)} -> {target}#{anchor}")
            if page.name == "README.md" and page.parent == ROOT:
                readme_links.add(path)
    assert not broken, broken
    unlinked = [p.relative_to(ROOT) for p in (ROOT / "docs").rglob("*.md") if p.resolve() not in readme_links]
    assert not unlinked, f"not linked from the README: {unlinked}"


def test_every_rpc_has_a_caller_outside_the_tests() -> None:
    """An RPC nothing calls is dead weight in the contract, its servicer and its tests."""
    import importlib

    code = "\n".join(p.read_text() for folder in ("gateway", "services", "cli", "evaluation", "bench")
                     for p in (ROOT / folder).rglob("*.py"))
    uncalled = []
    for name in ("chat", "ingest", "retrieval", "sessions"):
        module = importlib.import_module(f"lectern.{name}.v1.{name}_service_pb2")
        for service in module.DESCRIPTOR.services_by_name.values():
            uncalled += [f"{service.name}.{m.name}" for m in service.methods if f".{m.name}(" not in code]
    assert not uncalled


def _first_party_closure(roots: list[str], ours: set[str]) -> set[str]:
    """The repository's top-level packages that ``roots`` import, directly or through each other."""
    import ast

    needed: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        needed.add(name)
        for path in (ROOT / name).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    modules = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    modules = [node.module]
                else:
                    continue
                todo += [top for m in modules
                         if (top := m.split(".")[0]) in ours and top not in needed and top not in todo]
    return needed


def test_every_package_the_services_import_is_installed_and_in_the_image(tmp_path: Path) -> None:
    """A top-level package missing from pyproject's package list runs from the checkout but not
    from the installed `lectern` command; one the Dockerfile does not copy is not in the image."""
    import fnmatch
    import os
    import sys
    import tomllib

    ours = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    installed = _first_party_closure(["cli", "services", "gateway"], ours)
    assert {"records", "runtime", "services"} <= installed  # the scan finds what they import
    assert not [p for p in installed if not any(fnmatch.fnmatch(p, pattern) for pattern in include)]
    copied = set(re.findall(r"^COPY (\w+) \1$", (ROOT / "Dockerfile").read_text(), re.M))
    assert _first_party_closure(["services", "gateway"], ours) <= copied
    # The installed command imports them from any folder, with no PYTHONPATH (after `make install`).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", "import " + ", ".join(sorted(installed))], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
