"""Output that reads well in a pipe or log, and the global-option hoisting, without a store."""

from __future__ import annotations

import pytest

from explgraph.cli import hoist_global_options
from explgraph.cli.commands.evaluate import print_stability
from explgraph.cli.console import PIPE_WIDTH, output_console


def test_hoisting_moves_global_options_to_the_front() -> None:
    assert hoist_global_options(["demo", "--store", "X", "--n", "8"]) == [
        "--store", "X", "demo", "--n", "8",
    ]  # fmt: skip
    assert hoist_global_options(["store", "info", "--store=X", "-q", "--debug"]) == [
        "--store=X", "-q", "--debug", "store", "info",
    ]  # fmt: skip
    # after "--" nothing is an option; a trailing --store keeps its place for click to refuse
    assert hoist_global_options(["query", "--", "-q"]) == ["query", "--", "-q"]
    assert hoist_global_options(["models", "--store"]) == ["--store", "models"]


def test_console_in_a_pipe_does_not_wrap() -> None:
    # under pytest's capture stdout is not a terminal, as in a pipe or a log file
    assert output_console().width == PIPE_WIDTH


def test_stability_without_controls_prints_no_nan(capsys: pytest.CaptureFixture[str]) -> None:
    nan = float("nan")
    long_layer = "features.denseblock4.denselayer16.conv2"
    print_stability(
        {
            "model_id": "m",
            "n_images": 3,
            "top_k": 20,
            "per_layer": [{"layer": long_layer, "patterns": 0.1, "filters": 0.2, "ratio": 0.5}],
            "patterns_instability": 0.1,
            "filters_instability": 0.2,
            "ratio": 0.5,
            "controls": {
                "initialisation": nan,
                "no_parents_lower_layers": nan,
                "learning_gain_over_initialisation": nan,
                "parents_gain_lower_layers": nan,
            },
        }
    )
    out = capsys.readouterr().out
    assert "nan" not in out.lower()
    assert long_layer in out and "at initialisation" in out and "without parents" in out
    assert "controls not computed" in out
