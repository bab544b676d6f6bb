"""A local Robocorp Control Room: ``robocorp-emulator`` on the command line, ``EmulatorServer``
in Python, the ``robocorp_emulator`` pytest fixture in tests.

Importing this package is cheap: FastAPI and uvicorn load only when a server starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import create_app
    from .config import EmulatorConfig, load_config
    from .models import EmulatorBackend
    from .server import EmulatorServer

__all__ = ["EmulatorBackend", "EmulatorConfig", "EmulatorServer", "create_app", "load_config"]

_LAZY = {
    "EmulatorServer": "server",
    "EmulatorBackend": "models",
    "EmulatorConfig": "config",
    "load_config": "config",
    "create_app": "app",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
