"""Every REST service's app factory, by name. Tests that cover *every* service (the OpenAPI
contract, the fuzzer) iterate this; a service joins by adding its own."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

SERVICES: dict[str, str] = {
    "registry": "services.registry.app:create_app",
    "telemetry": "services.telemetry.app:create_app",
    "dispatch": "services.dispatch.app:create_app",
    "subsidy": "services.subsidy.app:create_app",
}


def factory(name: str) -> Callable[..., Any]:
    module, _, attr = SERVICES[name].partition(":")
    return getattr(importlib.import_module(module), attr)
