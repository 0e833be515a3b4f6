"""The offline answerer: the passage of the best sources that states the answer, each sentence cited.

No language model, no network. Each of the top MAX_SOURCES sources is read as blocks
(paragraphs, lists, tables, code; answerers.passages); their sentences, list items and table rows
(cells named by their columns) are the candidates
(at most MAX_CANDIDATES, the best by shared words when there are more). The cross-encoder reads
the question with each. The best opens the answer with the sentence after it in its paragraph
(facts are often stated over two sentences); a window that ends its paragraph on a colon brings the
list, table or code the colon introduces ("three principles:" keeps its principles). Up to EXTRA more
sentences within SCORE_MARGIN of the best follow (a sentence naming code counts NAMES_CODE more).
The sources' code blocks are read too (the best MAX_CODE_CANDIDATES by shared words, identifiers
split at their capitals): the best one within SCORE_MARGIN of the best sentence is shown after the
sentence that leads into it, since a how-to answer's fact is often the option or call in the book's
example. All are written in the book's reading order, each sentence ending with [n]; a quote under
an option's heading that does not name the option is led by it. When the cross-encoder cannot run,
sentences are chosen by the question's content words (and their stems) they hold, earlier sources
and sentences first. Outline evidence (a question about the book itself) is written as a cited list
of its entries. Instructions inside documents are quoted like any other text, never acted on.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from embedding.models import ModelUnavailable
from services.chat.answerers.base import TextAnswerer, Usage
from services.chat.answerers.passages import MIN_SENTENCE, SENTENCE_END, Block, Kind, blocks, cited, sentences
from services.chat.evidence import OUTLINE, Evidence, content_words, stem
from services.chat.overview import compose
from services.chat.ports import PastTurn

log = logging.getLogger("lectern.chat.extractive")

MAX_SOURCES = 3
MAX_SENTENCES = 3  # the lexical choice's answer length
# Sentences the cross-encoder reads per answer: each is a cross-encoder call, so this bounds an
# answer's scoring CPU however long its sections are. The best by shared words go first, and more
# than this changed no answer's key facts on the dev set (16, 24 and 32 alike), only its CPU.
MAX_CANDIDATES = 16
# Code blocks the cross-encoder reads per answer, beside the sentences (each is a call too).
MAX_CODE_CANDIDATES = 3
SENTENCE_TOKENS = 96  # a sentence (or code block) with its heading path, cut for the cross-encoder
FOCUS_CONTEXT = 2  # lines read before a code block's best-matching line (the comment above a call)
WINDOW = 2  # the best sentence and the one after it in its paragraph
# More sentences, each from elsewhere, when they score near the best. Three rather than two: on
# seven books' saved chat evidence the key fact was stated in 8 more answers (none fewer) for
# about 15 more words at the median; four added 3 more for another 10 (bench-results/history.md).
EXTRA = 3
# Sentences kept beside the best: within this many logits of it (the model's scale is about
# -11 to +11; a sentence this far below the best answers a different question).
SCORE_MARGIN = 4.0
# Logits added per unit of the lexical score (shared content words) when ranking sentences.
LEXICAL_WEIGHT = 1.0
# Logits added to a sentence that names code (`an option`, `a call`, `a file`): a how-to answer in
# a book names what to use, and the cross-encoder, trained on web text, reads the name as plain
# words. On seven books' saved chat evidence: 7 more answers stated their key fact, 1 fewer
# (bench-results/history.md).
NAMES_CODE = 1.0
# Below this logit no sentence relates to the question: the answer is left empty (a refusal).
NO_ANSWER = -9.0


# A sentence opening on one of these refers back: to the sentence before it inside a paragraph, to
# its heading at a paragraph's start ("It does not require a build system" under "Counter Vanilla").
_ANAPHOR = re.compile(r"(?:It|It's|Its|This|These|They|Their)\b")
# A name in code (`blockList`): a heading that is only one names an option, a call or a file.
_CODE_NAME = re.compile(r"`[^`]+`")
_NAME_WORD = re.compile(r"\w{2,}")


class SentenceScorer(Protocol):
    """The cross-encoder's view the answerer needs (embedding.reranker.CrossEncoder)."""

    async def ascore(self, query: str, passages: Sequence[str]) -> list[float]: ...


@dataclass(frozen=True)
class Candidate:
    source_rank: int
    block: int
    position: int
    n: int
    heading_path: tuple[str, ...]
    text: str
    lexical: float

    @property
    def place(self) -> tuple[int, int, int]:
        return self.source_rank, self.block, self.position


