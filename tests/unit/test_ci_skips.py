"""A test that lacks its tool skips on a developer's machine and fails in CI (tests.helpers.ci)."""

from __future__ import annotations

import pytest

from tests.helpers.ci import in_ci, missing_tool


@pytest.mark.parametrize(
    ("value", "ci"),
    [("true", True), ("1", True), ("yes", True), ("", False), ("false", False), ("0", False)],
)
def test_ci_is_a_true_value_of_the_variable(
    value: str, ci: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", value)
    assert in_ci() is ci


def test_a_missing_tool_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no Chromium"):
        missing_tool("no Chromium at /usr/bin/chromium")


def test_a_missing_tool_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"no Chromium .*\(CI is set"):
        missing_tool("no Chromium at /usr/bin/chromium")
