"""Citations are checked in prose only: fenced code reaches the reader exactly as the book wrote
it, in the final text and in the stream, however the stream is cut."""

from __future__ import annotations

from services.chat.answerers.passages import SENTENCE_END, blocks, segments
from services.chat.citations import CitationFilter, verify_citations
from services.chat.evidence import Evidence
from services.ingest.book.chunker import code_fence
from services.ingest.book.fences import opening_fence

SOURCES = [Evidence(1, "a", "f.md", ("T",), "/f", 1.0, "x")]
CODE = "```bash\ndocker build -t app .\nnode -e 'console.log(process.argv[2])'\nok ? a : b\n```"
ANSWER = f"Build the image [1]. Not [2].\n\n{CODE}\n\nThen run it [1] ."


def test_the_final_text_leaves_code_as_written() -> None:
    cleaned, grounded = verify_citations(ANSWER, SOURCES)
    assert cleaned == f"Build the image [1]. Not.\n\n{CODE}\n\nThen run it [1]."
    assert not grounded  # "Not." lost its only citation; the code's lines are no sentences
    assert verify_citations(f"Run it [1]:\n\n{CODE}", SOURCES) == (f"Run it [1]:\n\n{CODE}", True)


def test_the_stream_leaves_code_as_written_wherever_it_is_cut() -> None:
    for size in (1, 2, 3, 5, 8, 13, len(ANSWER)):
        f = CitationFilter({1})
        out = "".join(f.feed(ANSWER[i:i + size]) for i in range(0, len(ANSWER), size)) + f.flush()
        assert out == ANSWER.replace(" Not [2].", " Not ."), size
        assert "process.argv[2]" in out and "[2]." not in out.split("```")[0]


def test_a_longer_fence_holds_shorter_ones() -> None:
    example = "```js\nconst answer = 42; // [2]\n```"
    assert code_fence(example) == "````" and code_fence("x = 1") == "```"
    stored = f"{code_fence(example)}md\n{example}\n{code_fence(example)}"
    [block] = blocks(f"Write it like this:\n\n{stored}")[1:]
    assert block.text == example and block.quoted(1) == stored
    answer = f"Write it like this [1]:\n\n{stored}"
    assert [code for code, _ in segments(answer)] == [False, True]
    assert verify_citations(answer, SOURCES) == (answer, True)
    f = CitationFilter({1})
    assert "".join(f.feed(c) for c in answer) + f.flush() == answer


def test_what_opens_a_fence() -> None:
    lines = ("```js", "````md", "~~~", "  ```", "text")
    assert [opening_fence(x) for x in lines] == ["```", "````", "~~~", "```", None]
    # Backticks in a backtick fence's info string make it inline code, as in CommonMark.
    assert opening_fence("```x``` is inline") is None
    assert opening_fence("`" * 100_000 + "x`") is None  # read in one pass, however long the run


def test_an_ordered_list_s_numbers_are_no_sentences() -> None:
    """A quoted step keeps its number ("2. Raise Ki [1]."): the number is no uncited sentence,
    while a number that ends a sentence inside a line still ends it."""
    steps = blocks("Tune it in order:\n\n1. Set Ki to zero.\n2. Raise Ki until it settles.")[1]
    answer = f"Tune it in order [1]:\n\n{steps.quoted(1)}"
    assert answer.endswith("1. Set Ki to zero [1].\n2. Raise Ki until it settles [1].")
    assert verify_citations(answer, SOURCES) == (answer, True)
    assert not verify_citations("Use version 2. It is faster [1].", SOURCES)[1]


def test_a_names_initial_ends_no_sentence() -> None:
    """Testing Library's learning page credits "Kent C. Dodds": the initial's period is no sentence
    end, so one citation covers the sentence that names him."""
    assert SENTENCE_END.split("A course by Kent C. Dodds. Dr. Who wrote it too.") == \
        ["A course by Kent C. Dodds.", "Dr. Who wrote it too."]
    assert verify_citations("A course by Kent C. Dodds [1]. Then run it [1].", SOURCES)[1]
    assert not verify_citations("A course by Kent C. Dodds [1]. Then run it.", SOURCES)[1]
