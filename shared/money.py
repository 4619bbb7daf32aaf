"""Money is integer fen (分). Never float: yuan amounts from policy files are parsed exactly."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import Annotated

from pydantic import Field, StrictInt

MAX_FEN = 10**12  # 100 亿元: far above any single amount this platform handles

Fen = Annotated[StrictInt, Field(ge=0, le=MAX_FEN, description="amount in fen (1 yuan = 100 fen)")]


def yuan_to_fen(amount: str | int | Decimal) -> int:
    """``"12.34"`` → 1234. Refuses sub-fen precision and floats (binary rounding)."""
    if isinstance(amount, float):
        raise TypeError("money must not be a float; pass a string or Decimal")
    try:
        value = Decimal(str(amount))
    except InvalidOperation as exc:
        raise ValueError(f"not an amount: {amount!r}") from exc
    if not value.is_finite():
        raise ValueError(f"not an amount: {amount!r}")
    # Enough precision for every digit: the default 28 would round huge amounts silently.
    fen = value.scaleb(2, context=Context(prec=len(value.as_tuple().digits) + 2))
    if fen != fen.to_integral_value():
        raise ValueError(f"{amount!r} has more precision than a fen")
    return int(fen)


def fen_to_yuan(fen: int) -> str:
    """1234 → ``"12.34"`` (for display and documents)."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"


def split_fen(total: int, parts: int) -> list[int]:
    """Split ``total`` into ``parts`` integer shares that sum exactly to ``total``."""
    if parts <= 0:
        raise ValueError("parts must be positive")
    base, rest = divmod(total, parts)
    return [base + (1 if i < rest else 0) for i in range(parts)]


def percent_of(fen: int, percent: Decimal | str) -> int:
    """A percentage of an amount, rounded half-up to the fen."""
    return int((Decimal(fen) * Decimal(str(percent)) / 100).quantize(Decimal(1), ROUND_HALF_UP))
