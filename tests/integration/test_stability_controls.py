"""``evaluate stability`` with every control of docs/method.md §7.3, on the mined toy graph."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.helpers.cli import run_cli
from tests.helpers.mined import TOY_LABEL, MinedToy


def test_stability_reports_every_control_signed_and_unsigned(
    mined_toy: MinedToy,
    tmp_path: Path,
) -> None:
    store = mined_toy.copy_store(tmp_path / "store")
    args = (
        "evaluate", "stability", mined_toy.model_id,
        "--annotations", str(mined_toy.data_dir / "annotations.json"),
        "--label", TOY_LABEL, "--split", "test", "--cache-dir", str(mined_toy.cache_dir),
    )  # fmt: skip
    out = run_cli(*args, "--json", store=store, quiet=True).stdout
    result = json.loads(out)
    for key in ("patterns", "frozen_prior", "filters", "initialisation", "no_parents"):
        assert 0 <= result["signed"][key] < 1, key
    fixed = result["fixed_points"]
    assert fixed["best"] <= fixed["centre"] + 1e-9
    assert math.isclose(fixed["best_signed"], fixed["centre_signed"], rel_tol=1e-5)
    top = result["per_layer"][-1]
    assert top["no_parents"] is None  # the control shares the top layer
    # one verdict per control and metric (and per best-landmark group), each saying who wins
    verdicts = [line for line in result["verdicts"] if not line.startswith("best landmark")]
    assert len(verdicts) == 2 * 6
    assert all(("beat" in line) or ("CONTROL WINS" in line) for line in result["verdicts"])
    # the no-parents control is cached: a second run only infers, with the same figures
    graphs = list((mined_toy.cache_dir / "graphs").glob("graph-*"))
    again = run_cli(*args, "--json", store=store, quiet=True).stdout
    assert json.loads(again)["signed"] == result["signed"]
    assert sorted((mined_toy.cache_dir / "graphs").glob("graph-*")) == sorted(graphs)
    table = run_cli(*args, store=store, quiet=True).stdout
    assert "fixed point at the crop centre" in table and "parents" in table


def _naive_layer_mean(
    positions: torch.Tensor,
    scores: torch.Tensor,
    landmarks: torch.Tensor,
    visible: torch.Tensor,
    flipped: torch.Tensor | None,
    *,
    diagonal: float,
    signed: bool,
    top_k: int,
    n_top: int,
    order: torch.Tensor | None,
) -> float:
    """The figure of one detector and layer from all images at once: one top-k per landmark,
    the offsets landmark - position of the picked images (x negated where read mirrored)."""
    n, p, _ = positions.shape
    offsets = landmarks.float()[:, :, None, :] - positions.float()[:, None]  # [N, J, P, 2]
    if flipped is not None:
        offsets[..., 0] *= torch.where(flipped, -1.0, 1.0)[:, None, None]
    spreads = []
    for j in range(landmarks.shape[1]):
        k = min(top_k, int(visible[:, j].sum()))
        if k < 2:
            continue
        masked = scores.float().masked_fill(~visible[:, j, None], float("-inf"))
        picked = masked.topk(k, dim=0).indices  # [k, P]
        off = offsets[picked, j, torch.arange(p)] / diagonal  # [k, P, 2]
        if signed:
            spreads.append(off.var(dim=0, unbiased=False).sum(dim=-1).sqrt())
        else:
            spreads.append(off.norm(dim=-1).std(dim=0, unbiased=False))
    values = torch.stack(spreads).mean(dim=0)
    if order is None:
        best = scores.float().topk(min(top_k, n), dim=0).values
        order = best.mean(dim=0).argsort(descending=True)
    ranked = order[~values[order].isnan()][:n_top]
    return float(values[ranked].mean())


def test_streamed_report_equals_the_all_images_computation(
    mined_toy: MinedToy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The report's every per-layer figure equals a plain all-at-once computation: sharing the
    patterns' top-k with the frozen prior, the no-parents control's top layer and the read maps
    changes no number (issue 13)."""
    import queries.evaluate_stability as module
    from miner.data.folder import load_dataset
    from miner.graph import ExplanatoryGraph, infer_graph
    from miner.graph.inference import mixed_chunk
    from queries.loaded import LoadedGraph
    from queries.stability import filter_argmax_positions
    from tests.helpers.stores import open_store

    captured: dict[str, Any] = {}
    original = module.stability_report

    def spy(model_id: str, graphs: dict[str, Any], *args: object, **kwargs: object) -> Any:
        # chunks of 7 images: the running top-k merges several chunks
        graphs = {
            name: ExplanatoryGraph(g.layers, dataclasses.replace(g.settings, chunk_size=7), g.flips)
            for name, g in graphs.items()
        }
        captured["args"], captured["kwargs"] = (model_id, graphs, *args), kwargs
        return original(model_id, graphs, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(module, "stability_report", spy)
    records = list(load_dataset(mined_toy.data_dir).select(split="test", label=TOY_LABEL).records)
    with open_store(mined_toy.store_spec, read_only=True) as store:
        graph = LoadedGraph.open(store, mined_toy.model_id, cache_dir=mined_toy.cache_dir)
        report = module.evaluate_stability(graph, records)
    _, graphs, source, landmarks, visible, _ = captured["args"]
    size = int(captured["kwargs"]["input_size"])
    assert set(graphs) == {"patterns", "initialisation", "no_parents"}
    n = source.num_images
    full = {name: infer_graph(g, source, 0, n) for name, g in graphs.items()}
    flips = full["patterns"].flipped
    diagonal = size * math.sqrt(2.0)
    layers = graphs["patterns"].layers
    for index, lp in enumerate(layers):
        row = report.per_layer[index]
        count = lp.geometry.channels
        scores = full["patterns"].layers[index].score
        order = scores.float().topk(min(20, n), dim=0).values.mean(dim=0)
        order = order.argsort(descending=True)
        prior = lp.geometry.to_pixels(lp.mu.float())[None].expand(n, -1, -1)
        prior = torch.stack(
            [torch.where(flips[:, None], size - prior[..., 0], prior[..., 0]), prior[..., 1]],
            dim=-1,
        )
        mass = mixed_chunk(
            source, index, 0, n, torch.zeros(n, dtype=torch.bool), torch.device("cpu")
        )
        fpos, fscore = filter_argmax_positions(mass, lp.geometry.stride, lp.geometry.rf_offset)
        detectors = {
            "patterns": (full["patterns"].pixels(index, size), scores, flips, None),
            "frozen_prior": (prior, scores, flips, order),
            "filters": (fpos, fscore, None, None),
        }
        for name in ("initialisation", "no_parents"):
            if name == "no_parents" and index == len(layers) - 1:
                assert row[name] is None
                continue
            run = full[name]
            detectors[name] = (run.pixels(index, size), run.layers[index].score, run.flipped, None)
        for name, (pos, score, flipped, rank) in detectors.items():
            for suffix, signed in (("", False), ("_signed", True)):
                expected = _naive_layer_mean(
                    pos, score, landmarks, visible, flipped, diagonal=diagonal, signed=signed,
                    top_k=20, n_top=count, order=rank,
                )  # fmt: skip
                assert abs(row[name + suffix] - expected) <= 1e-6, (index, name + suffix)
