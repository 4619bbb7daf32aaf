"""Dependencies the registry's routers share."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from shared.pii import PiiCipher


async def get_cipher(request: Request) -> PiiCipher:
    return request.app.state.cipher


CipherDep = Annotated[PiiCipher, Depends(get_cipher)]
