"""Language codes as catalogs write them ('eng', 'en-US', 'fre'), reduced to a family.

A filter for `language=en` (or `eng`, or `en-GB`) means the language, whatever spelling each
book's record uses: BCP 47 primary subtags and ISO 639-2 codes both reduce to the primary
subtag ('en-US' -> 'en', 'eng' -> 'en', 'ger' -> 'de'). The books keep their original code.
"""

from __future__ import annotations

from contextlib import suppress
from functools import lru_cache

import numpy as np


class UnknownLanguage(ValueError):
    """A value that is not a language code."""


@lru_cache(maxsize=4096)
def family(code: str) -> str:
    """The language a stored code names ('en-US' -> 'en'); an unreadable code stays as it is,
    lower-cased, so it still matches itself."""
    import langcodes  # its tables take a moment: only commands and requests that filter pay

    try:
        language = langcodes.Language.get(code.strip())
    except (ValueError, LookupError):
        return code.strip().lower()
    return language.language or code.strip().lower()


def requested_family(value: str) -> str:
    """The family of a language a client asks for; UnknownLanguage if it names none."""
    import langcodes

    cleaned = value.strip()
    if not cleaned or not langcodes.tag_is_valid(cleaned):
        raise UnknownLanguage(
            f"{value!r} is not a language code: use ISO 639 or BCP 47, e.g. en, eng or en-GB"
        )
    return family(cleaned)


def families(codes: np.ndarray) -> np.ndarray:
    """`family` of every code in an array (each distinct code is looked up once)."""
    unique, inverse = np.unique(codes, return_inverse=True)
    return np.asarray([family(str(code)) if code else "" for code in unique], dtype="<U16")[inverse]


def spellings(language_family: str) -> tuple[set[str], tuple[str, ...]]:
    """How a stored code of this family may be written: exact lower-case codes, and the
    prefixes of its region or script variants ('en-', 'en_', 'eng-', ...)."""
    import langcodes

    language = langcodes.Language.get(language_family)
    codes = {language_family}
    with suppress(LookupError):
        codes |= {language.to_alpha3(), language.to_alpha3(variant="B")}
    return codes, tuple(f"{code}{sep}" for code in sorted(codes) for sep in "-_")
