"""Words people use → the codes the API stores (``vocabulary.yaml``).

A family app lets people type "daughter-in-law" or 儿媳; an org's spreadsheet says 护理员.
The API accepts those words and stores and returns the code (``child_in_law``, ``caregiver``),
so clients can branch on a stable enum while people keep their own words. The mapping is
data; the OpenAPI description of each field lists what is accepted.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BeforeValidator, WithJsonSchema

from shared.i18n import T

_SEPARATORS = re.compile(r"[\s_\-‐-―]+")


def normalize(word: str) -> str:
    """Case, full-width forms, spaces, hyphens and underscores do not matter."""
    return _SEPARATORS.sub(" ", unicodedata.normalize("NFKC", word).casefold()).strip()


@cache
def _vocabularies() -> dict[str, dict[str, list[str]]]:
    raw = yaml.safe_load(Path(__file__).with_name("vocabulary.yaml").read_text(encoding="utf-8"))
    return {
        name: {code: [str(w) for w in words] for code, words in codes.items()}
        for name, codes in raw.items()
    }


@cache
def lookup(vocabulary: str) -> dict[str, str]:
    """Normalised word → code, for one vocabulary; a word naming two codes is an error."""
    table: dict[str, str] = {}
    for code, words in _vocabularies()[vocabulary].items():
        for word in (code, *words):
            key = normalize(word)
            if table.setdefault(key, code) != code:
                raise ValueError(f"vocabulary.yaml: {word!r} maps to {table[key]} and {code}")
    return table


def codes(vocabulary: str) -> tuple[str, ...]:
    return tuple(_vocabularies()[vocabulary])


def words(vocabulary: str) -> dict[str, list[str]]:
    return _vocabularies()[vocabulary]


def to_code(vocabulary: str, value: Any) -> Any:
    """The code for ``value``; non-strings pass through for the enum check to refuse."""
    if not isinstance(value, str):
        return value
    code = lookup(vocabulary).get(normalize(value))
    if code is None:
        valid = ", ".join(codes(vocabulary))
        raise ValueError(
            T(
                f"无法识别“{value[:32]}”；可用：{valid}（或其常用中英文说法）",
                f"{value[:32]!r} is not recognised; use one of {valid} (or a usual word for one)",
            )
        )
    return code


def describe(vocabulary: str, intro: str) -> str:
    lines = [intro, "", "Accepted words (case, spaces and hyphens ignored):", ""]
    for code, accepted in words(vocabulary).items():
        lines.append(f"- `{code}`: " + ", ".join(accepted))
    return "\n".join(lines)


def field(vocabulary: str, intro: str) -> tuple[Callable[[Any], Any], WithJsonSchema]:
    """``Annotated[<enum>, *field(...)]``: accepts the words, holds the code. The request
    schema says what is accepted — a string from the lists — rather than the bare enum."""
    schema = {
        "type": "string",
        "minLength": 1,
        "maxLength": 32,
        "description": describe(vocabulary, intro),
        "examples": [codes(vocabulary)[0], *words(vocabulary)[codes(vocabulary)[0]][:2]],
    }
    return BeforeValidator(lambda v: to_code(vocabulary, v)), WithJsonSchema(
        schema, mode="validation"
    )
