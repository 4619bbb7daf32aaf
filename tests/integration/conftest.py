"""Fixtures of the integration tests beyond the session-wide ones in ``tests/conftest.py``."""

from tests.integration.dispatch_helpers import dispatch  # noqa: F401  (the dispatch app)
