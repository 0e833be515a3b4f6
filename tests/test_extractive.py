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
    MAX_CODE_CANDIDATES,
    SENTENCE_TOKENS,
    ExtractiveAnswerer,
    _passage,
    candidates,
    code_words,
    extract,
    read,
)
from services.chat.answerers.passages import MAX_CODE_LINES, Kind, blocks, cited, sentences
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


# A pronoun inside a paragraph names the sentence before it; at a paragraph's start, its heading.
COUNTERS = Evidence(1, "c7", "examples.md", ("Examples", "Counter Vanilla"), "/docs/examples#counter-vanilla", 1.0,
                    "Run the example from its folder.\n\n"
                    "It needs no build system and shows the raw API. Open its page in any browser.")
STORE = Evidence(1, "c8", "store.md", ("The store", "Dispatching"), "/docs/store#dispatching", 1.0,
                 "The store is a plain object. It only knows how to dispatch actions synchronously. "
                 "Middleware adds the rest.")


async def test_a_quote_that_opens_on_a_pronoun_says_what_the_pronoun_is() -> None:
    led = await ExtractiveAnswerer(FirstIsBest("no build system")).answer("Which needs no build?", [COUNTERS])
    assert led.startswith("Counter Vanilla: It needs no build system and shows the raw API [1].")
    assert verify_citations(led, [COUNTERS]) == (led, True)
    inside = await ExtractiveAnswerer(FirstIsBest("only knows")).answer("What can it do?", [STORE])
    assert inside.startswith("The store is a plain object [1]. It only knows how to dispatch")  # not "Dispatching:"
    faq = Evidence(1, "c6", "faq.md", ("FAQ", "Why a single store?"), "/docs/faq#why", 1.0, "It keeps one truth.")
    assert await ExtractiveAnswerer(FirstIsBest("truth")).answer("Why?", [faq]) == "It keeps one truth [1]."


def _stored(markdown: str) -> str:
    """A section's content as ingest stores it (tables as "| a | b |" rows, header first)."""
    from services.ingest.book.chunker import render
    from services.ingest.book.parser import parse_page

    return "\n\n".join(render(b) for b in parse_page(markdown).blocks)


TABLE = Evidence(1, "c9", "options.md", ("Options", "Print Width"), "/docs/options#print-width", 1.0, _stored(
    "Specify the line length that the printer will wrap on:\n\n"
    "| Default | CLI Override | API Override |\n| --- | --- | --- |\n"
    "| `80` | `--print-width <int>` | `printWidth: <int>` |\n| | `--end-of-line <lf\\|cr>` | |\n"))


def test_a_table_is_read_as_rows_whose_cells_are_named_by_their_columns() -> None:
    read = blocks(TABLE.content)
    assert [b.kind for b in read] == [Kind.PROSE, Kind.TABLE]
    assert read[1].pieces() == ["Default: `80`; CLI Override: `--print-width <int>`; API Override: `printWidth: <int>`",
                                "CLI Override: `--end-of-line <lf|cr>`"]  # an empty cell is left out, a pipe kept
    assert blocks("| a | b |\n|  |  |\n| 1 | 2 |")[0].pieces() == ["a: 1; b: 2"]  # an empty row says nothing
    # A cell's full stop before the next cell goes (Capacitor's "Not available on Android 15+.").
    assert blocks("| Prop | Description | Default |\n| `color` | Hex. Not on Android 15+. | #000. |")[0].pieces() == [
        "Prop: `color`; Description: Hex. Not on Android 15+; Default: #000."]
    # A pattern, a version or an abbreviation keeps its full stop.
    assert blocks("| Pattern | Means | Note |\n| . | any one | etc. |\n| \\. | a dot | fast, slow, etc. |\n"
                  "| 1.0. | e.g. | x |")[0].pieces() == [
        "Pattern: .; Means: any one; Note: etc.", "Pattern: \\.; Means: a dot; Note: fast, slow, etc.",
        "Pattern: 1.0.; Means: e.g.; Note: x"]


async def test_a_table_row_is_a_statement_and_a_colon_brings_the_table() -> None:
    answer = await ExtractiveAnswerer(FirstIsBest("wrap on:")).answer("What is the default print width?", [TABLE])
    assert answer.startswith("Specify the line length that the printer will wrap on [1]:\n\n- Default: `80`;")
    assert verify_citations(answer, [TABLE]) == (answer, True)
    row = await ExtractiveAnswerer(FirstIsBest("Default: 80")).answer("What is the default print width?", [TABLE])
    assert "Default: `80`; CLI Override: `--print-width <int>`; API Override: `printWidth: <int>` [1]." in row


