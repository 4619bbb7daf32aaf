"""Personal data: ID-card numbers (GB 11643-1999) and phone numbers.

Validation and masking are pure functions. Storage: the clear value is encrypted with
AES-256-GCM and looked up through a keyed hash (HMAC-SHA256), so the database never holds a
searchable clear ID number and a dump alone reveals nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import Annotated

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import AfterValidator, Field

from shared import clock
from shared.i18n import T
from shared.regions import PROVINCES

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"  # index = weighted sum mod 11


@dataclass(frozen=True, slots=True)
class IdCard:
    number: str
    region: str
    birth_date: date
    gender: str  # male | female


def id_check_char(first17: str) -> str:
    total = sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK[total % 11]


def _ascii(raw: str) -> str:
    """Fold full-width forms (what Chinese input methods type: １２３Ｘ) to ASCII."""
    return unicodedata.normalize("NFKC", raw)


def parse_id_number(raw: str, *, today: date | None = None) -> IdCard:
    """Validate an 18-character resident ID number; raise ValueError with the reason."""
    number = _ascii(raw).strip().upper()
    if len(number) != 18:
        raise ValueError(T("应为 18 位（GB 11643-1999）", "must be 18 characters (GB 11643-1999)"))
    if not _DIGITS17.fullmatch(number[:17]) or number[17] not in "0123456789X":
        raise ValueError(
            T("应为 17 位数字加一位数字或 X", "must be 17 digits followed by a digit or X")
        )
    if number[:2] not in PROVINCES:
        raise ValueError(T(f"未知的省级代码 {number[:2]}", f"unknown province code {number[:2]}"))
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError as exc:
        raise ValueError(
            T("号码中的出生日期不是有效日期", "birth date in the number is not a real date")
        ) from exc
    today = today or clock.today()
    if born > today:
        raise ValueError(T("号码中的出生日期晚于今天", "birth date in the number is in the future"))
    if born.year < 1880:
        raise ValueError(T("号码中的出生日期过早", "birth date in the number is implausibly early"))
    if id_check_char(number[:17]) != number[17]:
        raise ValueError(
            T("校验码不符（GB 11643-1999）", "check digit does not match (GB 11643-1999)")
        )
    gender = "male" if int(number[16]) % 2 == 1 else "female"
    return IdCard(number=number, region=number[:6], birth_date=born, gender=gender)


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def mask_id_number(number: str) -> str:
    """``350212194501011234`` → ``3502**********1234``."""
    return number[:4] + "*" * (len(number) - 8) + number[-4:]


_DIGITS17 = re.compile(r"[0-9]{17}")
_PHONE = re.compile(r"^(?:\+?86)?(1[3-9][0-9]{9})$|^(0[0-9]{2,3}-?[0-9]{7,8})$")


def normalize_phone(raw: str) -> str:
    """Mainland mobile (``13812345678``, ``+86`` allowed) or landline (``0592-1234567``)."""
    compact = re.sub(r"[\s()]", "", _ascii(raw))
    m = _PHONE.match(compact)
    if not m:
        raise ValueError(
            T(
                "应为大陆手机号（11 位，1[3-9] 开头）或固定电话（如 0592-1234567）",
                "must be a mainland mobile (11 digits, 1[3-9]…) or landline number",
            )
        )
    return m.group(1) or m.group(2)


Phone = Annotated[
    str,
    Field(
        max_length=20,
        description="mainland mobile (11 digits, +86 allowed) or landline (0592-1234567)",
        examples=["13812345678"],
    ),
    AfterValidator(normalize_phone),
]
"""A phone number in a request body: validated and normalised, wherever it appears."""


def mask_phone(phone: str) -> str:
    """``13812345678`` → ``138****5678``; ``0592-1234567`` → ``0592-***4567``."""
    area, dash, local = phone.rpartition("-")
    if dash:
        return f"{area}-" + "*" * max(len(local) - 4, 0) + local[-4:]
    if len(phone) <= 7:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


def _derive(secret: str, purpose: bytes) -> bytes:
    return hmac.new(secret.encode(), purpose, hashlib.sha256).digest()


class PiiCipher:
    """AES-256-GCM for values, HMAC-SHA256 for lookups; keys derived from configured secrets.

    Ciphertext layout: ``b"\\x01" + nonce(12) + ciphertext||tag``; the leading version byte
    lets a key rotation re-encrypt lazily.
    """

    VERSION = b"\x01"

    def __init__(self, enc_secret: str, hash_secret: str) -> None:
        self._aead = AESGCM(_derive(enc_secret, b"eldercare/pii/aes-256-gcm/v1"))
        self._hash_key = _derive(hash_secret, b"eldercare/pii/lookup-hmac/v1")

    def encrypt(self, value: str, *, context: bytes = b"") -> bytes:
        return self.encrypt_bytes(value.encode(), context=context)

    def decrypt(self, blob: bytes, *, context: bytes = b"") -> str:
        return self.decrypt_bytes(blob, context=context).decode()

    def encrypt_bytes(self, value: bytes, *, context: bytes = b"") -> bytes:
        nonce = os.urandom(12)
        return self.VERSION + nonce + self._aead.encrypt(nonce, value, context)

    def decrypt_bytes(self, blob: bytes, *, context: bytes = b"") -> bytes:
        if blob[:1] != self.VERSION:
            raise ValueError("unknown PII ciphertext version")
        return self._aead.decrypt(blob[1:13], blob[13:], context)

    def lookup_hash(self, value: str) -> bytes:
        return hmac.new(self._hash_key, value.encode(), hashlib.sha256).digest()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")
