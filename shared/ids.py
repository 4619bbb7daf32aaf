"""Identifiers: unified social credit codes (with their check character) and device ids.
Personal ID numbers are in ``shared.pii``."""

from __future__ import annotations

from shared.i18n import T

_CREDIT_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100-2015: no I, O, Z, S, V
_CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def credit_code_check_char(first17: str) -> str:
    total = sum(_CREDIT_CHARS.index(c) * w for c, w in zip(first17, _CREDIT_WEIGHTS, strict=True))
    return _CREDIT_CHARS[(31 - total % 31) % 31]


def validate_credit_code(raw: str) -> str:
    """Unified social credit code (统一社会信用代码, GB 32100-2015); raise ValueError if invalid."""
    code = raw.strip().upper()
    if len(code) != 18:
        raise ValueError(T("应为 18 位（GB 32100-2015）", "must be 18 characters (GB 32100-2015)"))
    if any(c not in _CREDIT_CHARS for c in code):
        raise ValueError(
            T(
                "含有 GB 32100-2015 字符集以外的字符",
                "contains characters outside the GB 32100-2015 set",
            )
        )
    if credit_code_check_char(code[:17]) != code[17]:
        raise ValueError(
            T("校验码不符（GB 32100-2015）", "check character does not match (GB 32100-2015)")
        )
    return code


def credit_code_region(code: str) -> str:
    """The registration authority's division code: characters 3–8 of a credit code
    (GB 32100-2015 §4: 登记管理机关行政区划码)."""
    return code[2:8]


# Device and gateway ids: MQTT topic segments and Mosquitto usernames, so no '/', '+', '#'
# (topics), no ':' (the password file's separator), nothing a shell or URL would mangle.
DEVICE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,63}$"
# Broker accounts of the platform's own services; a gateway may not take their names.
RESERVED_DEVICE_IDS = frozenset({"ingest", "emulator", "ops", "admin", "telemetry", "dispatch"})
