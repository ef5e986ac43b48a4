"""Where secrets come from: the environment, and nowhere else (never the config file, the database or a prompt)."""

from __future__ import annotations

import os
from collections.abc import Mapping


def secret_from_env(var: str, *, environ: Mapping[str, str] | None = None) -> str | None:
    """A secret from the environment, or None. Secrets are read here and nowhere else."""
    env = os.environ if environ is None else environ
    value = env.get(var)
    return value.strip() if value else None
