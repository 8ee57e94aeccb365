"""The CNN's identity and finding its checkpoint again by fingerprint (miner.models.identity)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from torch import nn

from explgraph.core.errors import ModelError
from miner.models.identity import (
    CHECKPOINT,
    CheckpointSearch,
    CnnIdentity,
    file_fingerprint,
    identify,
    load_identified,
    locate_checkpoint,
    resource_path,
)
from miner.models.loading import load_model
from miner.models.spec import LoadedModel
from miner.models.toy import bundled_checkpoint


def test_the_bundled_toy_is_found_by_its_package_resource_not_its_mining_path() -> None:
    loaded = load_model(str(bundled_checkpoint()))
    identity = identify(loaded, None)
    assert identity.kind == "checkpoint" and identity.spec == CHECKPOINT
    assert identity.resource == "assets/toy_vgg.pt"
    assert resource_path(identity.resource).resolve() == bundled_checkpoint().resolve()
    # the absolute path recorded at mining is gone on this "other machine"
    moved = replace(identity, recorded_path="/nowhere/miner/assets/toy_vgg.pt")
    again = CnnIdentity.from_json(moved.to_json())
    assert load_identified(again, CheckpointSearch(), "m").fingerprint == loaded.fingerprint
    # `toy_vgg` by name is the same bundled file
    assert identify(load_model("toy_vgg"), None).resource == "assets/toy_vgg.pt"


@pytest.fixture
def copied(tmp_path: Path) -> tuple[CnnIdentity, Path]:
    """The identity of a copy of the toy checkpoint, and the copy."""
    copy = tmp_path / "mined" / "toy_copy.pt"
    copy.parent.mkdir()
    shutil.copyfile(bundled_checkpoint(), copy)
    identity = identify(load_model(str(copy)), None)
    return identity, copy


def test_a_copied_checkpoint_is_identified_by_sha256_and_size(
    copied: tuple[CnnIdentity, Path],
) -> None:
    identity, copy = copied
    assert identity.resource is None  # a copy is not the package's file
    assert identity.file_name == "toy_copy.pt" and identity.recorded_path == str(copy)
    assert identity.fingerprint == file_fingerprint(copy)
    assert identity.size == copy.stat().st_size and len(str(identity.sha256)) == 64


def test_a_moved_checkpoint_is_found_beside_the_store_or_by_model_file(
    copied: tuple[CnnIdentity, Path], tmp_path: Path
) -> None:
    identity, copy = copied
    beside = tmp_path / "elsewhere"
    beside.mkdir()
    moved = beside / copy.name
    shutil.move(copy, moved)
    with pytest.raises(ModelError) as caught:
        locate_checkpoint(identity, CheckpointSearch(), "m")
    assert "\n" not in str(caught.value) and "--model-file" in str(caught.value)
    assert locate_checkpoint(identity, CheckpointSearch(folders=(beside,)), "m") == moved
    renamed = tmp_path / "renamed.pt"
    shutil.copyfile(moved, renamed)
    assert locate_checkpoint(identity, CheckpointSearch((renamed,)), "m") == renamed
    loaded = load_identified(identity, CheckpointSearch((renamed,)), "m")
    assert loaded.fingerprint == load_model(str(renamed)).fingerprint


def test_a_wrong_model_file_is_one_line_naming_both_fingerprints(
    copied: tuple[CnnIdentity, Path], tmp_path: Path
) -> None:
    identity, copy = copied
    wrong = tmp_path / "wrong.pt"
    wrong.write_bytes(copy.read_bytes() + b"\0")
    with pytest.raises(ModelError) as caught:
        locate_checkpoint(identity, CheckpointSearch((wrong,)), "toy-bird")
    message = str(caught.value)
    assert "\n" not in message and "toy-bird" in message
    assert str(file_fingerprint(wrong)) in message and str(identity.fingerprint) in message
    # strict: the right file beside it does not hide that the named one is wrong
    with pytest.raises(ModelError):
        locate_checkpoint(identity, CheckpointSearch((wrong,), (copy.parent,)), "m")
    # not strict (compare: a file of the other model): the search goes on
    search = CheckpointSearch((wrong,), (copy.parent,), strict=False)
    assert locate_checkpoint(identity, search, "m") == copy
    with pytest.raises(ModelError, match="does not exist"):
        locate_checkpoint(identity, CheckpointSearch((tmp_path / "missing.pt",)), "m")


def test_a_torchvision_cnn_is_its_name_and_weights_enum() -> None:
    loaded = LoadedModel(nn.Identity(), "vgg16", "vgg16", "IMAGENET1K_V1", "f", 224)
    identity = identify(loaded, None)
    assert identity.kind == "torchvision" and identity.fingerprint is None
    assert identity.weights_enum == "VGG16_Weights.IMAGENET1K_V1"
    assert (identity.spec, identity.weights) == ("vgg16", "IMAGENET1K_V1")


def test_an_unreadable_identity_is_one_line() -> None:
    with pytest.raises(ModelError, match="mine the model again"):
        CnnIdentity.from_json('{"kind": "checkpoint"}')
