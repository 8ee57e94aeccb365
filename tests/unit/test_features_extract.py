"""Feature extraction on a tiny CNN: shapes, normalisation maths, mirrors, bad input, model care."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from explgraph.core.errors import InputError, ModelError
from miner.data.images import crop_to_box, load_image
from miner.data.records import ImageRecord
from miner.features import FeatureSet, extract_features
from miner.models.spec import LoadedModel

SIZE = 32
MEAN = (0.5, 0.4, 0.3)
STD = (0.2, 0.25, 0.3)


def tiny_net(symmetric: bool = False) -> nn.Sequential:
    """conv(3->4) relu pool conv(4->6) relu; ``symmetric``: left-right mirror-equivariant."""
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, padding=1),
        nn.ReLU(),
    )
    if symmetric:
        with torch.no_grad():
            for conv in (net[0], net[3]):
                assert isinstance(conv, nn.Conv2d)
                conv.weight.copy_(conv.weight + conv.weight.flip(-1))
    return net


def loaded(net: nn.Module, fingerprint: str = "f0") -> LoadedModel:
    return LoadedModel(
        module=net,
        name="tiny",
        source="test",
        weights=None,
        fingerprint=fingerprint,
        input_size=SIZE,
        mean=MEAN,
        std=STD,
    )


def write_images(folder: Path, count: int, seed: int, size: int = 64) -> list[ImageRecord]:
    """Random RGB PNGs; every other one has an object box, the rest use the whole image."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    records = []
    for i in range(count):
        path = folder / f"img{i}.png"
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
        box = (3.0 + i, 2.0, 60.0, 57.0 - i) if i % 2 == 0 else None
        records.append(ImageRecord(path=path, box=box, label="thing"))
    return records


