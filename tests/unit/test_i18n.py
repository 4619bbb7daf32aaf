"""shared.i18n: which language a person reads."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.i18n import T, current_lang, negotiate, text


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        (None, "zh"),
        ("", "zh"),
        ("en", "en"),
        ("en-US,en;q=0.9", "en"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("fr-FR, en;q=0.5", "en"),
        ("fr", "zh"),
        ("en;q=0.2, zh;q=0.8", "zh"),
        ("zh;q=0, en", "en"),
        ("en;q=abc", "zh"),
        ("*", "zh"),
    ],
)
def test_negotiate(header, lang):
    assert negotiate(header) == lang


@given(st.text(max_size=200))
def test_negotiate_never_raises(header):
    assert negotiate(header) in ("zh", "en")


def test_text_renders_in_the_current_language():
    t = T("老人", "elder")
    assert str(t) == "老人" and text(t) == "老人" and text(t, "en") == "elder"
    token = current_lang.set("en")
    try:
        assert str(t) == "elder"
    finally:
        current_lang.reset(token)
    assert text("plain") == "plain" and text(None) is None
