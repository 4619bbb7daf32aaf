"""The subsidy OpenAPI document: the DESIGN paths, pages for lists, Idempotency-Key on POSTs."""

from __future__ import annotations

from services.subsidy.app import create_app
from shared.config import Settings


def spec() -> dict:
    settings = Settings(
        database_url="postgresql://x@127.0.0.1:1/x",
        jwt_secret="s" * 40,
        pii_key="k",
        pii_hash_key="h",
        log_json=False,
    )
    return create_app(settings).openapi()


def test_design_paths_and_conventions():
    doc = spec()
    paths = doc["paths"]
    for path, method in [
        ("/v1/policies", "get"),
        ("/v1/policies", "post"),
        ("/v1/evaluations", "post"),
        ("/v1/runs", "post"),
        ("/v1/runs/{run_id}", "get"),
        ("/v1/vouchers", "get"),
        ("/v1/vouchers/redemptions", "post"),
        ("/v1/settlements", "post"),
        ("/v1/settlements/{settlement_id}/report", "get"),
        ("/v1/ledger/balances", "get"),
        ("/v1/ledger/entries", "get"),
    ]:
        assert method in paths[path], (path, method)
    for path, ops in paths.items():
        for method, op in ops.items():
            if method == "post":
                names = {p["name"] for p in op.get("parameters", [])}
                assert "Idempotency-Key" in names, path
            documents = (
                "/v1/reports/missed-entitlements",
                "/v1/settlements/{settlement_id}/report",
            )
            is_list = path.startswith("/v1/") and "{" not in path.split("/")[-1]
            if method == "get" and is_list and path not in documents:
                content = op["responses"]["200"]["content"]
                ref = next(iter(content.values()))["schema"].get("$ref", "")
                assert ref.split("/")[-1].startswith("Page_"), (path, ref)
    evaluation = doc["components"]["schemas"]["EvaluationRead"]["properties"]
    assert {"elder_id", "month", "policy_code", "lines", "total_fen", "refused"} <= set(evaluation)


def test_every_posting_kind_written_is_one_the_ledger_documents():
    """``EntryRead.kind`` is an enum: a kind written but not listed would fail the response."""
    import ast
    import typing
    from pathlib import Path

    import services.subsidy as package
    from services.subsidy.ledger.models import PostingKind

    written: set[str] = set()
    for path in Path(package.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Draft":
                kind = next((k.value for k in node.keywords if k.arg == "kind"), None)
                assert isinstance(kind, ast.Constant), f"{path}: Draft(kind=...) not a literal"
                written.add(kind.value)
    assert written and written <= set(typing.get_args(PostingKind)), written
    schemas = spec()["components"]["schemas"]
    assert set(schemas["EntryRead"]["properties"]["kind"]["enum"]) == set(
        typing.get_args(PostingKind)
    )