@dataclass(frozen=True)
class Code:
    """A code block of a source, as a candidate to show."""

    source_rank: int
    block: int
    n: int
    heading_path: tuple[str, ...]
    body: Block
    lexical: float
    focus: int = 0
    """The line the cross-encoder starts reading at: near the first line sharing the most words
    with the question, so that it reads the part that matches rather than a long block's imports."""
    tab: str = ""
    """The tab the block stands in ("Kotlin", "pnpm"): what tells a question's variant of the code
    from the others, read and matched with it."""


@dataclass(frozen=True)
class Read:
    """The top sources as blocks, and every sentence and code block of them as a candidate."""

    blocks: tuple[tuple[Block, ...], ...]
    candidates: tuple[Candidate, ...]
    code: tuple[Code, ...] = ()

    def window(self, first: Candidate, size: int) -> list[Candidate]:
        """The candidate and those after it in its paragraph; a table row stands alone (the next
        row is another record). A sentence inside a paragraph that opens on a pronoun ("It only
        knows how to…") comes with the sentence before it, which says what the pronoun is."""
        kind = self.blocks[first.source_rank][first.block].kind
        if kind is Kind.TABLE:
            size = 1
        start = first.position - 1 if kind is Kind.PROSE and first.position > 0 and _ANAPHOR.match(first.text) \
            else first.position
        return [c for c in self.candidates if c.source_rank == first.source_rank and c.block == first.block
                and start <= c.position < first.position + size]

    def introduced(self, last: Candidate) -> Block | None:
        """The list or code block a paragraph's closing colon introduces."""
        own = self.blocks[last.source_rank]
        ends_paragraph = not any(c.source_rank == last.source_rank and c.block == last.block
                                 and c.position > last.position for c in self.candidates)
        if not (ends_paragraph and last.text.rstrip().endswith(":") and last.block + 1 < len(own)):
            return None
        after = own[last.block + 1]
        return after if after.kind is not Kind.PROSE else None

    def by_words(self) -> list[Candidate]:
        """The sentences the cross-encoder reads: at most MAX_CANDIDATES, the best by shared words."""
        found = list(self.candidates)
        return sorted(found, key=lambda c: -c.lexical)[:MAX_CANDIDATES] if len(found) > MAX_CANDIDATES else found

    def code_by_words(self) -> list[Code]:
        """The code blocks the cross-encoder reads: the best MAX_CODE_CANDIDATES by shared words."""
        return sorted(self.code, key=lambda c: (-c.lexical, c.source_rank, c.block))[:MAX_CODE_CANDIDATES]

    def lead(self, code: Code) -> Candidate | None:
        """The sentence that leads into a code block: the last of the paragraph just before it."""
        before = code.block - 1
        if before < 0 or self.blocks[code.source_rank][before].kind is not Kind.PROSE:
            return None
        leading = [c for c in self.candidates if c.source_rank == code.source_rank and c.block == before]
        return max(leading, key=lambda c: c.position) if leading else None


_IDENTIFIER_PART = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def code_words(text: str) -> set[str]:
    """A code block's words, identifiers split too: `extraArgument` gives "extra" and "argument"."""
    identifiers = content_words(text, keep_case=True)
    found = {stem(w.lower()) for w in identifiers}
    for identifier in identifiers:
        found.update(stem(part.lower()) for part in _IDENTIFIER_PART.findall(identifier))
    return found


def _focus(code: str, wanted: set[str]) -> int:
    """The line a code block is read from: FOCUS_CONTEXT lines before its first line sharing the
    most words with the question (a comment or the call it asks about); 0 when that is near the top."""
    shared = [len(wanted & code_words(line)) for line in code.split("\n")]
    best = max(shared, default=0)
    line = shared.index(best) if best else 0
    return line - FOCUS_CONTEXT if line > FOCUS_CONTEXT else 0


def _tab_of(own: Sequence[Block], b: int) -> str:
    """The tab a code block stands in: the label line ingest writes just before a tab's content
    ("Kotlin:"), or "" when the paragraph before it is prose."""
    before = own[b - 1] if b > 0 else None
    if before is None or before.kind is not Kind.PROSE or len(before.lines) != 1:
        return ""
    line = before.lines[0].strip()
    return line[:-1] if line.endswith(":") and len(line) < MIN_SENTENCE * 3 and not SENTENCE_END.search(line) else ""


def _under(heading_path: tuple[str, ...], block: Block) -> tuple[str, ...]:
    """A candidate's headings: its section's, then the sub-heading inside it that the block
    stands under (what the cross-encoder reads the candidate with)."""
    return (*heading_path, block.under) if block.under else heading_path