class Recording:
    """Scores every passage 0 and keeps what the cross-encoder was given."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def ascore(self, query: str, passages: Sequence[str]) -> list[float]:
        self.seen += passages
        return [0.0] * len(passages)


async def test_a_sentence_is_scored_under_the_sub_heading_it_stands_under() -> None:
    """An API page's H3 holds an H4 per option; a sentence that does not name its option
    ("The number of workers ...") is read with it."""
    options = Evidence(1, "c10", "Configuration.md", ("Configuring Metro", "General Options"),
                       "/docs/configuration#general-options", 1.0,
                       "Options every project has.\n\n#### `maxWorkers`\n\nType: `number`\n\n"
                       "The number of workers to use for parallel processing. Defaults to half the cores.")
    assert [b.under for b in blocks(options.content)] == ["", "`maxWorkers`", "`maxWorkers`"]
    scorer = Recording()
    await ExtractiveAnswerer(scorer).answer("How many workers by default?", [options])
    assert "Configuring Metro > General Options\nOptions every project has." in scorer.seen
    assert "Configuring Metro > General Options > `maxWorkers`\nDefaults to half the cores." in scorer.seen


async def test_a_table_row_is_quoted_alone() -> None:
    """The sentence after the best one often finishes its fact; the row after a row is another record."""
    answer = await ExtractiveAnswerer(FirstIsBest("Default: 80")).answer("Default width?", [TABLE])
    assert "--end-of-line" not in answer


async def test_a_sentence_two_pages_share_is_quoted_once() -> None:
    """A migration guide repeats the API page's sentence word for word: quoting it twice would
    spend the answer's room on nothing new."""
    said = "The deprecation is only a visual strikethrough, with no runtime warnings."
    api = Evidence(1, "a1", "api/createStore.md", ("createStore", "Deprecation"), "/docs/api/createstore#deprecation",
                   1.0, f"{said} Use `legacy_createStore` to keep the old name without it.")
    guide = Evidence(2, "g1", "usage/migrating.md", ("Migrating", "Core"), "/docs/usage/migrating#core", 0.9,
                     f"{said} Most apps should move to `configureStore`.")
    answer = await ExtractiveAnswerer(FirstIsBest("strikethrough")).answer("Is createStore deprecated?", [api, guide])
    assert answer.count("strikethrough") == 1 and "legacy_createStore" in answer


class Scripted:
    """Scores each passage by the first listed text it holds (default otherwise): which sentence or
    code block the model prefers is set by the test, the choice around it is under test."""

    def __init__(self, scores: dict[str, float], default: float = -10.0) -> None:
        self.scores, self.default = scores, default

    async def ascore(self, query: str, passages: Sequence[str]) -> list[float]:
        return [next((v for k, v in self.scores.items() if k in p), self.default) for p in passages]


THUNKS = Evidence(1, "t1", "usage/thunks.md", ("Thunks", "Injecting a service"), "/docs/usage/thunks#injecting", 0.9,
                  "Thunks often need an API client. Importing it in every file couples them to it.\n\n"
                  "The store can hand the client to every thunk instead. Set it once when the store is made.\n\n"
                  "```js\nconst store = makeStore({\n  thunk: { extraArgument: api },\n})\n```\n\n"
                  "- Tests pass a fake client the same way.\n\n"
                  "```js\nmakeStore({ thunk: { extraArgument: fakeApi } })\n```")


FACETS = Evidence(1, "f1", "api/store.md", ("Store", "What the store sets up"), "/docs/api/store#setup", 0.9,
                  "The store adds the thunk middleware.\n\nIt connects the DevTools extension.\n\n"
                  "It checks for mutations in development.\n\nIt checks that actions are serializable.\n\n"
                  "It batches notifications of subscribers.")


async def test_an_answer_quotes_the_best_sentence_and_three_more_places_near_it() -> None:
    """A question often asks for several facts that the book states in separate paragraphs
    ("what does the store set up?"); the four best are quoted, each once, the fifth is not."""
    scorer = Scripted({"thunk": 5.0, "DevTools": 4.8, "mutations": 4.6, "serializable": 4.4, "batches": 4.2})
    answer = await ExtractiveAnswerer(scorer).answer("What does the store set up?", [FACETS])
    assert all(answer.count(fact) == 1 for fact in ("thunk", "DevTools", "mutations", "serializable"))
    assert "batches" not in answer


