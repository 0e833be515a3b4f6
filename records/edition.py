"""Which version and locale of a Docusaurus site something belongs to."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Edition:
    """A version and locale of the site; all empty for a book read from a docs folder (its only
    version and locale), and for chunks stored before versions and locales were read."""

    version: str = ""  # "current", "1.0"
    locale: str = ""  # "en", "fr"
    other_version: bool = False  # not the version the site serves at its docs root (lastVersion)
    other_locale: bool = False  # a translation: not the site's default locale

    def matches(self, version: str, locale: str) -> bool:
        """Whether this is the edition asked for; "" asks for the version served at the docs root
        and the default locale."""
        by_version = self.version == version if version else not self.other_version
        by_locale = self.locale == locale if locale else not self.other_locale
        return by_version and by_locale


SOLE_EDITION = Edition()  # a docs folder: the book's only version and locale