def read(question: str, sources: Sequence[Evidence]) -> Read:
    """The top sources' blocks, sentences and code blocks, each with its lexical score."""
    wanted = {stem(w) for w in content_words(question)}
    read_blocks: list[tuple[Block, ...]] = []
    found: list[Candidate] = []
    code: list[Code] = []
    for rank, source in enumerate(sources[:MAX_SOURCES]):
        heading_words = {stem(w) for w in content_words(" ".join(source.heading_path))}
        own = tuple(blocks(source.content))
        read_blocks.append(own)
        for b, block in enumerate(own):
            if block.kind is Kind.CODE and block.shows_code:
                tab = _tab_of(own, b)
                code.append(Code(rank, b, source.n, _under(source.heading_path, block), block,
                                 len(wanted & code_words(f"{tab}\n{block.text}")), _focus(block.text, wanted), tab))
        for order, s in enumerate(sentences(list(own))):
            stems = {stem(w) for w in content_words(s.text)}
            overlap = len(wanted & stems) + 0.5 * len(wanted & heading_words)
            score = overlap / (1 + 0.35 * rank) + (0.6 if order == 0 else 0.0) - 0.02 * order
            found.append(Candidate(rank, s.block, s.position, source.n, _under(source.heading_path, own[s.block]),
                                   s.text, score if overlap or order == 0 else 0.0))
    return Read(tuple(read_blocks), tuple(found), tuple(code))


def candidates(question: str, sources: Sequence[Evidence]) -> list[Candidate]:
    """The sentences the cross-encoder reads for this question (Read.by_words)."""
    return read(question, sources).by_words()


def _write(source: Read, chosen: Sequence[Sequence[Candidate]], shown: Code | None = None) -> str:
    """Paragraphs of cited sentences in reading order, each followed by what its colon introduces
    or by the code block it leads into; a shown code block that no sentence leads into closes the
    answer under its cited heading."""
    lead = source.lead(shown) if shown is not None else None
    windows = [list(w) for w in chosen]
    if lead is not None and not any(lead in w for w in windows):
        windows.append([lead])
    parts = []
    before: Candidate | None = None
    for window in sorted(windows, key=lambda w: w[0].place):
        text = _labelled(window[0], before, " ".join(cited(c.text, c.n) for c in window))
        before = window[-1]
        introduced = source.introduced(window[-1])
        focus = 0
        if introduced is None and shown is not None and window[-1] == lead:
            introduced, focus = shown.body, shown.focus
        if introduced is not None:
            parts.append(f"{text}\n\n{introduced.quoted(window[-1].n, focus)}")
        else:  # what the colon introduces is not in the source (the section's next chunk): none promised
            parts.append(f"{text[:-1]}." if text.endswith("]:") else text)
    if shown is not None and lead is None:
        heading = next((h for h in reversed(shown.heading_path) if h.strip()), "").rstrip(".!?:; ")
        named = ", ".join(part for part in (heading, shown.tab) if part)  # "Register the package, Kotlin"
        lead_in = cited(f"{named}:", shown.n) if named else f"[{shown.n}]:"
        parts.append(f"{lead_in}\n\n{shown.body.quoted(shown.n, shown.focus)}")
    return "\n\n".join(parts)


def _labelled(first: Candidate, before: Candidate | None, text: str) -> str:
    """The quote led by the heading it stands under when it opens a paragraph on a pronoun:
    "Counter Vanilla: It does not require a build system", or when that heading is a name in code
    the quote does not say (an option reference's "`blockList`: Files whose paths match…"). Not
    when the same heading's text was quoted just before, nor under a heading that is a question
    (an FAQ's) or that the sentence already names."""
    heading = next((h for h in reversed(first.heading_path) if h.strip()), "").strip()
    if not heading or heading.endswith("?") or heading.replace("`", "").lower() in text.replace("`", "").lower():
        return text
    if _CODE_NAME.fullmatch(heading):
        # Named when every word of the name is ("`<BrowserOnly/>`" in "The `<BrowserOnly>` component").
        words = {w.lower() for w in _NAME_WORD.findall(heading)}
        if (before is not None and before.heading_path == first.heading_path) \
                or words <= {w.lower() for w in _NAME_WORD.findall(text)}:
            return text
    elif first.position > 0 or not _ANAPHOR.match(first.text):  # inside a paragraph it names the sentence before
        return text
    elif before is not None and (before.source_rank, before.block + 1) == (first.source_rank, first.block):
        return text  # the paragraph before, quoted just before, may name what the pronoun means
    return f"{heading.rstrip('.!:;')}: {text}"


def extract(question: str, sources: Sequence[Evidence]) -> str:
    """The lexical choice: a short answer of cited sentences; "" when none relates to the question."""
    source = read(question, sources)
    best = sorted((c for c in source.candidates if c.lexical > 0), key=lambda c: -c.lexical)
    return _write(source, [[c] for c in best[:MAX_SENTENCES]])


