from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

Code = Field(pattern=r"^[a-z][a-z0-9_]{1,31}$")


class ItemRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    category_code: str
    name_zh: str
    name_en: str
    aliases: list[str]
    roles: list[str]
    medical: bool
    active: bool


class CategoryRead(BaseModel):
    code: str
    name_zh: str
    name_en: str
    items: list[ItemRead]


class ItemCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    code: str = Code
    category_code: str = Field(max_length=32)
    name_zh: str = Field(min_length=1, max_length=64)
    name_en: str = Field(min_length=1, max_length=64)
    aliases: list[str] = Field(default_factory=list, max_length=20)
    roles: list[str] = Field(default_factory=list, max_length=10)
    medical: bool = False


class ItemUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name_zh: str | None = Field(None, min_length=1, max_length=64)
    name_en: str | None = Field(None, min_length=1, max_length=64)
    aliases: list[str] | None = Field(None, max_length=20)
    roles: list[str] | None = Field(None, max_length=10)
    medical: bool | None = None
    active: bool | None = None
