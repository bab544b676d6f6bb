"""``python -m airflow_provider_robocorp.emulator`` — same as ``robocorp-emulator``."""

from .cli import main

raise SystemExit(main())
