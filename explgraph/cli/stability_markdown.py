"""The stability report that ``explgraph demo`` prints, as Markdown for the README.

The README's quick-start table is this text, written by ``explgraph demo --table-md FILE`` and
put between the README's markers by ``tools/readme_table.py``: the same cells, fixed-point line
and verdicts (every "CONTROL WINS" among them) as the console table of
:func:`explgraph.cli.commands.evaluate.print_stability`. ``tests/integration/test_readme.py``
compares the two on a fresh demo run, so a column added to one and not the other fails there.
"""

from __future__ import annotations

from typing import Any

from explgraph.cli.commands.evaluate import _fmt as figure

#: the detectors of the report, in the console table's order: result key, column label
COLUMNS = (
    ("patterns", "patterns"),
    ("frozen_prior", "frozen at prior mu"),
    ("filters", "raw filters"),
    ("initialisation", "at initialisation"),
    ("no_parents", "without parents"),
)
#: the overall row's figures: (unsigned key and where it lies, signed key) per column
_OVERALL = (
    ("patterns_instability", None, "patterns"),
    ("frozen_prior", "controls", "frozen_prior"),
    ("filters_instability", None, "filters"),
    ("initialisation", "controls", "initialisation"),
    ("no_parents_lower_layers", "controls", "no_parents"),
)


def stability_rows(result: dict[str, Any]) -> list[list[str]]:
    """One row per layer and an ``overall`` row: the layer, then ``unsigned / signed`` per
    detector of :data:`COLUMNS`."""
    rows = [
        [
            row["layer"],
            *(f"{figure(row.get(k))} / {figure(row.get(k + '_signed'))}" for k, _ in COLUMNS),
        ]
        for row in result["per_layer"]
    ]
    signed = result.get("signed", {})
    overall = ["overall"]
    for key, within, signed_key in _OVERALL:
        unsigned = (result[within] if within else result).get(key)
        overall.append(f"{figure(unsigned)} / {figure(signed.get(signed_key))}")
    return [*rows, overall]


def fixed_point_line(result: dict[str, Any]) -> str | None:
    """The line on the fixed-point controls (``None`` when the report has none)."""
    fixed = result.get("fixed_points", {})
    if not fixed:
        return None
    cells = int(fixed.get("grid_cells", 0))
    return (
        f"fixed point at the crop centre: {figure(fixed.get('centre'))} / "
        f"{figure(fixed.get('centre_signed'))}; best fixed point of a {cells}x{cells} grid "
        f"(chosen per landmark on these images): {figure(fixed.get('best'))} / "
        f"{figure(fixed.get('best_signed'))}"
    )


def stability_markdown(result: dict[str, Any]) -> str:
    """The report as a caption, a Markdown table, the fixed-point line and the verdicts as a
    list, each line as the console prints it."""
    header = ["layer", *(label for _, label in COLUMNS)]
    lines = [
        f"location instability of {result['model_id']} ({result['n_images']} images, top "
        f"{result['top_k']}; unsigned / signed; lower is better):",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in stability_rows(result)),
    ]
    fixed = fixed_point_line(result)
    if fixed:
        lines += ["", fixed]
    verdicts = result.get("verdicts", [])
    if verdicts:
        lines += ["", *(f"- {line}" for line in verdicts)]
    return "\n".join(lines) + "\n"


__all__ = ["COLUMNS", "fixed_point_line", "stability_markdown", "stability_rows"]
