"""Text for people: zh-CN by default, English on ``Accept-Language: en`` (DESIGN.md, Language).

Codes (problem ``type``, reason ``code``) stay stable English identifiers; what a person reads
— a refusal reason, a problem's ``title`` and ``detail``, a field message — is a ``T`` holding
both languages, rendered in the request's language when it is turned into a string.

The language is per request (a context variable set by ``ObservabilityMiddleware`` from
``Accept-Language``), so a ``T`` raised deep in a service function, or inside a pydantic
validator, renders in the caller's language without being passed the request.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Literal

Lang = Literal["zh", "en"]
DEFAULT: Lang = "zh"

current_lang: contextvars.ContextVar[Lang] = contextvars.ContextVar("lang", default=DEFAULT)


@dataclass(frozen=True, slots=True)
class T:
    """One text in both languages; ``str()`` picks the request's."""

    zh: str
    en: str

    def __str__(self) -> str:
        return self.render(current_lang.get())

    def render(self, lang: Lang) -> str:
        return self.en if lang == "en" else self.zh


def negotiate(accept_language: str | None) -> Lang:
    """The best of zh/en for an ``Accept-Language`` header (RFC 9110 §12.5.4); zh when the
    header is absent, names neither, or cannot be read."""
    if not accept_language:
        return DEFAULT
    best: tuple[float, int, Lang] | None = None
    for position, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-", 1)[0]
        if primary not in ("zh", "en"):
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q <= 0:
            continue
        candidate = (q, -position, primary)  # higher q first, then earlier in the header
        if best is None or candidate > best:
            best = candidate  # type: ignore[assignment]
    return best[2] if best else DEFAULT


def text(value: str | T | None, lang: Lang | None = None) -> str | None:
    """``value`` as a string in ``lang`` (the request's language by default)."""
    if value is None or isinstance(value, str):
        return value
    return value.render(lang or current_lang.get())
