"""The toy VGG: its shape, BatchNorm folding, deterministic training and ``explgraph train``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from miner.models import ToyVGG, layer_geometry, load_model
from miner.models.toy import fold_batch_norm
from miner.models.training import (
    TrainConfig,
    dataset_crops,
    synthetic_crops,
    train_on_crops,
    train_toy_model,
)
from tests.helpers.cli import run_cli
from tests.helpers.models import loaded_model

TINY = TrainConfig(
    n=16, image_size=64, input_size=32, epochs=2, batch_size=8, widths=(4, 4, 8, 8), seed=3
)


def test_default_layers_give_24_and_12_maps_at_96_px() -> None:
    model = loaded_model(ToyVGG(4), input_size=96, name="toy_vgg")
    geometry = layer_geometry(model, model.default_layers)
    assert [(g.name, g.height, g.stride) for g in geometry] == [
        ("block3_conv1", 24, 4.0),
        ("block3_conv2", 24, 4.0),
        ("block4_conv1", 12, 8.0),
        ("block4_conv2", 12, 8.0),
    ]
    # conv1 -1..1, pool1 -1..2, conv2 -3..4, pool2 -3..6, block3 -7..10 and -11..14,
    # pool3 -11..18, block4 -19..26 and -27..34 (pixel indices seen by unit 0).
    assert [g.rf_size for g in geometry] == [18.0, 26.0, 46.0, 62.0]
    assert [g.rf_offset for g in geometry] == [2.0, 2.0, 4.0, 4.0]


def test_folding_batch_norm_keeps_the_function() -> None:
    net = ToyVGG(3, widths=(4, 6, 8, 10), batch_norm=True)
    with torch.no_grad():  # non-trivial running statistics and affine parameters
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-1, 1)  # type: ignore[union-attr]
                module.running_var.uniform_(0.5, 2)  # type: ignore[union-attr]
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
    net.eval()
    folded = fold_batch_norm(net)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    image = torch.rand(2, 3, 40, 40)
    with torch.no_grad():
        torch.testing.assert_close(folded(image), net(image), rtol=1e-4, atol=1e-5)


def test_training_is_deterministic_for_a_seed() -> None:
    train, test = synthetic_crops(TINY)
    assert train.images.shape[1:] == (3, 32, 32) and train.images.dtype == torch.uint8
    assert len(train) + len(test) == TINY.n and len(test) == 4
    threads = torch.get_num_threads()
    first, history = train_on_crops(train, test, TINY)
    second, _ = train_on_crops(train, test, TINY)
    assert [h["epoch"] for h in history] == [1, 2]
    for (name, a), (_, b) in zip(
        first.state_dict().items(), second.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    other, _ = train_on_crops(train, test, TrainConfig(**{**TINY.__dict__, "seed": 4}))
    assert not torch.equal(other.fc.weight, first.fc.weight)
    assert torch.get_num_threads() == threads
    assert not torch.are_deterministic_algorithms_enabled()


def test_trained_checkpoint_loads_with_its_metadata(tmp_path: Path) -> None:
    result = train_toy_model(tmp_path / "toy.pt", TINY, command=["explgraph", "train"])
    loaded = load_model(str(result.checkpoint))
    assert loaded.name == "toy_vgg" and loaded.input_size == 32
    assert loaded.classes == ["quadruped", "bird", "fish", "giraffe"]
    assert 0.0 <= result.test_accuracy <= 1.0 and result.n_test == 4
    from miner.models import read_checkpoint

    meta = read_checkpoint(result.checkpoint).meta
    assert meta["test_accuracy"] == result.test_accuracy
    assert meta["command"] == "explgraph train" and meta["config"]["seed"] == 3


def test_dataset_crops_skip_unreadable_images(tmp_path: Path) -> None:
    from miner.data.folder import load_dataset
    from miner.data.synthetic import write_synthetic

    write_synthetic(tmp_path / "data", n=16, size=64, seed=1)
    dataset = load_dataset(tmp_path / "data")
    broken = dataset.records[0].path
    broken.write_bytes(b"not a png")
    train, test, skipped = dataset_crops(dataset, 32)
    assert (len(train), len(test)) == (11, 4)  # record 0 is a train image
    assert [path for path, _ in skipped] == [str(broken)]
    assert train.classes == tuple(sorted({str(r.label) for r in dataset.records}))


def test_train_command(tmp_path: Path) -> None:
    out = tmp_path / "toy.pt"
    args = ["train", "--n", "16", "--image-size", "64", "--input-size", "32", "--epochs", "1"]
    result = run_cli(*args, "--batch-size", "8", "--out", out, "--quiet")
    assert "test accuracy" in result.output and str(out) in result.output
    assert load_model(str(out)).input_size == 32
    from miner.models import read_checkpoint

    recorded = read_checkpoint(out).meta["command"]
    assert recorded.startswith("explgraph train --n 16 --image-size 64 --epochs 1 --seed 0")
    assert recorded.endswith(f"--out {out}")


def test_train_command_rejects_an_empty_set(tmp_path: Path) -> None:
    from explgraph.core.errors import InputError
    from miner.models.training import Crops

    empty = Crops(torch.zeros(0, 3, 8, 8, dtype=torch.uint8), torch.zeros(0, dtype=torch.long), ())
    with pytest.raises(InputError, match="no training images"):
        train_on_crops(empty, empty, TINY)


def test_committed_checkpoint_classifies_new_synthetic_objects() -> None:
    from miner.data.images import crop_to_box
    from miner.data.synthetic import CATEGORIES, iter_samples
    from miner.models import read_checkpoint
    from miner.models.loading import TOY_CHECKPOINT

    loaded = load_model("toy_vgg")
    assert (loaded.input_size, loaded.classes) == (96, list(CATEGORIES))
    meta = read_checkpoint(TOY_CHECKPOINT).meta
    assert meta["test_accuracy"] >= 0.95
    assert meta["command"].startswith("explgraph train")
    # Objects from a seed the net never saw (it was trained on seed 0).
    samples = list(iter_samples(24, 128, seed=11))
    crops = [np.asarray(crop_to_box(Image.fromarray(s.image), s.box, 96)) for s in samples]
    pixels = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor(loaded.mean).view(1, 3, 1, 1)
    std = torch.tensor(loaded.std).view(1, 3, 1, 1)
    with torch.no_grad():
        predicted = loaded.module((pixels - mean) / std).argmax(1)
    truth = torch.tensor([CATEGORIES.index(s.label) for s in samples])
    assert float((predicted == truth).float().mean()) >= 0.9
