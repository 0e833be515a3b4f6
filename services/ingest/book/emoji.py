"""Emoji shortcodes as Docusaurus shows them: ``:point_down:`` is 👇.

Every Docusaurus site runs remark-emoji over its pages' text (not code): @docusaurus/mdx-loader
lists it among its default remark plugins. Version 2 runs remark-emoji 2.2.0 with node-emoji
1.11.0, before the heading ids are made, so a heading's id is made from the emoji (which
github-slugger drops); version 3 runs remark-emoji 4.0.1 with node-emoji 2.2.0 (emojilib 2.4.0)
after them, so the id keeps the shortcode's name. An unknown name stays as written. The names are
``emoji_names.json``, generated, not written: node-emoji 1.11.0's ``lib/emoji.json`` under "2",
and emojilib 2.4.0's ``lib`` (each name's ``char``) under "3".

remark-emoji 2 replaces with ``String.replace``, which goes on after an unknown ``:name:``;
remark-emoji 4 uses mdast-util-find-and-replace, which tries again one character after its start
("10:30:tada:" shows "10:30🎉" on 3, "10:30:tada:" on 2).
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

_SHORTCODE = re.compile(r":\+1:|:-1:|:[A-Za-z0-9_-]+:")  # remark-emoji's RE_EMOJI (JS \w is ASCII)


def emojify(text: str, docusaurus_major: int, stops: re.Pattern[str] | None = None) -> str:
    """A run of the page's text (never code: callers give text nodes only) with each known
    shortcode shown as its emoji. A match of ``stops`` is left as written and no shortcode spans
    it: an MDX expression ({":tada:"} shows as written), and on Docusaurus 3 a text directive,
    parsed first ("a:b:c" is "a:b" and the directive ":c", and shows no 🅱)."""
    if ":" not in text:
        return text
    if stops is None:
        return _replaced(text, docusaurus_major)
    out: list[str] = []
    start = 0
    for stop in stops.finditer(text):
        out += [_replaced(text[start:stop.start()], docusaurus_major), stop[0]]
        start = stop.end()
    return "".join([*out, _replaced(text[start:], docusaurus_major)])


def _replaced(text: str, docusaurus_major: int) -> str:
    names = _names("2" if docusaurus_major <= 2 else "3")
    if docusaurus_major <= 2:
        return _SHORTCODE.sub(lambda m: names.get(m[0][1:-1], m[0]), text)
    out: list[str] = []
    done = at = 0
    while match := _SHORTCODE.search(text, at):
        emoji = names.get(match[0][1:-1])
        if emoji is None:
            at = match.start() + 1
            continue
        out += [text[done:match.start()], emoji]
        done = at = match.end()
    return "".join([*out, text[done:]])


@cache
def _names(table: str) -> dict[str, str]:
    names: dict[str, dict[str, str]] = json.loads((Path(__file__).parent / "emoji_names.json").read_text("utf-8"))
    return names[table]
