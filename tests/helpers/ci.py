"""Tests that need a tool the machine may lack: a skip with the reason on a developer's
machine, a failure in CI, where every test must run.

CI is on when the ``CI`` variable holds a true value (CI services set ``CI=true``); ``0``,
``false``, ``no`` or an empty value leave it off.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """Whether this run is CI's (``CI`` set to a true value)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no", "off")


def missing_tool(reason: str) -> NoReturn:
    """Skip the test, saying what is missing; in CI fail with the same words instead."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set, so this test must run)")
    pytest.skip(reason)


__all__ = ["in_ci", "missing_tool"]