def _passage(c: Candidate | Code) -> str:
    headings = " > ".join(h for h in c.heading_path if h.strip())
    if isinstance(c, Code):
        text = "\n".join([*([f"{c.tab}:"] if c.tab else []), *c.body.text.split("\n")[c.focus:]])
    else:
        text = c.text.replace("`", "")
    return f"{headings}\n{text}" if headings else text


def choose(source: Read, ranked: Sequence[Candidate]) -> list[list[Candidate]]:
    """The best candidate's window, then up to EXTRA single sentences not already quoted, here or
    word for word from another source."""
    chosen: list[list[Candidate]] = []
    quoted: set[tuple[int, int, int]] = set()
    said: set[str] = set()  # books repeat sentences across pages (a migration guide quotes the API page)
    for c in ranked:
        if len(chosen) > EXTRA:
            break
        if c.place in quoted or c.text in said:
            continue
        window = [w for w in source.window(c, WINDOW if not chosen else 1) if w == c or w.text not in said]
        quoted.update(w.place for w in window)
        said.update(w.text for w in window)
        introduced = source.introduced(window[-1])
        if introduced is not None:  # its items are quoted with it, never again on their own
            quoted.update((c.source_rank, window[-1].block + 1, p) for p in range(len(introduced.pieces())))
        chosen.append(window)
    return chosen


async def extract_scored(question: str, sources: Sequence[Evidence], scorer: SentenceScorer) -> str:
    """The cross-encoder's choice of cited passages; "" when none relates to the question."""
    source = read(question, sources)
    found, code = source.by_words(), source.code_by_words()
    if not found and not code:
        return ""
    read_too: list[Candidate | Code] = [*found, *code]
    every = await scorer.ascore(question, [_passage(c)[:SENTENCE_TOKENS * 8] for c in read_too])
    scores, code_scores = every[:len(found)], every[len(found):]
    # Code counts as evidence too: sections that are only code (a CLI reference's usage block), or
    # whose code is what answers, are answered with their code.
    if max([*scores, *code_scores]) < NO_ANSWER:
        return ""
    best = max(scores) if scores else max(code_scores)
    # The question's own words break the model's near-ties: on the Redux dev set they carried key
    # facts the model alone ranked a little lower. A sentence naming code counts a little more in
    # the margin and the floor too: kept out of the floor, it lost two of the key facts it brings
    # on the held-out books (Metro's `HttpStore`, Docusaurus's `additionalLanguages`).
    weighed = [s + (NAMES_CODE if _CODE_NAME.search(c.text) else 0.0) for s, c in zip(scores, found, strict=True)]
    kept = [(w + LEXICAL_WEIGHT * c.lexical, c) for w, c in zip(weighed, found, strict=True)
            if w >= max(best - SCORE_MARGIN, NO_ANSWER)]
    chosen = choose(source, [c for _, c in sorted(kept, key=lambda p: -p[0])])
    return _write(source, chosen, _code_to_show(source, chosen, code, code_scores, best))


def _code_to_show(source: Read, chosen: Sequence[Sequence[Candidate]], code: Sequence[Code],
                  scores: Sequence[float], best: float) -> Code | None:
    """The best-scoring code block near the best sentence's score, unless a colon already shows it
    or the same code from another page (an i18n tutorial and a Crowdin guide share a command)."""
    shown = {b.text for w in chosen if (b := source.introduced(w[-1])) is not None}
    near = [(s, c) for s, c in zip(scores, code, strict=True) if s >= best - SCORE_MARGIN and c.body.text not in shown]
    return max(near, key=lambda p: p[0])[1] if near else None


def pieces(text: str, words_per_piece: int = 4) -> list[str]:
    tokens = re.findall(r"\S+\s*", text)
    return ["".join(tokens[i:i + words_per_piece]) for i in range(0, len(tokens), words_per_piece)]


class ExtractiveAnswerer(TextAnswerer):
    """The Answerer used when no language model is configured."""

    name = "extractive"

    def __init__(self, scorer: SentenceScorer | None = None) -> None:
        self.scorer = scorer

    async def answer(self, question: str, sources: Sequence[Evidence]) -> str:
        if sources and all(s.kind == OUTLINE for s in sources):
            return compose(sources)
        if self.scorer is not None:
            try:
                return await extract_scored(question, sources, self.scorer)
            except ModelUnavailable as exc:  # missing or altered files: they stay so until a restart
                log.warning("cross-encoder unavailable; choosing sentences by words", extra={"error": exc.reason})
                self.scorer = None
            except Exception as exc:  # a model that fails must never cost the answer
                log.warning("sentence scoring failed; choosing sentences by words", extra={"error": str(exc)})
        return extract(question, sources)

    async def stream(self, question: str, sources: Sequence[Evidence], history: Sequence[PastTurn], *,
                     selection: bool, usage: Usage) -> AsyncIterator[str]:
        for piece in pieces(await self.answer(question, sources)):
            yield piece
