"""Extractive answers state the fact: the cross-encoder picks the sentences, they keep the book's
reading order and their citations, each section is one source, and a model that cannot run
costs the choice of sentences, never the answer."""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import pytest

from embedding.models import ModelUnavailable
from embedding.reranker import CrossEncoder
from services.chat.answerers.extractive import (
    MAX_CANDIDATES,
    SENTENCE_TOKENS,
    ExtractiveAnswerer,
    candidates,
    extract,
)
from services.chat.answerers.passages import Kind, blocks, sentences
from services.chat.citations import verify_citations
from services.chat.evidence import Evidence, close_sections, one_per_section

IMU = "/docs/sensors/imu#calibrating-the-gyroscope"
# The section first, as search ranks it; the key sentence is its second, and the words of the
# question ("calibrate", "gyroscope") are in the other sentences, not in it: the lexical choice
# ranks it last.
CALIBRATION = Evidence(1, "c1", "sensors/imu.md", ("The inertial measurement unit", "Calibrating the gyroscope"), IMU,
                       0.9, "A gyroscope needs calibrating before Rover drives, because every gyroscope drifts. "
                       "Measure the bias at start-up by averaging 500 samples while Rover stands still, then "
                       "subtract it from every reading.\n\n"
                       "Gyroscope calibration was first described for ships in the 1920s.")
OTHER = Evidence(2, "c2", "motion/pid-tuning.md", ("PID speed control",), "/docs/motion/pid-tuning", 0.5,
                 "Start with Kp = 0.8, Ki = 0.2 and Kd = 0.05 and raise Kp until the wheels oscillate.")


@pytest.fixture(scope="module")
def scorer() -> CrossEncoder:
    model = CrossEncoder(passage_tokens=SENTENCE_TOKENS)
    if model.unavailable_reason():
        pytest.skip(f"the cross-encoder is not installed: {model.unavailable_reason()}")
    return model


async def test_the_cross_encoder_picks_the_sentence_that_states_the_fact(scorer: CrossEncoder) -> None:
    answer = await ExtractiveAnswerer(scorer).answer("How do I calibrate the gyroscope?", [CALIBRATION, OTHER])
    assert "averaging 500 samples while Rover stands still, then subtract it from every reading [1]." in answer
    assert "Kp" not in answer  # the other section's sentence answers another question
    # Reading order: whatever the scores, sentences come in the order the book has them.
    sentences = [s for s in CALIBRATION.content.replace("\n\n", " ").split(". ")]
    shown = [i for i, s in enumerate(sentences) if s.split(",")[0] in answer]
    assert shown == sorted(shown)


async def test_without_the_cross_encoder_the_lexical_choice_still_answers() -> None:
    lexical = extract("How do I calibrate the gyroscope?", [CALIBRATION, OTHER])
    assert lexical and "[1]" in lexical

    class Broken:
        calls = 0

        async def ascore(self, query: str, passages: Sequence[str]) -> list[float]:
            Broken.calls += 1
            raise ModelUnavailable("cross-encoder", "model.onnx has the wrong sha256")

    answerer = ExtractiveAnswerer(Broken())
    assert await answerer.answer("How do I calibrate the gyroscope?", [CALIBRATION, OTHER]) == lexical
    await answerer.answer("How do I calibrate the gyroscope?", [CALIBRATION, OTHER])
    assert Broken.calls == 1  # unavailable stays unavailable: not retried on every answer


PRINCIPLES = Evidence(1, "p1", "intro.md", ("Rover", "Three rules"), "/docs/intro#three-rules", 0.9,
                      "Rover follows three rules:\n\n- Stop when the bumper is pressed.\n\n"
                      "- Never drive faster than the slowest wheel allows.\n  Speed is capped per wheel.\n\n"
                      "- Return to the dock below 10% battery.\n\nThe rules are checked every tick.\n\n"
                      "Configure the cap like this:\n\n```yaml\nspeed_cap: 0.8\n```\n\n"
                      "```js\nunclosed(fence)\nrunsToTheEnd()")


