"""
English for messages: the article of a name (``an IQL``, ``a BCQ``), a count with its noun (``1 episode``) and a
duration (``3 min 05 s``).
"""

from __future__ import annotations

#: Initials read letter by letter that sound with a vowel first: ``an FQE``, ``an SB3``, ``an MLP``.
_VOWEL_SOUNDING_LETTERS = "FHLMNRSX"


def article(name: object) -> str:
    """
    ``name`` with its indefinite article: ``"an IQL"``, ``"an AWAC"``, ``"a BCQ"``, ``"an FQE"``, ``"a Box"``.
    Initialisms (a capital consonant followed by another capital consonant or a digit) go by how the first letter
    is spoken; other words by their first letter.
    """
    text = str(name)
    first, second = text[:1], text[1:2]
    spelled = first.isupper() and (second.isdigit() or (second.isupper() and second not in "AEIOU"))
    vowel_sound = first in "AEIOU" + _VOWEL_SOUNDING_LETTERS if spelled else first.lower() in "aeiou"
    return f"{'an' if vowel_sound else 'a'} {text}"


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``count`` and its noun: ``"1 episode"``, ``"5 episodes"`` (``nouns``: the plural, default ``noun + "s"``)."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


def duration(seconds: float) -> str:
    """A time for progress lines: ``"42 s"``, ``"3 min 05 s"``, ``"2 h 07 min"``."""
    whole = round(max(0.0, float(seconds)))
    if whole < 60:
        return f"{whole} s"
    minutes, rest = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


__all__ = ["article", "duration", "plural"]