async def test_a_sentence_that_names_code_counts_a_little_more() -> None:
    """A how-to answer names what to use; the cross-encoder reads `immutableCheck` as a plain word,
    so a sentence naming code gets NAMES_CODE logits more: here it passes a sentence the model put
    a little above it, but not one it put far above."""
    named = Evidence(1, "f1", "api/store.md", ("Store", "What the store sets up"), "/docs/api/store#setup", 0.9,
                     "The store adds the thunk middleware.\n\nIt connects the DevTools extension.\n\n"
                     "It checks for mutations in development.\n\nIt checks that actions are serializable.\n\n"
                     "Turn a check off with `immutableCheck: false`.")
    scores = {"thunk": 6.0, "DevTools": 5.8, "mutations": 5.6, "serializable": 4.5, "immutableCheck": 4.0}
    answer = await ExtractiveAnswerer(Scripted(scores)).answer("What does the store set up?", [named])
    assert "`immutableCheck: false`" in answer and "serializable" not in answer
    far = await ExtractiveAnswerer(Scripted({**scores, "immutableCheck": 2.0})).answer(
        "What does the store set up?", [named])
    assert "immutableCheck" not in far and "serializable" in far


async def test_a_quote_under_an_option_heading_is_led_by_the_option_it_does_not_name() -> None:
    """An option reference describes each option under its own heading without naming it again;
    quoted alone, "Files whose paths match are hidden" would not say which option does it."""
    options = Evidence(1, "m1", "configuration.md", ("Configuring Metro", "Resolver Options"),
                       "/docs/configuration#blocklist", 0.9,
                       "#### `blockList`\n\nType: `RegExp`\n\nFiles whose paths match are hidden from Metro. "
                       "They cannot be imported.\n\n#### `assetExts`\n\nType: `Array<string>`\n\n"
                       "Set `assetExts` to bundle more kinds of files.")
    answer = await ExtractiveAnswerer(Scripted({"hidden": 5.0, "bundle more": 3.0})).answer(
        "How do I hide folders from Metro?", [options])
    assert answer.startswith(
        "`blockList`: Files whose paths match are hidden from Metro [1]. They cannot be imported [1].")
    assert "\n\nSet `assetExts` to bundle more kinds of files [1]." in answer  # it names its option itself
    component = Evidence(1, "c1", "api.md", ("API", "Components"), "/docs/api#browseronly", 0.9,
                         "#### `<BrowserOnly/>`\n\n"
                         "The `<BrowserOnly>` component renders its children in the browser only.")
    said = await ExtractiveAnswerer(Scripted({"browser only": 5.0})).answer("How do I skip the server?", [component])
    assert said.startswith("The `<BrowserOnly>` component")  # it names its heading's words already
    assert verify_citations(answer, [options]) == (answer, True)


async def test_a_code_block_near_the_best_sentence_is_shown_after_the_sentence_leading_into_it() -> None:
    scorer = Scripted({"extraArgument: api": 4.0, "need an API client": 6.0})
    answer = await ExtractiveAnswerer(scorer).answer("Which option hands every thunk an API client?", [THUNKS])
    # The sentence that leads into the code is quoted with it, though the model did not choose it,
    # and everything keeps the book's reading order.
    assert answer.index("need an API client [1].") < answer.index("Set it once when the store is made [1].") \
        < answer.index("```js\nconst store = makeStore({\n  thunk: { extraArgument: api },\n})\n```")
    assert verify_citations(answer, [THUNKS]) == (answer, True)
    assert "fakeApi" not in answer  # one code block at most
    far = await ExtractiveAnswerer(Scripted({"extraArgument: api": 1.0, "need an API client": 6.0})).answer(
        "Which option hands every thunk an API client?", [THUNKS])
    assert "```" not in far  # more than SCORE_MARGIN below the best sentence: another matter


async def test_a_code_block_no_sentence_leads_into_closes_the_answer_under_its_heading() -> None:
    scorer = Scripted({"fakeApi": 5.0, "need an API client": 6.0})
    answer = await ExtractiveAnswerer(scorer).answer("How do tests pass a fake client?", [THUNKS])
    assert answer.endswith("Injecting a service [1]:\n\n```js\nmakeStore({ thunk: { extraArgument: fakeApi } })\n```")
    assert verify_citations(answer, [THUNKS]) == (answer, True)
    for heading in ("Why inject a service?", "Step 2. Inject the service"):
        asked = Evidence(1, "t1", THUNKS.file_path, ("Thunks", heading), THUNKS.url, 0.9, THUNKS.content)
        answer = await ExtractiveAnswerer(scorer).answer("How do tests pass a fake client?", [asked])
        assert "extraArgument: fakeApi" in answer  # a heading's own marks leave no sentence uncited
        assert verify_citations(answer, [asked]) == (answer, True), answer


