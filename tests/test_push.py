"""`lectern push` against a stack on loopback: an ingest with tight push limits and a gateway in
front of it, the site copied to a folder ingest may not read (no shared paths). Covers the
first push from another working directory, a one-page edit, a deleted page, two pushes at
once, a client killed mid-upload, each hostile upload, and the CI workflow's own command."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import sys
import tarfile
from collections.abc import AsyncIterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import pytest_asyncio
import uvicorn
import yaml
from lectern.retrieval.v1 import retrieval_service_pb2 as rpb
from lectern.retrieval.v1 import retrieval_service_pb2_grpc as rpb_grpc

from evaluation.stack import free_port
from runtime.server import start_service
from services.ingest.push.archive import END_OF_ARCHIVE, entry_header, padding
from services.ingest.push.files import site_files
from services.ingest.push.limits import PushLimits
from services.ingest.push.store import PushOptions, book_folder
from tests.conftest import ADMIN, FIXTURES, ROOT, Stack, ingest, server_settings

pytestmark = pytest.mark.asyncio(loop_scope="session")

SITE = ROOT / "examples" / "book"
LIMITS = PushLimits(max_files=60, max_file_bytes=64 * 1024, max_total_bytes=1024 * 1024, lease_seconds=60,
                    keep_seconds=3600)
AUTH = {"Authorization": f"Bearer {ADMIN}"}
LECTERN = Path(sys.executable).parent / "lectern"


class PushStack:
    def __init__(self, url: str, home: Path, stack: Stack) -> None:
        self.url, self.home, self.stack = url, home, stack

    def book_dir(self, book: str) -> Path:
        return book_folder(self.home / "pushes", book)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def pushed(stack: Stack, home: Path) -> AsyncIterator[PushStack]:
    """An ingest with tight push limits (roots: only the test fixtures, never the pushed copies)
    and a gateway routing ingest calls to it."""
    from gateway.app import create_app
    from gateway.server import uvicorn_config
    from gateway.settings import GatewaySettings
    from services.ingest.service import spec as ingest_spec
    from services.ingest.settings import IngestSettings

    peers = {"retrieval": stack.retrieval.address, "sessions": stack.sessions.address}
    settings = IngestSettings(server_settings("ingest", home, peers), (FIXTURES,), "local", 512, LIMITS)
    async with start_service(ingest_spec(settings), settings.server) as ingest:
        port = free_port()
        gateway = GatewaySettings("127.0.0.1", port, ADMIN, 64 * 1024, {**stack.peers, "ingest": ingest.address},
                                  60.0, "INFO", "", rate_per_minute=0, push=LIMITS, read_seconds=5.0)
        server = uvicorn.Server(uvicorn_config(create_app(gateway), gateway))
        task = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.05)
        yield PushStack(f"http://127.0.0.1:{port}", home, stack)
        server.should_exit = True
        await task


def copy_site(tmp: Path) -> Path:
    site = tmp / "site"
    shutil.copytree(SITE, site, ignore=shutil.ignore_patterns("node_modules", ".docusaurus", "build"))
    return site


async def chunks(stack: Stack, book: str) -> dict[str, tuple[str, str]]:
    """The served chunks: id -> (file path, content hash)."""
    async with grpc.aio.insecure_channel(stack.retrieval.address) as ch:
        page = await rpb_grpc.RetrievalServiceStub(ch).ListChunks(rpb.ListChunksRequest(book=book, page_size=10_000))
    return {d.chunk_id: (d.file_path, d.content_hash) for d in page.chunks}


async def lectern(*args: str, cwd: Path, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    """The installed console script, from ``cwd``, without PYTHONPATH."""
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    environ.update({"LECTERN_ADMIN_TOKEN": ADMIN, **(env or {})})
    proc = await asyncio.create_subprocess_exec(str(LECTERN), "push", *args, "--json", cwd=cwd, env=environ,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 300)
    assert proc.returncode is not None
    try:
        report: dict[str, Any] = json.loads(out)
    except ValueError:
        raise AssertionError(f"no JSON report (exit {proc.returncode}): {out!r} {err.decode()[-2000:]}") from None
    return proc.returncode, report


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def open_push(p: PushStack, book: str, files: dict[str, bytes], holder: str = "tester") -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=p.url, headers=AUTH, timeout=60) as client:
        reply = await client.post(f"/v1/books/{book}/sync", json={
            "files": [{"path": k, "sha256": sha(v), "size": len(v)} for k, v in files.items()], "holder": holder})
    assert reply.status_code == 200, reply.text
    plan: dict[str, Any] = reply.json()
    return plan


def tar_of(files: dict[str, bytes]) -> bytes:
    return b"".join(entry_header(k, len(v)) + v + padding(len(v)) for k, v in files.items()) + END_OF_ARCHIVE


async def put_archive(p: PushStack, book: str, push_id: str, body: bytes, gzipped: bool = False) -> httpx.Response:
    headers = {**AUTH, "Content-Type": "application/x-tar", **({"Content-Encoding": "gzip"} if gzipped else {})}
    async with httpx.AsyncClient(base_url=p.url, timeout=60) as client:
        return await client.put(f"/v1/books/{book}/pushes/{push_id}/archive", content=body, headers=headers)


# --- the happy path, from another working directory ------------------------------------------

async def test_push_edit_and_delete_from_another_folder(pushed: PushStack, tmp_path: Path) -> None:
    site = copy_site(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code, first = await lectern(str(site), "--url", pushed.url, "--book", "pushed", "--yes", cwd=elsewhere)
    assert code == 0, first
    assert first["summary"]["chunks_new"] > 20 and first["uploaded_files"] == first["files"] > 25
    served = await chunks(pushed.stack, "pushed")
    assert {f for f, _ in served.values()} >= {"intro.md", "sensors/imu.md"}
    # The partial two pages show is sent with them (it is no page itself), so they are read whole.
    assert not [w for w in first["summary"]["warnings"] if "partial" in w], first["summary"]["warnings"]

    # Unchanged: nothing uploaded, nothing applied.
    code, again = await lectern(str(site), "--url", pushed.url, "--book", "pushed", cwd=elsewhere)
    assert code == 0 and again["plan"]["up_to_date"] and again["summary"] is None, again
    assert again["plan"]["unchanged"] == first["files"]

    # One section of one page edited: exactly one file sent, one chunk re-embedded.
    page = site / "docs" / "sensors" / "imu.md"
    text = page.read_text()
    marker = "## "
    at = text.index(marker, text.index(marker) + 1) if text.count(marker) > 1 else text.index(marker)
    end = text.index("\n\n", at) + 2
    page.write_text(text[:end] + "The push test adds this sentence about quaternion drift.\n\n" + text[end:])
    code, edit = await lectern(str(site), "--url", pushed.url, "--book", "pushed", cwd=elsewhere)
    assert code == 0, edit
    assert edit["plan"]["changed"] == ["docs/sensors/imu.md"] and edit["uploaded_files"] == 1
    s = edit["summary"]
    assert (s["chunks_changed"], s["chunks_new"], s["chunks_deleted"]) == (1, 0, 0), s
    after = await chunks(pushed.stack, "pushed")
    assert len([c for c in after if after[c] != served.get(c)]) == 1

    # A deleted page: its chunks are gone (with --yes; without it a non-interactive run refuses).
    (site / "docs" / "appendix.md").unlink()
    code, refused = await lectern(str(site), "--url", pushed.url, "--book", "pushed", cwd=elsewhere)
    assert code == 2 and "--yes" in refused["error"]
    assert any(f == "appendix.md" for f, _ in (await chunks(pushed.stack, "pushed")).values())
    code, deleted = await lectern(str(site), "--url", pushed.url, "--book", "pushed", "--yes", cwd=elsewhere)
    assert code == 0 and deleted["plan"]["deleted"] == ["docs/appendix.md"] and deleted["uploaded_files"] == 0
    assert deleted["summary"]["chunks_deleted"] > 0
    assert not any(f == "appendix.md" for f, _ in (await chunks(pushed.stack, "pushed")).values())
    # Applied pushes leave only the mirror behind.
    assert sorted(p.name.split("-")[0] for p in pushed.book_dir("pushed").iterdir()) == ["current", "mirror",
                                                                                        "mirror"]


async def test_dry_run_prints_the_plan_and_changes_nothing(pushed: PushStack, tmp_path: Path) -> None:
    site = copy_site(tmp_path)
    code, report = await lectern(str(site), "--url", pushed.url, "--book", "dry", "--dry-run", cwd=tmp_path)
    assert code == 0 and len(report["plan"]["added"]) == report["files"] and report["summary"] is None
    assert await chunks(pushed.stack, "dry") == {}
    assert not pushed.book_dir("dry").exists() or not any(pushed.book_dir("dry").glob("push-*"))


async def test_auth_is_required_and_exit_code_2(pushed: PushStack, tmp_path: Path) -> None:
    async with httpx.AsyncClient(base_url=pushed.url, timeout=30) as client:
        for method, path in (("POST", "/v1/books/a/sync"), ("PUT", "/v1/books/a/pushes/ab/archive"),
                             ("POST", "/v1/books/a/pushes/ab/apply")):
            missing = await client.request(method, path, content=b"{}")
            wrong = await client.request(method, path, content=b"{}", headers={"Authorization": "Bearer nope"})
            assert (missing.status_code, wrong.status_code) == (401, 403), (path, missing.text, wrong.text)
    code, report = await lectern(str(copy_site(tmp_path)), "--url", pushed.url, "--book", "auth", cwd=tmp_path,
                                 env={"LECTERN_ADMIN_TOKEN": "wrong"})
    assert code == 2 and "PERMISSION_DENIED" in report["error"]
    assert not pushed.book_dir("auth").exists()


# --- one push per book --------------------------------------------------------------------

async def test_a_second_push_of_the_book_gets_409_naming_the_first(pushed: PushStack) -> None:
    files = {"docs/a.md": b"# A\n\nAlpha page.\n"}
    first = await open_push(pushed, "busy", files, holder="ci@runner-1")
    async with httpx.AsyncClient(base_url=pushed.url, headers=AUTH, timeout=60) as client:
        plans = [client.post("/v1/books/busy/sync", json={
            "files": [{"path": "docs/a.md", "sha256": sha(b"x"), "size": 1}], "holder": f"other-{i}"})
            for i in range(2)]
        second, third = await asyncio.gather(*plans)
        assert second.status_code == third.status_code == 409
        assert "ci@runner-1" in second.json()["error"]["message"]
        # The first finishes; then the book is free again.
        assert (await put_archive(pushed, "busy", first["push_id"], tar_of(files))).status_code == 200
        applied = await client.post(f"/v1/books/busy/pushes/{first['push_id']}/apply",
                                    headers={"Accept": "application/json"})
        assert applied.status_code == 200 and applied.json()["chunks_new"] == 1
        again = await client.post("/v1/books/busy/sync", json={
            "files": [{"path": "docs/a.md", "sha256": sha(files["docs/a.md"]), "size": len(files["docs/a.md"])}]})
        assert again.status_code == 200 and again.json()["up_to_date"]


async def test_two_lectern_pushes_at_once_one_gets_409(pushed: PushStack, tmp_path: Path) -> None:
    site = copy_site(tmp_path)
    runs = [lectern(str(site), "--url", pushed.url, "--book", "race", "--yes", cwd=tmp_path) for _ in range(2)]
    (code_a, a), (code_b, b) = await asyncio.gather(*runs)
    assert sorted([code_a, code_b]) == [0, 1], (a, b)
    loser = a if code_a else b
    assert "ABORTED" in loser["error"] and "is being pushed by" in loser["error"]


# --- a client killed mid-upload -------------------------------------------------------------

KILLED_CLIENT = """
import sys, time, httpx, json, hashlib
from services.ingest.push.archive import entry_header, padding
url, book, token = sys.argv[1:4]
files = json.loads(sys.stdin.read())
payload = {k: v.encode() for k, v in files.items()}
plan = httpx.post(f"{url}/v1/books/{book}/sync", headers={"Authorization": f"Bearer {token}"}, json={
    "files": [{"path": k, "sha256": hashlib.sha256(v).hexdigest(), "size": len(v)} for k, v in payload.items()],
    "holder": "doomed"}).json()
