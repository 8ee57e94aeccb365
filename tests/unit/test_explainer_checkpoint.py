"""The explainer's file: round trip, clear errors, and resume after an interrupted training."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path

import pytest
import torch

from explgraph.core.errors import InputError, ModelError
from explgraph.core.progress import NULL_PROGRESS, Task
from miner.explainer import ExplainerConfig, ExplainerSpec, read_explainer, save_explainer
from miner.explainer.training import EpochCheckpoints, run_digest, train_explainer

C, H, W = 4, 6, 6
SPEC = ExplainerSpec(
    layer="planted",
    module="planted",
    channels=C,
    height=H,
    width=W,
    filters=4,
    hidden=8,
    gate_hidden=4,
)
CONFIG = ExplainerConfig(epochs=3, batch_size=8, seed=5)


class EpochBars:
    """A progress that records the description of every bar it opens."""

    def __init__(self) -> None:
        self.tasks: list[str] = []

    def task(self, description: str, total: float | None) -> AbstractContextManager[Task]:
        self.tasks.append(description)
        return NULL_PROGRESS.task(description, total)

    def log(self, message: str) -> None:
        pass


@pytest.fixture
def maps() -> torch.Tensor:
    return torch.rand(20, C, H, W, generator=torch.Generator().manual_seed(3))


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_round_trip_keeps_everything(tmp_path: Path, maps: torch.Tensor) -> None:
    trained = train_explainer(maps, SPEC, CONFIG, performer={"source": "toy"}, data={"n": 20})
    path = save_explainer(tmp_path / "sub" / "explainer.pt", trained)
    again = read_explainer(path)
    assert again.spec == SPEC
    assert same_weights(again.state_dict, trained.state_dict)
    assert again.history == trained.history and len(again.history) == 3
    assert (again.epoch, again.step) == (3, 9)
    assert again.performer == {"source": "toy"} and again.data["n"] == 20
    assert not list(tmp_path.rglob("*.partial"))
    with torch.no_grad():
        first, second = trained.explainer()(maps), again.explainer()(maps)
    assert torch.equal(first.reconstruction, second.reconstruction)
    assert torch.equal(first.p, second.p)


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "does not exist"),
        (b"not a checkpoint", "cannot read"),
        ({"x": 1}, "not an explainer"),
    ],
)
def test_unreadable_files_raise_one_clear_line(tmp_path: Path, content: object, says: str) -> None:
    path = tmp_path / "explainer.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    with pytest.raises(ModelError, match=says) as raised:
        read_explainer(path)
    assert "\n" not in str(raised.value)


def test_weights_that_do_not_fit_the_spec_raise(tmp_path: Path, maps: torch.Tensor) -> None:
    trained = train_explainer(maps, SPEC, ExplainerConfig(epochs=1, batch_size=8))
    trained.spec = ExplainerSpec(**{**SPEC.to_dict(), "filters": 5})
    with pytest.raises(ModelError, match="do not fit"):
        read_explainer(save_explainer(tmp_path / "e.pt", trained)).explainer()


def test_resume_after_an_interruption_ends_with_the_same_weights(
    tmp_path: Path, maps: torch.Tensor
) -> None:
    whole = train_explainer(maps, SPEC, CONFIG, checkpoint_dir=tmp_path / "whole")
    folder = EpochCheckpoints(tmp_path / "cut", run_digest(maps, SPEC, CONFIG))
    train_explainer(maps, SPEC, CONFIG, checkpoint_dir=tmp_path / "cut")
    folder.path(3).unlink()  # as if the run had stopped after epoch 2
    folder.path(2).with_name("epoch9.pt").write_bytes(b"damaged")  # skipped, not trusted
    bars = EpochBars()
    resumed = train_explainer(maps, SPEC, CONFIG, checkpoint_dir=tmp_path / "cut", progress=bars)
    assert bars.tasks == ["explainer epoch 3/3"]
    assert same_weights(resumed.state_dict, whole.state_dict)
    assert resumed.history == whole.history


def test_another_setting_starts_afresh(tmp_path: Path, maps: torch.Tensor) -> None:
    train_explainer(maps, SPEC, CONFIG, checkpoint_dir=tmp_path)
    bars = EpochBars()
    other = ExplainerConfig(epochs=3, batch_size=8, seed=6)
    train_explainer(maps, SPEC, other, checkpoint_dir=tmp_path, progress=bars)
    assert len(bars.tasks) == 3
    assert len(list(tmp_path.glob("explainer-*"))) == 2
    unchanged = ExplainerConfig(epochs=3, batch_size=8, seed=5, threads=2)  # threads: no effect
    assert run_digest(maps, SPEC, unchanged) == run_digest(maps, SPEC, CONFIG)


def test_bad_maps_are_refused_with_what_to_do(maps: torch.Tensor) -> None:
    with pytest.raises(InputError, match="do not fit the explainer"):
        train_explainer(maps[:, :2], SPEC, CONFIG)
    with pytest.raises(InputError, match="at least two"):
        train_explainer(maps[:1], SPEC, CONFIG)
