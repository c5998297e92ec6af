"""The English of messages: articles of names and counts of nouns."""

from __future__ import annotations

import pytest

from sb3_offline.common.text import article, plural


@pytest.mark.parametrize(
    ("name", "expected"),
    [("IQL", "an IQL"), ("AWAC", "an AWAC"), ("FQE", "an FQE"), ("SB3", "an SB3"), ("BCQ", "a BCQ"),
     ("LAPO", "a LAPO"), ("HER", "a HER"), ("TD3BC", "a TD3BC"), ("Box", "a Box"), ("int", "an int")],
)  # fmt: skip
def test_article(name: str, expected: str) -> None:
    assert article(name) == expected


def test_plural() -> None:
    assert [plural(n, "episode") for n in (0, 1, 2)] == ["0 episodes", "1 episode", "2 episodes"]
    assert plural(3, "policy", "policies") == "3 policies"