def body():
    first, second = plan["upload"][:2]
    yield entry_header(first, len(payload[first])) + payload[first] + padding(len(payload[first]))
    yield entry_header(second, len(payload[second])) + payload[second][:100]
    print("HALF", flush=True)
    time.sleep(600)
httpx.put(f"{url}/v1/books/{book}/pushes/{plan['push_id']}/archive", content=body(),
          headers={"Authorization": f"Bearer {token}", "Content-Type": "application/x-tar"}, timeout=700)
"""


async def test_a_client_killed_mid_upload_changes_nothing_and_a_re_run_completes(pushed: PushStack,
                                                                               tmp_path: Path) -> None:
    book = "killed"
    v1 = {f"docs/page-{i}.md": f"# Page {i}\n\nThe first text of page {i} about gyroscope number {i}.\n"
          for i in range(4)}
    plan = await open_push(pushed, book, {k: v.encode() for k, v in v1.items()})
    assert (await put_archive(pushed, book, plan["push_id"], tar_of({k: v.encode() for k, v in v1.items()}))
            ).status_code == 200
    async with httpx.AsyncClient(base_url=pushed.url, headers=AUTH, timeout=120) as client:
        assert (await client.post(f"/v1/books/{book}/pushes/{plan['push_id']}/apply",
                                  headers={"Accept": "application/json"})).status_code == 200
    before = await chunks(pushed.stack, book)
    assert len(before) == 4

    v2 = {k: v.replace("first", "second") + ("x" * 300) for k, v in v1.items()}
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'gen'}"}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", KILLED_CLIENT, pushed.url, book, ADMIN,
                                                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                                                env=env, cwd=tmp_path)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps(v2).encode())
    proc.stdin.close()
    assert (await asyncio.wait_for(proc.stdout.readline(), 60)).strip() == b"HALF"
    await asyncio.sleep(0.5)  # the first file reached ingest
    proc.send_signal(signal.SIGKILL)
    await proc.wait()

    # Nothing readers see changed, and the book is free long before the lease would lapse (the
    # upload broke off): a re-run sends only what did not arrive whole, and completes.
    assert await chunks(pushed.stack, book) == before
    async with httpx.AsyncClient(base_url=pushed.url, headers=AUTH, timeout=60) as client:
        for _ in range(100):
            reply = await client.post(f"/v1/books/{book}/sync", json={"holder": "rerun", "files": [
                {"path": k, "sha256": sha(v.encode()), "size": len(v.encode())} for k, v in v2.items()]})
            if reply.status_code != 409:
                break
            await asyncio.sleep(0.1)
    assert reply.status_code == 200, reply.text
    rerun = reply.json()
    assert len(rerun["changed"]) == 4 and len(rerun["upload"]) == 3, rerun
    body = tar_of({k: v2[k].encode() for k in rerun["upload"]})
    reply = await put_archive(pushed, book, rerun["push_id"], gzip.compress(body), gzipped=True)
    assert reply.status_code == 200 and reply.json()["missing"] == [], reply.text
    async with httpx.AsyncClient(base_url=pushed.url, headers=AUTH, timeout=120) as client:
        summary = (await client.post(f"/v1/books/{book}/pushes/{rerun['push_id']}/apply",
                                     headers={"Accept": "application/json"})).json()
    assert summary["chunks_changed"] == 4
    assert all(h != before.get(c, (None, None))[1] for c, (_, h) in (await chunks(pushed.stack, book)).items())


# --- hostile uploads ---------------------------------------------------------------------------

async def assert_left_nothing(p: PushStack, book: str) -> None:
    assert not list(p.book_dir(book).glob("push-*")), list(p.book_dir(book).iterdir())
    assert await chunks(p.stack, book) == {}


@pytest.mark.parametrize("path", ["../escape.md", "/etc/passwd.md", "docs\\win.md", "docs/nul\u0000.md",
                                  "docs//twice.md", "docs/./dot.md", "docs/tool.exe"])
async def test_hostile_paths_in_a_plan_are_400(pushed: PushStack, path: str) -> None:
    async with httpx.AsyncClient(base_url=pushed.url, headers=AUTH, timeout=30) as client:
        reply = await client.post("/v1/books/hostile-path/sync", json={
            "files": [{"path": path, "sha256": sha(b"x"), "size": 1}]})
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["code"] == "INVALID_ARGUMENT"
    await assert_left_nothing(pushed, "hostile-path")


@pytest.mark.parametrize(("files", "words"), [
    ({f"docs/p{i}.md": 10 for i in range(LIMITS.max_files + 1)}, "LECTERN_PUSH_MAX_FILES"),
    ({"docs/big.md": LIMITS.max_file_bytes + 1}, "LECTERN_PUSH_MAX_FILE_BYTES"),
    ({f"docs/p{i}.md": LIMITS.max_file_bytes for i in range(20)}, "LECTERN_PUSH_MAX_TOTAL_BYTES"),
])
async def test_limits_are_413(pushed: PushStack, files: dict[str, int], words: str) -> None:
    async with httpx.AsyncClient(base_url=pushed.url, headers=AUTH, timeout=30) as client:
        reply = await client.post("/v1/books/too-big/sync", json={
            "files": [{"path": k, "sha256": sha(b"x"), "size": n} for k, n in files.items()]})
    assert reply.status_code == 413 and words in reply.json()["error"]["message"], reply.text
    await assert_left_nothing(pushed, "too-big")


def link_archive(kind: bytes) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("docs/a.md")
        info.type, info.linkname = kind, "/etc/passwd"
        tar.addfile(info)
    return out.getvalue()


def bomb() -> bytes:
    """About 64 KiB of gzip that inflates to 64 MiB."""
    return gzip.compress(entry_header("docs/a.md", len(GOOD)) + b"A" * (64 * 1024 * 1024), compresslevel=9)


GOOD = b"# A\n\nA page.\n"


@pytest.mark.parametrize(("name", "declared", "body", "gzipped", "status", "words"), [
    ("symlink", GOOD, link_archive(tarfile.SYMTYPE), False, 400, "link"),
    ("hardlink", GOOD, link_archive(tarfile.LNKTYPE), False, 400, "link"),
    ("latin-1", "# Caf\u00e9\n".encode("latin-1"), None, False, 400, "not UTF-8"),
    ("binary", b"# A\n\x00\x01\x02binary", None, False, 400, "binary"),
    ("digest", GOOD, tar_of({"docs/a.md": b"# B\n\nA page.\n"}), False, 400, "SHA-256"),
    ("longer", GOOD, tar_of({"docs/a.md": GOOD + b"more"}), False, 400, "the plan said"),
    ("unasked", GOOD, tar_of({"docs/a.md": GOOD, "docs/b.md": GOOD}), False, 400, "not asked for"),
    ("escape", GOOD, tar_of({"../a.md": GOOD}), False, 400, "inside the site"),
    ("bomb", GOOD, None, True, 413, "bytes the plan allows"),
    ("not-gzip", GOOD, tar_of({"docs/a.md": GOOD}), True, 400, "gzip"),
    ("not-tar", GOOD, b"hello" * 300, False, 400, "checksum"),
    ("truncated", GOOD, tar_of({"docs/a.md": GOOD})[:517], False, 400, "ended early inside docs/a.md"),
])
async def test_hostile_uploads_get_4xx_and_leave_nothing(pushed: PushStack, name: str, declared: bytes,
                                                         body: bytes | None, gzipped: bool, status: int,
                                                         words: str) -> None:
    book = f"hostile-{name}"
    plan = await open_push(pushed, book, {"docs/a.md": declared})
    if body is None:
        body = bomb() if name == "bomb" else tar_of({"docs/a.md": declared})
    reply = await put_archive(pushed, book, plan["push_id"], body, gzipped)
    assert reply.status_code == status and words in reply.json()["error"]["message"], reply.text
    await assert_left_nothing(pushed, book)
    # The book is free again, and the refused push cannot be applied.
    async with httpx.AsyncClient(base_url=pushed.url, headers=AUTH, timeout=30) as client:
        gone = await client.post(f"/v1/books/{book}/pushes/{plan['push_id']}/apply")
        assert gone.status_code == 404, gone.text
    again = await open_push(pushed, book, {"docs/a.md": declared})
    assert again["push_id"] != plan["push_id"]


# --- the CI recipe ------------------------------------------------------------------------------

async def test_the_github_workflow_command_pushes_the_site(pushed: PushStack, tmp_path: Path) -> None:
    workflow = yaml.safe_load((ROOT / "examples" / "ci" / "lectern-sync.yml").read_text())
    steps = [s for job in workflow["jobs"].values() for s in job["steps"]]
    step = next(s for s in steps if "lectern push" in s.get("run", ""))
    assert "secrets.LECTERN_ADMIN_TOKEN" in step["env"]["LECTERN_ADMIN_TOKEN"]
    site = copy_site(tmp_path)
    workdir = site / step.get("working-directory", ".")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PATH=f"{LECTERN.parent}:{env['PATH']}", LECTERN_URL=pushed.url, LECTERN_ADMIN_TOKEN=ADMIN,
               LECTERN_BOOK="from-ci")
    proc = await asyncio.create_subprocess_exec("bash", "-e", "-c", step["run"], cwd=workdir, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 300)
    assert proc.returncode == 0, out.decode()[-3000:]
    assert len(await chunks(pushed.stack, "from-ci")) > 20
    gitlab = yaml.safe_load((ROOT / "examples" / "ci" / "gitlab-ci.yml").read_text())
    assert any("lectern push" in line for job in gitlab.values() if isinstance(job, dict)
               for line in job.get("script", []))


async def test_a_pushed_site_is_read_as_the_same_site_ingested_in_place(pushed: PushStack, tmp_path: Path) -> None:
    """A push sends what ingest reads beside the pages: the _category_ files and sidebars the
    outline follows, and the package.json that says which Docusaurus builds the site. The book it
    makes has the outline and chunks of the same site ingested where it lies."""
    code, report = await lectern(str(copy_site(tmp_path)), "--url", pushed.url, "--book", "pushed-whole", "--yes",
                                 cwd=tmp_path)
    assert code == 0, report
    local = await ingest(pushed.stack, SITE, "local-whole")
    assert not local.failed
    async with grpc.aio.insecure_channel(pushed.stack.retrieval.address) as ch:
        stub = rpb_grpc.RetrievalServiceStub(ch)
        outlines = {(book, version): await stub.GetOutline(rpb.GetOutlineRequest(book=book, version=version))
                    for book in ("pushed-whole", "local-whole") for version in ("", "1.0")}
    for version in ("", "1.0"):
        pushed_one, local_one = outlines["pushed-whole", version], outlines["local-whole", version]
        assert pushed_one.found and pushed_one.outline == local_one.outline, version
    labels = {e.label for e in outlines["pushed-whole", ""].outline.items if e.category}
    assert "Getting started" in labels  # from getting-started/_category_.json
    assert (await chunks(pushed.stack, "pushed-whole")).values() and \
        sorted((await chunks(pushed.stack, "pushed-whole")).values()) == \
        sorted((await chunks(pushed.stack, "local-whole")).values())


async def test_the_versions_given_are_the_versions_pushed(pushed: PushStack, tmp_path: Path) -> None:
    """--only-include-versions reads the site as ingest's flag does: only the versions named are
    pushed and served; a name the site lacks stops the push before anything is sent (exit 2), and
    an empty name in a plan is a 400 naming the field."""
    site = copy_site(tmp_path)
    code, report = await lectern(str(site), "--url", pushed.url, "--book", "only-v1", "--yes",
                                 "--only-include-versions", "1.0", cwd=tmp_path)
    assert code == 0, report
    async with httpx.AsyncClient(base_url=pushed.url, timeout=60) as client:
        found = await client.post("/v1/search", json={"query": "gyroscope", "book": "only-v1", "top_k": 40})
    assert found.status_code == 200 and {h["version"] for h in found.json()["results"]} == {"1.0"}, found.text
    code, report = await lectern(str(site), "--url", pushed.url, "--book", "only-v9", "--yes",
                                 "--only-include-versions", "9.9", cwd=tmp_path)
    assert code == 2 and "only_include_versions" in json.dumps(report), report
    async with httpx.AsyncClient(base_url=pushed.url, headers=AUTH, timeout=30) as client:
        reply = await client.post("/v1/books/only-empty/sync", json={
            "files": [{"path": "docs/a.md", "sha256": sha(b"x"), "size": 1}], "only_include_versions": [""]})
    assert reply.status_code == 400 and "only_include_versions" in reply.text, reply.text


def test_options_read_back_from_a_mirror_equal_those_pushed() -> None:
    """A push whose files and options equal the mirror's is up to date: options kept as JSON (a
    list for the versions) read back equal, and a copy pushed before an option existed reads as
    its default."""
    given = PushOptions(route_base_path="docs", last_version="1.0", only_include_versions=("current", "1.0"))
    assert PushOptions.from_json(json.loads(json.dumps(asdict(given)))) == given
    older = {"base_url": "", "route_base_path": "", "trailing_slash": "", "include_drafts": False}
    assert PushOptions.from_json(older) == PushOptions()


def test_a_push_sends_the_modules_tab_labels_come_from(tmp_path: Path) -> None:
    """A page's tab labels may come from a module outside the docs folder (React Native's
    src/core/TabsConstants): the push sends it, so the server reads the page's buttons alike."""
    (tmp_path / "docusaurus.config.js").write_text("module.exports = {presets: [['classic', {docs: {}}]]};")
    (tmp_path / "src" / "core").mkdir(parents=True)
    (tmp_path / "src" / "core" / "TabsConstants.js").write_text(
        "export default {langs: [{label: 'Kotlin', value: 'kotlin'}]};")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "setup.mdx").write_text(
        "import constants from '@site/src/core/TabsConstants';\n\n# Setup\n\n"
        "<Tabs values={constants.langs}>\n<TabItem value=\"kotlin\">\n\nText.\n\n</TabItem>\n</Tabs>\n")
    assert [f.path for f in site_files(tmp_path)] == ["docs/setup.mdx", "docusaurus.config.js",
                                                      "src/core/TabsConstants.js"]


def test_a_push_sends_the_files_pages_show_as_code(tmp_path: Path) -> None:
    """A file a page shows as code (raw_code) is sent with it when a server takes its kind; one of
    another kind is left out, and the push still goes."""
    (tmp_path / "docusaurus.config.js").write_text("module.exports = {presets: [['classic', {docs: {}}]]};")
    (tmp_path / "docs" / "_snippets").mkdir(parents=True)
    (tmp_path / "docs" / "_snippets" / "model.txt").write_text("class User {}\n")
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "schema.prisma").write_text("model User {}\n")
    (tmp_path / "docs" / "models.mdx").write_text(
        "import CodeBlock from '@theme/CodeBlock';\nimport model from '!!raw-loader!./_snippets/model.txt';\n"
        "import schema from '!!raw-loader!@site/examples/schema.prisma';\n\n# Models\n\n"
        "<CodeBlock>{model}</CodeBlock>\n\n<CodeBlock>{schema}</CodeBlock>\n")
    assert [f.path for f in site_files(tmp_path)] == ["docs/_snippets/model.txt", "docs/models.mdx",
                                                      "docusaurus.config.js"]
