"""shared.readmodel: the registry columns other services read are really the registry's."""

from __future__ import annotations

import pytest

import services.registry.models  # noqa: F401  (every registry table on Base.metadata)
from shared import readmodel
from shared.db import Base


@pytest.mark.parametrize("table", readmodel.metadata.sorted_tables, ids=lambda t: t.name)
def test_every_published_column_is_a_registry_column_of_the_same_type(table):
    own = Base.metadata.tables[f"registry.{table.name}"]
    for column in table.columns:
        assert column.name in own.c, f"registry.{table.name} has no column {column.name}"
        theirs = own.c[column.name].type
        assert type(column.type).__name__ == type(theirs).__name__, column.name
        length = getattr(column.type, "length", None)
        assert length == getattr(theirs, "length", None), column.name


def test_no_encrypted_pii_is_published():
    for table in readmodel.metadata.sorted_tables:
        assert not [c.name for c in table.columns if c.name.endswith(("_enc", "_hash"))] or (
            table.name == "devices"  # the broker's password hash is not personal data
        )


def test_the_published_visit_columns_are_dispatch_columns():
    import services.dispatch.visits.models  # noqa: F401
    from shared import visits_readmodel

    own = Base.metadata.tables["dispatch.visits"]
    for column in visits_readmodel.visits.columns:
        assert column.name in own.c, column.name
        assert type(column.type).__name__ == type(own.c[column.name].type).__name__