async def test_sources_that_are_only_code_are_answered_with_it() -> None:
    usage = Evidence(1, "u", "cli.md", ("CLI", "Running only changed tests"), "/docs/cli#changed", 0.9,
                     "```bash\njest --onlyChanged\n```")
    answer = await ExtractiveAnswerer(Scripted({"onlyChanged": 3.0})).answer("Run changed tests only?", [usage])
    assert answer == "Running only changed tests [1]:\n\n```bash\njest --onlyChanged\n```"
    assert verify_citations(answer, [usage]) == (answer, True)
    assert await ExtractiveAnswerer(Scripted({}, default=-10.0)).answer("Bread?", [usage]) == ""  # unrelated


async def test_the_model_reads_a_long_code_block_where_it_matches_the_question() -> None:
    """Redux Toolkit's validateStatus example: the comment and call that answer sit after a dozen
    lines of setup, past what the model reads of a block. It reads from just before the line
    sharing most words with the question, and a block it scores well is an answer even when no
    sentence is (no refusal of a question the book answers in code)."""
    setup = "".join(f"import {{ part{i} }} from './part{i}'\n" for i in range(40))
    code = (f"```ts\n{setup}// the backend always answers 200 but sets isError\n"
            "validateStatus: (r, result) => !result.isError\n```")
    source = Evidence(1, "v", "api/fetch.md", ("fetchBaseQuery", "Non-standard status codes"), "/docs/api/fetch#non",
                      0.9, f"You can customize this behavior.\n\n{code}")
    question = "Our backend always answers 200 with an isError flag. How do those count as errors?"
    [candidate] = read(question, [source]).code
    assert "validateStatus" in _passage(candidate)[:SENTENCE_TOKENS * 8] and "part0" not in _passage(candidate)
    answer = await ExtractiveAnswerer(Scripted({"validateStatus": 2.0})).answer(question, [source])
    assert "!result.isError" in answer and answer.startswith("You can customize this behavior [1].")
    assert verify_citations(answer, [source]) == (answer, True)


async def test_a_code_block_with_nothing_to_show_is_never_shown() -> None:
    # Only a magic comment (the site shows an empty block), or only the tail of a statement the
    # chunk before holds: the model may like its heading, but there is no code to show.
    for code in ("```js\n// highlight-next-line\n```", "```js\n  })\n```", "```js\n```"):
        source = Evidence(1, "e", "a.md", ("Store", "Configuring the store"), "/a", 0.9,
                          f"Middleware is added by default.\n\n{code}")
        answer = await ExtractiveAnswerer(Scripted({"Middleware": 5.0}, default=4.0)).answer("Store?", [source])
        assert answer == "Middleware is added by default [1]."


async def test_code_a_colon_already_brings_is_not_shown_twice() -> None:
    scorer = Scripted({"like this": 6.0, "speed_cap": 5.0})
    answer = await ExtractiveAnswerer(scorer).answer("How is the cap set?", [PRINCIPLES])
    assert answer.count("speed_cap: 0.8") == 1 and "runsToTheEnd" not in answer
    # The same code on another page (a tutorial and a guide share a command) is not shown again.
    tutorial = Evidence(1, "t", "i18n/tutorial.md", ("i18n", "Start your site"), "/docs/i18n/tutorial#start", 0.9,
                        "Start your site in French:\n\n```bash\nnpm run start -- --locale fr\n```")
    crowdin = Evidence(2, "c", "i18n/crowdin.md", ("Crowdin", "Download"), "/docs/i18n/crowdin#download", 0.8,
                       "Download the translations.\n\n```bash\nnpm run start -- --locale fr\n```")
    twice = await ExtractiveAnswerer(Scripted({"Start your site": 6.0, "--locale": 5.0})).answer(
        "How do I start the French site?", [tutorial, crowdin])
    assert twice.count("npm run start -- --locale fr") == 1, twice