def test_a_section_is_read_as_paragraphs_lists_and_code() -> None:
    read = blocks(PRINCIPLES.content)
    assert [b.kind for b in read] == [Kind.PROSE, Kind.LIST, Kind.PROSE, Kind.PROSE, Kind.CODE, Kind.CODE]
    # Items separated by blank lines are one list, and an indented line stays in its item.
    assert read[1].pieces() == ["Stop when the bumper is pressed.",
                                "Never drive faster than the slowest wheel allows. Speed is capped per wheel.",
                                "Return to the dock below 10% battery."]
    assert read[-1].quoted(1).endswith("runsToTheEnd()\n```")  # a fence never closed still closes in an answer
    assert [s.text for s in sentences(read)][:2] == ["Rover follows three rules:", "Stop when the bumper is pressed."]


class FirstIsBest:
    """Scores the sentence holding `wanted` highest, the rest low: the choice under test is what
    surrounds the best sentence, not the model's."""

    def __init__(self, wanted: str) -> None:
        self.wanted = wanted

    async def ascore(self, query: str, passages: Sequence[str]) -> list[float]:
        return [5.0 if self.wanted in p else -10.0 for p in passages]


async def test_a_sentence_ending_in_a_colon_brings_what_it_introduces() -> None:
    answer = await ExtractiveAnswerer(FirstIsBest("three rules:")).answer("What rules?", [PRINCIPLES])
    assert answer.startswith("Rover follows three rules [1]:")
    assert "- Stop when the bumper is pressed [1].\n- Never drive" in answer and "10% battery [1]." in answer
    assert verify_citations(answer, [PRINCIPLES]) == (answer, True)  # each quoted item keeps its citation
    assert answer.count("Stop when the bumper") == 1  # the items are not quoted twice
    code = await ExtractiveAnswerer(FirstIsBest("like this")).answer("How is the cap set?", [PRINCIPLES])
    assert "```yaml\nspeed_cap: 0.8\n```" in code
    # A sentence that does not end its paragraph on a colon brings nothing after it.
    plain = await ExtractiveAnswerer(FirstIsBest("checked every tick")).answer("When?", [PRINCIPLES])
    assert "```" not in plain and "- " not in plain


def test_scoring_is_bounded() -> None:
    long = Evidence(1, "x", "a.md", ("A",), "/a", 1.0, " ".join(f"Sentence number {i} is about wheels." for i in
                                                                range(200)))
    assert len(candidates("wheels", [long, long, long])) == MAX_CANDIDATES


def test_one_source_per_section() -> None:
    second_chunk = Evidence(3, "c3", "sensors/imu.md", CALIBRATION.heading_path, IMU, 0.4, "The rest of it.")
    merged = one_per_section([CALIBRATION, OTHER, second_chunk])
    assert [e.url for e in merged] == [IMU, OTHER.url] and [e.n for e in merged] == [1, 2]
    assert merged[0].content.endswith("The rest of it.")


def test_an_unanswerable_question_lists_only_close_sections() -> None:
    assert close_sections("How do I bake sourdough bread?", [CALIBRATION, OTHER]) == []
    close = close_sections("How do I calibrate the gyroscope of a drone?", [OTHER, CALIBRATION])
    assert [e.url for e in close] == [IMU] and close[0].n == 1


async def test_the_readme_question_states_the_calibration_step(gateway: str, ingested: dict[str, object]) -> None:
    async with httpx.AsyncClient(base_url=gateway, timeout=60) as client:
        reply = await client.post("/v1/chat", json={"message": "How do I calibrate the gyroscope?"},
                                  headers={"Accept": "application/json"})
        refused = await client.post("/v1/chat", json={"message": "How do I file my tax return?"},
                                    headers={"Accept": "application/json"})
    body = reply.json()
    assert "averaging 500 samples" in body["answer"] and body["grounded"], body["answer"]
    urls = [s["url"] for s in body["sources"]]
    assert len(urls) == len(set(urls))
    cited = {s["n"]: s["url"] for s in body["sources"]}
    n = int(body["answer"].split("averaging 500 samples")[1].split("[")[1].split("]")[0])
    assert cited[n].endswith("#calibrating-the-gyroscope")
    assert "`" not in body["answer"] or body["answer"].count("`") % 2 == 0
    out = refused.json()
    assert out["out_of_scope"] and out["sources"] == [] and "closest sections" not in out["answer"]
