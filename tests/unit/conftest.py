"""Unit-test helpers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.i18n import current_lang


@pytest.fixture(scope="module")
def english() -> Iterator[None]:
    """Messages in English for a module whose tests match on their wording (text for people
    is zh-CN by default; both languages are checked in test_i18n / test_errors)."""
    token = current_lang.set("en")
    yield
    current_lang.reset(token)