def direct_raw(net: nn.Sequential, records: list[ImageRecord], upto: int) -> torch.Tensor:
    """The raw response of ``net[:upto]`` computed without the extractor."""
    crops = [np.asarray(crop_to_box(load_image(r.path), r.box, SIZE)) for r in records]
    pixels = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255.0
    inputs = (pixels - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    with torch.no_grad():
        return net[:upto].eval()(inputs)


def expected_mass(raw: torch.Tensor, stats_over: torch.Tensor) -> torch.Tensor:
    """m = max(x, 0) / s with s the per-unit population std (no unit here is near zero)."""
    std = stats_over.double().std(dim=0, unbiased=False)
    assert float(std.min()) > 1e-2 * float(std.mean())  # the floor must not be in play
    return (raw.clamp_min(0) / std).float()


def test_shapes_and_self_normalisation_match_a_direct_computation(tmp_path: Path) -> None:
    net = tiny_net()
    records = write_images(tmp_path / "img", 7, seed=1)
    fs = extract_features(
        loaded(net), records, ["0", "3"], cache_dir=tmp_path / "cache", batch_size=3, min_box=8
    )
    assert isinstance(fs, FeatureSet)
    assert [layer.name for layer in fs.layers] == ["0", "3"]
    assert [(g.channels, g.height, g.width) for g in fs.layers] == [(4, 32, 32), (6, 16, 16)]
    assert fs.num_images == 7 and len(fs.image_ids) == 7 and fs.records == records
    assert fs.normalisation == "self" and not fs.mirrored and fs.skipped == []
    for name, upto in (("0", 1), ("3", 4)):
        raw = direct_raw(net, records, upto)
        expected = expected_mass(raw, raw)
        got = fs.chunk(name, 0, 7)
        assert got.dtype == torch.float32 and got.shape == expected.shape
        torch.testing.assert_close(got, expected, rtol=2e-3, atol=2e-3)
        # A chunk in the middle is the same rows of the whole.
        torch.testing.assert_close(fs.chunk(name, 2, 5), got[2:5])
        stored = torch.from_numpy(np.array(fs.raw_maps(name))).float()
        torch.testing.assert_close(stored, raw.clamp_min(0), rtol=2e-3, atol=2e-3)


class _FunctionalInPlace(nn.Module):
    """The conv output is overwritten by ``F.relu(..., inplace=True)`` after it is returned."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.tail = nn.Conv2d(3, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(nn.functional.relu(self.conv(x), inplace=True))


@pytest.mark.parametrize("kind", ["module", "functional"])
def test_in_place_ops_above_a_layer_do_not_change_its_raw_response(
    tmp_path: Path, kind: str
) -> None:
    net: nn.Module
    if kind == "module":  # VGG-style: ReLU(inplace=True) right after the extracted conv
        net = nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(4, 3, 1)
        )
        layers, direct_layer = ["0", "2"], nn.Sequential(net[0])
    else:
        net = _FunctionalInPlace()
        layers, direct_layer = ["conv", "tail"], nn.Sequential(net.conv)
    records = write_images(tmp_path / "img", 5, seed=11)
    fs = extract_features(loaded(net), records, layers, cache_dir=tmp_path / "c", min_box=8)
    raw = direct_raw(direct_layer, records, 1)
    assert float(raw.min()) < 0  # the std must be taken over these negative values too
    expected = expected_mass(raw, raw)
    torch.testing.assert_close(fs.chunk(layers[0], 0, 5), expected, rtol=2e-3, atol=2e-3)


def test_background_set_supplies_the_std(tmp_path: Path) -> None:
    net = tiny_net()
    records = write_images(tmp_path / "img", 4, seed=2)
    background = write_images(tmp_path / "bg", 6, seed=3)
    fs = extract_features(
        loaded(net), records, ["3"], cache_dir=tmp_path / "cache", background=background, min_box=8
    )
    assert fs.normalisation == "background"
    expected = expected_mass(direct_raw(net, records, 4), direct_raw(net, background, 4))
    torch.testing.assert_close(fs.chunk(0, 0, 4), expected, rtol=2e-3, atol=2e-3)


def test_mirrored_maps_are_the_flip_of_the_originals_for_a_symmetric_net(tmp_path: Path) -> None:
    net = tiny_net(symmetric=True)
    records = write_images(tmp_path / "img", 5, seed=4)
    fs = extract_features(
        loaded(net), records, ["0", "3"], cache_dir=tmp_path / "cache", mirror=True, min_box=8
    )
    assert fs.mirrored
    for layer in ("0", "3"):
        original = fs.chunk(layer, 0, 5)
        mirrored = fs.chunk(layer, 0, 5, flipped=True)
        # Random images are not symmetric, so this fails if the crop was not really mirrored.
        assert not torch.allclose(original, mirrored, atol=1e-2)
        torch.testing.assert_close(mirrored, original.flip(-1), rtol=2e-3, atol=2e-3)
        np.testing.assert_allclose(
            np.asarray(fs.raw_maps(layer, flipped=True), dtype=np.float32),
            np.asarray(fs.raw_maps(layer), dtype=np.float32)[..., ::-1],
            rtol=2e-3,
            atol=2e-3,
        )


def test_flipped_chunk_without_mirror_is_refused(tmp_path: Path) -> None:
    records = write_images(tmp_path / "img", 2, seed=5)
    fs = extract_features(loaded(tiny_net()), records, ["0"], cache_dir=tmp_path / "c", min_box=8)
    with pytest.raises(InputError, match="mirror"):
        fs.chunk("0", 0, 1, flipped=True)
    with pytest.raises(InputError, match="they hold: 0"):
        fs.chunk("nope", 0, 1)
    with pytest.raises(IndexError):
        fs.chunk("0", 1, 3)


def test_unreadable_images_and_small_boxes_are_skipped_and_reported(tmp_path: Path) -> None:
    records = write_images(tmp_path / "img", 4, seed=6)
    broken = tmp_path / "img" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    missing = tmp_path / "img" / "missing.png"
    small = ImageRecord(path=records[1].path, box=(0.0, 0.0, 20.0, 60.0))
    inputs = [
        records[0],
        ImageRecord(path=broken),
        records[1],
        small,
        ImageRecord(path=missing),
        records[2],
        records[3],
    ]
    fs = extract_features(
        loaded(tiny_net()), inputs, ["0"], cache_dir=tmp_path / "cache", batch_size=2, min_box=30
    )
    assert fs.records == records and fs.num_images == 4
    assert [item.path for item in fs.skipped] == [broken, small.path, missing]
    assert "cannot read" in fs.skipped[0].reason and "smaller than 30" in fs.skipped[1].reason
    # The kept images are the right ones, in order: compare with the images extracted alone.
    alone = extract_features(
        loaded(tiny_net()), records, ["0"], cache_dir=tmp_path / "cache", min_box=30
    )
    assert fs.image_ids == alone.image_ids


def test_no_usable_image_is_an_input_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"garbage")
    inputs = [ImageRecord(path=broken), ImageRecord(path=tmp_path / "gone.png")]
    with pytest.raises(InputError, match="none of the 2 images"):
        extract_features(loaded(tiny_net()), inputs, ["0"], cache_dir=tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("*"))  # nothing half-written stays behind
    with pytest.raises(InputError, match="no images"):
        extract_features(loaded(tiny_net()), [], ["0"], cache_dir=tmp_path / "cache")


def test_unusable_background_set_is_an_input_error(tmp_path: Path) -> None:
    records = write_images(tmp_path / "img", 2, seed=7)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"garbage")
    net = loaded(tiny_net())
    with pytest.raises(InputError, match="background"):
        extract_features(net, records, ["0"], cache_dir=tmp_path / "c", background=[])
    with pytest.raises(InputError, match="background images"):
        extract_features(
            net, records, ["0"], cache_dir=tmp_path / "c", background=[ImageRecord(path=broken)]
        )


def test_unknown_layer_and_bad_device_fail_with_the_fix(tmp_path: Path) -> None:
    records = write_images(tmp_path / "img", 2, seed=8)
    with pytest.raises(ModelError, match="Valid names"):
        extract_features(loaded(tiny_net()), records, ["conv9"], cache_dir=tmp_path / "c")
    with pytest.raises(ModelError, match="device"):
        extract_features(
            loaded(tiny_net()), records, ["0"], cache_dir=tmp_path / "c", device="tpu", min_box=8
        )


def _hook_counts(module: nn.Module) -> list[int]:
    return [
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        for m in module.modules()
    ]


def test_model_comes_back_as_it_was(tmp_path: Path) -> None:
    # BatchNorm and Dropout in training mode: the extraction must run them in eval mode.
    base = tiny_net()
    net = nn.Sequential(base[0], nn.BatchNorm2d(4), nn.Dropout(0.5), *list(base)[1:])
    net.train()
    user_calls: list[int] = []
    first_conv = next(m for m in net.modules() if isinstance(m, nn.Conv2d))
    first_conv.register_forward_hook(lambda *_: user_calls.append(1))
    hooks_before = _hook_counts(net)
    bn = next(m for m in net.modules() if isinstance(m, nn.BatchNorm2d))
    assert isinstance(bn, nn.BatchNorm2d) and bn.running_mean is not None
    running_before = bn.running_mean.clone()
    layer = "0"
    records = write_images(tmp_path / "img", 3, seed=9)

    fs = extract_features(loaded(net), records, [layer], cache_dir=tmp_path / "c", min_box=8)

    assert fs.num_images == 3
    assert user_calls  # the user's own hook stays in place and saw the forward passes
    assert _hook_counts(net) == hooks_before
    assert all(m.training for m in net.modules())
    # The forward ran in eval mode: BatchNorm statistics untouched, dropout off.
    torch.testing.assert_close(bn.running_mean, running_before)
    net.eval()
    with torch.no_grad():
        direct = first_conv(_normalised_inputs(records))
    torch.testing.assert_close(
        torch.from_numpy(np.array(fs.raw_maps(layer))).float(),
        direct.clamp_min(0),
        rtol=2e-3,
        atol=2e-3,
    )


def _normalised_inputs(records: list[ImageRecord]) -> torch.Tensor:
    crops = [np.asarray(crop_to_box(load_image(r.path), r.box, SIZE)) for r in records]
    pixels = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255.0
    return (pixels - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def test_friendly_layer_names_resolve_and_name_the_chunk(tmp_path: Path) -> None:
    # A module path stands for the last layer inside it ("block" -> its ReLU, "block.1").
    net = nn.Sequential(
        OrderedDict(stem=nn.Conv2d(3, 3, 3, padding=1), block=nn.Sequential(*list(tiny_net())))
    )
    records = write_images(tmp_path / "img", 2, seed=10)
    fs = extract_features(loaded(net), records, ["block"], cache_dir=tmp_path / "c", min_box=8)
    assert fs.layers[0].name != "block"
    assert fs.chunk("block", 0, 2).shape == (2, 6, 16, 16)
    assert fs.layer("block") == fs.layers[0]
