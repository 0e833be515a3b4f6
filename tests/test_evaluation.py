"""The eval harness: its metrics on hand-made rankings, and `lectern eval` on a real stack."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evaluation.cli_eval import evaluate, passed_through
from evaluation.metrics import Hit, decision_quality, first_relevant_rank, mrr_at, ndcg_at, recall_at, relevance
from evaluation.qa import Gold, load_qa
from tests.conftest import ROOT
from tests.fake_gemini import FakeGemini

GOLD = (Gold("api/Store.md", "subscribe(listener)"),)


def test_a_subsection_chunk_counts_for_its_section_and_file_level_is_looser() -> None:
    hits = [Hit("api/Store.md", ("Store", "dispatch(action)")),
            Hit("api/Store.md", ("Store", "`subscribe(listener)`", "Arguments"))]
    assert first_relevant_rank(hits, GOLD, "section") == 2
    assert first_relevant_rank(hits, GOLD, "file") == 1
    assert recall_at(1, 2) == 0 and recall_at(5, 2) == 1 and mrr_at(10, 2) == 0.5
    assert recall_at(5, None) == 0 and mrr_at(10, None) == 0


def test_ndcg_counts_each_gold_section_once() -> None:
    hits = [Hit("api/Store.md", ("Store", "subscribe(listener)"))] * 3
    rels = relevance(hits, GOLD, "section")
    assert rels == [1, 0, 0]
    assert ndcg_at(10, rels, 1) == pytest.approx(1.0)
    assert ndcg_at(10, [0, 1], 1) == pytest.approx(1 / 1.585, rel=1e-3)


def test_out_of_scope_decision_quality() -> None:
    d = decision_quality([True, True, False, False], [True, False, True, False])
    assert (d.precision, d.recall, d.accuracy) == (0.5, 0.5, 0.5)


def test_the_sample_books_qa_set_is_valid_and_large_enough(tmp_path: Path) -> None:
    items = load_qa(ROOT / "examples" / "book" / "qa.jsonl")
    assert len(items) >= 40 and sum(i.out_of_scope for i in items) >= 5
    for item in items:
        for gold in item.gold:
            page = (ROOT / "examples" / "book" / "docs" / gold.file_path).read_text()
            assert gold.heading in page, (item.id, gold.heading)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "no id"}) + "\n")
    with pytest.raises(ValueError, match=r"bad\.jsonl:1"):
        load_qa(bad)


def test_an_unknown_query_encoder_is_refused_before_any_server_starts(capsys: pytest.CaptureFixture[str]) -> None:
    from cli.main import main

    with pytest.raises(SystemExit) as exited:
        main(["eval", "--query-encoders", "onnx-int8,fp16"])
    assert exited.value.code == 2
    assert "LECTERN_QUERY_ENCODER='fp16' is invalid" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "message"), [
    (["--embedders", "local,minilm-xl"], "LECTERN_EMBEDDER='minilm-xl' is invalid"),
    (["--rerank", "on,sometimes"], "each must be on or off"),
])
def test_unknown_eval_configurations_are_refused_before_any_server_starts(
        args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    from cli.main import main

    with pytest.raises(SystemExit) as exited:
        main(["eval", *args])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_the_report_sets_configurations_side_by_side() -> None:
    from evaluation.report import markdown
    from evaluation.runner import ModeReport

    overall = {"recall@5": 0.9, "oos_accuracy": 1.0, "false_refusals": 0.05}
    reports = [ModeReport("hybrid", overall, {"factual": overall}, embedder=e, rerank=r)
               for e in ("local", "bge-small") for r in ("on", "off")]
    chat = {"cited_gold_in_first_two": 0.9, "refusal_rate_out_of_scope": 1.0, "false_refusal_rate": 0.02,
            "grounded_rate": 1.0, "key_fact_rate": 0.75, "overview_answered_rate": None, "latency_p50_ms": 40.0}
    table = markdown(reports, [{**chat, "config": r.config} for r in reports])
    assert [r.label for r in reports] == ["hybrid (local, rerank on)", "hybrid (local, rerank off)",
                                          "hybrid (bge-small, rerank on)", "hybrid (bge-small, rerank off)"]
    rows = table.splitlines()
    assert "false_refusals" in rows[0] and "| 0.050 |" in rows[2]
    assert any(line.startswith("| bge-small, rerank off | 0.900 | 1.000 | 0.020 |") and "| 0.750 | – |" in line
               for line in rows)


def test_only_the_gemini_settings_pass_from_the_shell_and_answers_stay_extractive() -> None:
    shell = {"GEMINI_API_KEY": "k", "LECTERN_GEMINI_BASE_URL": " ", "LECTERN_RERANK": "true", "HOME": "/x"}
    assert passed_through(shell) == {"LECTERN_LLM": "extractive", "GEMINI_API_KEY": "k"}


async def test_eval_with_the_gemini_embedder_reaches_gemini_with_the_shells_key(tmp_path: Path) -> None:
    docs = tmp_path / "book" / "docs"
    docs.mkdir(parents=True)
    (docs / "wheels.md").write_text("# Wheels\n\n## Changing a tyre\n\nLoosen the four bolts, then lift the "
                                    "rover off the ground before pulling the wheel away.\n")
    (docs / "lights.md").write_text("# Lights\n\n## Headlamp colours\n\nThe headlamp shows green when charged "
                                    "and amber while the battery charges.\n")
    qa = tmp_path / "qa.jsonl"
    qa.write_text(json.dumps({"id": "q1", "question": "How do I change a tyre?", "type": "factual",
                              "gold": [{"file_path": "wheels.md", "heading": "Changing a tyre"}]}) + "\n")
    fake = FakeGemini()
    await fake.start()
    try:
        result = await evaluate(docs, qa, ["dense"], True, "rover", home=tmp_path / "home", embedders=["gemini"],
                                reranks=["off"], shell={"GEMINI_API_KEY": "k", "LECTERN_GEMINI_BASE_URL": fake.url})
    finally:
        await fake.stop()
    assert [m["config"] for m in result["modes"]] == ["gemini, rerank off"]
    assert result["questions"] == 1 and result["chat"] is not None
    reply = result["chat"]["answers"][0]  # each question's reply is kept, for reading behind the figures
    assert reply["id"] == "q1" and reply["sources"] and {"answer", "gold_in_first_two", "grounded"} <= set(reply)
    # Chunks and the question were embedded by Gemini with the shell's key; no answer was generated by it.
    assert {(r["action"], r["api_key"]) for r in fake.requests} == {("batchEmbedContents", "k")}
    tasks = {r["body"]["requests"][0]["taskType"] for r in fake.requests}
    assert tasks == {"RETRIEVAL_DOCUMENT", "RETRIEVAL_QUERY"}


def test_a_terminated_eval_shuts_down_the_postgres_it_started(tmp_path: Path) -> None:
    """SIGTERM (a CI timeout, `kill`) stops `lectern eval` as Ctrl-C does: its embedded Postgres,
    which runs apart from it, is stopped instead of outliving the run."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import psutil

    docs = tmp_path / "book" / "docs"
    docs.mkdir(parents=True)
    (docs / "wheels.md").write_text("# Wheels\n\n## Changing a tyre\n\nLoosen the four bolts first.\n")
    qa = tmp_path / "qa.jsonl"
    qa.write_text(json.dumps({"id": "q1", "question": "How do I change a tyre?", "type": "factual",
                              "gold": [{"file_path": "wheels.md", "heading": "Changing a tyre"}]}) + "\n")
    import shutil
    import tempfile

    temp = Path(tempfile.mkdtemp(prefix="lev-"))  # short: Postgres's socket path has a length limit

    def ours() -> list[psutil.Process]:
        """Postgres processes whose data lies in this test's temporary folder."""
        found = []
        for p in psutil.process_iter(["cmdline"]):
            line = p.info["cmdline"] or []
            if line and Path(line[0]).name == "postgres" and any(str(temp) in part for part in line):
                found.append(p)
        return found

    run = subprocess.Popen([sys.executable, "-m", "cli.main", "eval", "--docs", str(docs), "--qa", str(qa)],
                           cwd=ROOT, env={**os.environ, "TMPDIR": str(temp)}, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not ours() and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ours(), "the evaluation's Postgres never started"
        run.send_signal(signal.SIGTERM)
        _, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    try:
        assert run.returncode == 128 + signal.SIGTERM, err
        assert "stopped by SIGTERM" in err
        deadline = time.monotonic() + 10
        while ours() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not ours()
    finally:
        for orphan in ours():  # only when the test fails: leave no server behind
            orphan.kill()
        shutil.rmtree(temp, ignore_errors=True)


async def test_a_signal_the_shell_ignores_stays_ignored() -> None:
    """Under `nohup` SIGHUP is ignored: closing the terminal must not stop the evaluation."""
    import asyncio
    import os
    import signal

    from evaluation.cli_eval import stoppable

    async def work() -> str:
        os.kill(os.getpid(), signal.SIGHUP)
        await asyncio.sleep(0.2)
        return "finished"

    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        assert await stoppable(work()) == "finished"
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, before)