def test_quoted_code_starts_at_a_statement_and_ends_at_a_blank_line() -> None:
    # The tail of a block the chunk before holds ("})"), then more lines than an answer shows.
    body = ["  })", "", *[f"  step{i}()" for i in range(MAX_CODE_LINES - 6)], "", *[f"  more{i}()" for i in range(10)]]
    quoted = blocks("```js\n" + "\n".join(body) + "\n```")[0].quoted(1).split("\n")
    assert quoted[1] == "step0()"  # the closing tail dropped, the indent the chunk began with removed
    assert quoted[-2] == f"step{MAX_CODE_LINES - 7}()" and quoted[-1] == "```"  # cut at the blank line
    # A longer tail ("}, [deps]);", a React effect's end) is skipped to the next statement.
    tail = ["  }, [route.params?.post]);", "", "  return (", "    <View />", "  );", "}"]
    assert blocks("```js\n" + "\n".join(tail) + "\n```")[0].quoted(1).split("\n")[1:3] == ["  return (", "    <View />"]


def test_code_is_matched_by_its_identifiers_words() -> None:
    assert {"extra", "argument"} <= code_words("thunk: { extraArgument: api }")
    many = Evidence(1, "m", "a.md", ("A",), "/a", 1.0, "\n\n".join(f"```js\nuse{i}()\n```" for i in range(8))
                    + "\n\n```js\nconfigureStore({ extraArgument })\n```")
    code = read("Where does the extra argument go?", [many]).code_by_words()
    assert len(code) == MAX_CODE_CANDIDATES and "extraArgument" in code[0].body.lines[1]


def test_every_sentence_keeps_its_citation_whatever_its_closing_marks() -> None:
    # A book's typo ("method..") used to leave "method. [1]." — a sentence without its citation.
    text = cited("It returns the updated method.. Is it sync?! Yes", 2)
    assert text == "It returns the updated method [2]. Is it sync [2]! Yes [2]."
    assert verify_citations(text, [OTHER]) == (text, True)


async def test_a_colon_whose_list_is_not_in_the_source_promises_nothing() -> None:
    cut = Evidence(1, "p1", "intro.md", ("Rover", "Three rules"), "/docs/intro#three-rules", 0.9,
                   "Rover is careful. Rover follows three rules:")  # the chunk ends before the list
    answer = await ExtractiveAnswerer(FirstIsBest("three rules:")).answer("What rules?", [cut])
    assert answer.endswith("Rover follows three rules [1].")
    assert verify_citations(answer, [cut]) == (answer, True)


def test_scoring_is_bounded() -> None:
    long = Evidence(1, "x", "a.md", ("A",), "/a", 1.0, " ".join(f"Sentence number {i} is about wheels." for i in
                                                                range(200)))
    assert len(candidates("wheels", [long, long, long])) == MAX_CANDIDATES


def test_one_source_per_section() -> None:
    second_chunk = Evidence(3, "c3", "sensors/imu.md", CALIBRATION.heading_path, IMU, 0.4, "The rest of it.")
    merged = one_per_section([CALIBRATION, OTHER, second_chunk])
    assert [e.url for e in merged] == [IMU, OTHER.url] and [e.n for e in merged] == [1, 2]
    assert merged[0].content.endswith("The rest of it.")
    # Two sections with the same headings on one page (their anchors differ) stay two sources.
    repeated = Evidence(4, "c4", "sensors/imu.md", CALIBRATION.heading_path, f"{IMU}-1", 0.3, "Another section.")
    assert [e.url for e in one_per_section([CALIBRATION, repeated])] == [IMU, f"{IMU}-1"]


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


TABBED = Evidence(1, "r1", "android/packages.md", ("Native modules", "Register the package"),
                  "/docs/android/packages#register-the-package", 0.9,
                  "Add the package to the list the application returns.\n\nJava:\n\n"
                  "```java\nprotected List<ReactPackage> getPackages() {\n  return packages;\n}\n```\n\nKotlin:\n\n"
                  "```kotlin\noverride fun getPackages(): List<ReactPackage> = packages\n```")


async def test_code_in_tabs_is_read_with_its_tab_and_named_by_it() -> None:
    """A book shows one example per language in tabs ("Java:", "Kotlin:" before each block): the
    model reads each block with its tab, so a question about Kotlin can get the Kotlin block, and
    the answer says which tab it quotes."""
    scorer = Scripted({"Kotlin:\noverride fun": 5.0, "the list the application returns": 4.0})
    answer = await ExtractiveAnswerer(scorer).answer("How do I register the package in Kotlin?", [TABBED])
    assert "Register the package, Kotlin [1]:\n\n```kotlin\noverride fun getPackages()" in answer
    assert "```java" not in answer
    found = read("How do I register the package in Kotlin?", [TABBED]).code
    assert [(c.tab, c.lexical) for c in found] == [("Java", 1), ("Kotlin", 2)]  # the tab's name is matched too
