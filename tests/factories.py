"""Valid test data: ID numbers with correct check digits, credit codes, request bodies."""

from __future__ import annotations

import itertools
import random
from datetime import date

from shared.ids import credit_code_check_char
from shared.pii import id_check_char

_seq = itertools.count(random.randrange(1, 10**6))


def id_number(
    region: str = "350212",
    born: date = date(1945, 3, 8),
    seq: int | None = None,
    female: bool | None = None,
) -> str:
    """A valid 18-character ID number; unique per call unless ``seq`` is given."""
    n = (seq if seq is not None else next(_seq)) % 1000
    if female is not None:
        n = n - n % 2 + (0 if female else 1)
    body = f"{region}{born:%Y%m%d}{n:03d}"
    return body + id_check_char(body)


def credit_code(seq: int | None = None) -> str:
    n = seq if seq is not None else next(_seq)
    body = f"91350212MA{n % 10**7:07d}"
    return body + credit_code_check_char(body)


def elder_body(**overrides) -> dict:
    body = {
        "id_number": id_number(),
        "name": "陈阿婆",
        "phone": "13812345678",
        "hukou_region": "350212",
        "address": "厦门市同安区大同街道某路1号",
        "lat": 24.7236,
        "lon": 118.1520,
        "zone": "urban",
        "living_arrangement": "with_family",
    }
    body.update(overrides)
    return body
