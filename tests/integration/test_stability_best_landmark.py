"""``evaluate stability``'s best-landmark figures on the mined toy graph, checked against a plain
all-images computation, and shown in the table."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch

from explgraph.cli import main
from tests.helpers.mined import TOY_LABEL, MinedToy


def _signed_spreads(
    positions: torch.Tensor,
    scores: torch.Tensor,
    landmarks: torch.Tensor,
    visible: torch.Tensor,
    flipped: torch.Tensor,
    *,
    diagonal: float,
    top_k: int,
) -> torch.Tensor:
    """``[J, P]`` signed spread per landmark over each pattern's top-k images showing it."""
    p = positions.shape[1]
    offsets = landmarks.float()[:, :, None, :] - positions.float()[:, None]  # [N, J, P, 2]
    offsets[..., 0] *= torch.where(flipped, -1.0, 1.0)[:, None, None]
    rows = []
    for j in range(landmarks.shape[1]):
        k = min(top_k, int(visible[:, j].sum()))
        if k < 2:
            rows.append(torch.full((p,), float("nan")))
            continue
        masked = scores.float().masked_fill(~visible[:, j, None], float("-inf"))
        picked = masked.topk(k, dim=0).indices
        off = offsets[picked, j, torch.arange(p)] / diagonal
        rows.append(off.var(dim=0, unbiased=False).sum(dim=-1).sqrt())
    return torch.stack(rows)


def test_best_landmark_figures_equal_a_plain_computation(mined_toy: MinedToy) -> None:
    from miner.data.folder import load_dataset
    from miner.graph import infer_graph
    from queries.evaluate_stability import evaluate_stability
    from queries.landmarks import landmark_names, visible_landmarks
    from queries.loaded import LoadedGraph
    from tests.helpers.stores import open_store

    records = list(load_dataset(mined_toy.data_dir).select(split="test", label=TOY_LABEL).records)
    with open_store(mined_toy.store_spec, read_only=True) as store:
        loaded = LoadedGraph.open(store, mined_toy.model_id, cache_dir=mined_toy.cache_dir)
        report = evaluate_stability(loaded, records, controls=False)
        features = loaded.extract(records)
        source = loaded.normalised(features, loaded.mining_statistics())
    names = landmark_names(records, needed_by="test")
    size = loaded.input_size
    landmarks, visible = visible_landmarks(features.records, names, size)
    best = report.best_landmark
    assert best["centre_landmarks"] == ["body"]
    n = source.num_images
    run = infer_graph(loaded.graph, source, 0, n)
    diagonal = size * math.sqrt(2.0)
    body = names.index("body")
    for index, lp in enumerate(loaded.graph.layers):
        scores = run.layers[index].score
        prior = lp.geometry.to_pixels(lp.mu.float())[None].expand(n, -1, -1)
        frozen_x = torch.where(run.flipped[:, None], size - prior[..., 0], prior[..., 0])
        frozen = torch.stack([frozen_x, prior[..., 1]], dim=-1)
        spreads = [
            _signed_spreads(pos, scores, landmarks, visible, run.flipped, diagonal=diagonal,
                            top_k=20)
            for pos in (run.pixels(index, size), frozen)
        ]  # fmt: skip
        order = scores.float().topk(min(20, n), dim=0).values.mean(dim=0).argsort(descending=True)
        filled = spreads[0].nan_to_num(nan=math.inf)
        order = order[~torch.isinf(filled.amin(dim=0))[order]][: lp.geometry.channels]
        j = filled.argmin(dim=0)[order]
        ours, theirs = spreads[0][j, order], spreads[1][j, order]
        row = best["per_layer"][index]
        assert row["all"]["n_patterns"] == len(order)
        assert row["all"]["patterns"] == pytest.approx(float(ours.mean()), abs=1e-6)
        assert row["all"]["frozen_prior"] == pytest.approx(float(theirs.mean()), abs=1e-6)
        assert row["all"]["beat_frozen"] == pytest.approx(float((ours < theirs).float().mean()))
        off = j != body
        assert row["off_centre"]["n_patterns"] == int(off.sum())
        if int(off.sum()):
            assert row["off_centre"]["patterns"] == pytest.approx(float(ours[off].mean()), abs=1e-6)
        assert row["all"]["perfect_part_detector"] == 0.0
    overall = best["overall"]
    assert overall["all"]["n_patterns"] == sum(r["all"]["n_patterns"] for r in best["per_layer"])
    assert overall["centre"]["n_patterns"] + overall["off_centre"]["n_patterns"] == overall["all"][
        "n_patterns"]  # fmt: skip
    assert any(line.startswith("best landmark (off-centre") for line in report.verdicts())


def test_the_table_and_json_show_the_best_landmark_figures(
    mined_toy: MinedToy,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = mined_toy.copy_store(tmp_path / "store")
    args = [
        "explgraph", "--quiet", "--store", store, "evaluate", "stability", mined_toy.model_id,
        "--annotations", str(mined_toy.data_dir / "annotations.json"), "--label", TOY_LABEL,
        "--split", "test", "--no-controls", "--cache-dir", str(mined_toy.cache_dir),
    ]  # fmt: skip
    for extra in (["--json"], []):
        monkeypatch.setattr(sys, "argv", [*args, *extra])
        with pytest.raises(SystemExit) as done:
            main()
        assert not done.value.code
        out, _ = capsys.readouterr()
        if extra:
            result = json.loads(out)["best_landmark"]
            assert set(result["overall"]) == {"all", "centre", "off_centre"}
        else:
            assert "best-tracked landmark" in out and "off-centre" in out
