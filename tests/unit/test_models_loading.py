"""load_model: torchvision names, checkpoints, module:callable, and the errors for bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

from explgraph.core.errors import ModelError
from miner.models import (
    ToyVGG,
    fingerprint,
    load_model,
    read_checkpoint,
    resolve_device,
    save_checkpoint,
)
from tests.helpers.models import TinyNet


def _one_line(error: pytest.ExceptionInfo[ModelError]) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_torchvision_model_with_random_weights() -> None:
    loaded = load_model("resnet18", "none")
    assert (loaded.name, loaded.weights, loaded.family) == ("resnet18", "random", "resnet")
    assert loaded.input_size == 224
    assert loaded.default_layers == ["layer3.1.relu_1", "layer4.1.relu_1"]
    assert not loaded.module.training
    assert not any(p.requires_grad for p in loaded.module.parameters())


def test_unknown_model_suggests_close_names() -> None:
    with pytest.raises(ModelError) as caught:
        load_model("resnet19")
    message = _one_line(caught)
    assert "unknown model 'resnet19'" in message and "resnet18" in message


def test_unknown_weights_list_the_valid_ones() -> None:
    with pytest.raises(ModelError) as caught:
        load_model("resnet18", "IMAGENET9K_V9")
    assert "IMAGENET1K_V1" in _one_line(caught)


def test_uncached_weights_offline_say_where_to_put_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("EXPLGRAPH_OFFLINE", "1")
    with pytest.raises(ModelError) as caught:
        load_model("resnet18", "IMAGENET1K_V1")
    message = _one_line(caught)
    assert str(tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth") in message
    assert not (tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth").exists()


def test_without_the_weights_package_mobilenet_says_where_to_put_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import miner.models.packaged_weights as packaged

    monkeypatch.setattr(packaged, "PACKAGED_WEIGHTS", {})  # as if the package were not installed
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(ModelError) as caught:
        load_model("mobilenet_v2", "IMAGENET1K_V1", allow_download=False)
    message = _one_line(caught)
    assert str(tmp_path / "hub" / "checkpoints" / "mobilenet_v2-b0353104.pth") in message


def test_a_packaged_file_that_is_not_torchvision_s_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import miner.models.packaged_weights as packaged

    package = tmp_path / "site" / "impostor_weights"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    torch.save(torchvision.models.mobilenet_v2().state_dict(), package / "mobilenet_v2.pth")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    impostor = packaged.PackagedFile("impostor_weights", "mobilenet_v2.pth")
    monkeypatch.setattr(packaged, "PACKAGED_WEIGHTS", {"mobilenet_v2-b0353104.pth": impostor})
    found = packaged.packaged_weights("mobilenet_v2-b0353104.pth")
    assert found is not None and found.path == package / "mobilenet_v2.pth"
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(ModelError) as caught:
        load_model("mobilenet_v2", "IMAGENET1K_V1", allow_download=False)
    message = _one_line(caught)
    assert "does not hold torchvision's mobilenet_v2-b0353104.pth" in message
    assert "expected b0353104" in message


def test_corrupt_cached_weights_are_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"not a checkpoint")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(ModelError) as caught:
        load_model("resnet18", "DEFAULT", allow_download=False)
    assert "delete the file" in _one_line(caught)


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    net = ToyVGG(3, widths=(4, 6, 8, 10)).eval()
    path = save_checkpoint(
        tmp_path / "toy.pt",
        net,
        arch="toy_vgg",
        arch_kwargs=net.arch_kwargs(),
        classes=["a", "b", "c"],
        input_size=48,
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        meta={"test_accuracy": 0.5},
    )
    loaded = load_model(str(path))
    assert (loaded.name, loaded.family, loaded.weights) == ("toy_vgg", "toy_vgg", "toy.pt")
    assert (loaded.input_size, loaded.classes) == (48, ["a", "b", "c"])
    assert (loaded.mean, loaded.std) == ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    assert loaded.fingerprint == fingerprint(net)
    assert loaded.default_layers == ["block3_conv1", "block3_conv2", "block4_conv1", "block4_conv2"]
    image = torch.rand(2, 3, 48, 48)
    with torch.no_grad():
        assert torch.equal(loaded.module(image), net(image))
    assert read_checkpoint(path).meta == {"test_accuracy": 0.5}


def test_fingerprint_changes_with_any_weight() -> None:
    net = TinyNet()
    before = fingerprint(net)
    assert fingerprint(net) == before
    with torch.no_grad():
        net.conv_c.weight[0, 0, 0, 0] += 1e-6
    assert fingerprint(net) != before


def test_checkpoint_that_does_not_fit_names_the_keys(tmp_path: Path) -> None:
    net = ToyVGG(4)
    state = net.state_dict()
    del state["block4_conv2.bias"]
    state["extra.weight"] = torch.zeros(1)
    state["fc.weight"] = torch.zeros(7, 64)
    payload_path = tmp_path / "bad.pt"
    save_checkpoint(payload_path, net, arch="toy_vgg", arch_kwargs=net.arch_kwargs(), input_size=96)
    payload = torch.load(payload_path, weights_only=True)
    payload["state_dict"] = state
    torch.save(payload, payload_path)
    with pytest.raises(ModelError) as caught:
        load_model(str(payload_path))
    message = _one_line(caught)
    assert "1 missing keys (block4_conv2.bias)" in message
    assert "1 unexpected keys (extra.weight)" in message
    assert "fc.weight [7, 64] vs [4, 64]" in message


def test_plain_state_dict_needs_an_architecture(tmp_path: Path) -> None:
    path = tmp_path / "plain.pth"
    net = ToyVGG(4)
    torch.save(net.state_dict(), path)
    with pytest.raises(ModelError, match="plain state dict with no architecture"):
        load_model(str(path))
    loaded = load_model(str(path), "toy_vgg")
    assert loaded.fingerprint == fingerprint(net)


def test_state_dict_of_another_architecture_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tiny.pth"
    torch.save({"model": TinyNet().state_dict()}, path)  # nested, as trainers often save it
    with pytest.raises(ModelError) as caught:
        load_model("resnet18", str(path))
    message = _one_line(caught)
    assert "do not fit ResNet" in message and "missing keys" in message
    assert "unexpected keys (conv_a.weight" in message


def test_fine_tuned_torchvision_weights_keep_their_class_count(tmp_path: Path) -> None:
    path = tmp_path / "ft.pth"
    net = torchvision.models.resnet18(num_classes=10)
    torch.save(net.state_dict(), path)
    loaded = load_model("resnet18", str(path))
    assert loaded.module(torch.zeros(1, 3, 64, 64)).shape == (1, 10)
    assert loaded.fingerprint == fingerprint(net)


def test_unreadable_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "broken.pt"
    path.write_bytes(b"\x00garbage")
    with pytest.raises(ModelError) as caught:
        load_model(str(path))
    assert "cannot read checkpoint" in _one_line(caught)
    with pytest.raises(ModelError, match="does not exist"):
        load_model(str(tmp_path / "missing.pt"))


class _RunsCode:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("this would run on load",))


def test_a_checkpoint_that_would_run_code_is_refused_without_torch_s_advice(
    tmp_path: Path,
) -> None:
    # issue 22: the refusal repeated torch's "weights_only=False will likely succeed"
    path = tmp_path / "evil.pt"
    torch.save({"weights": _RunsCode()}, path)
    with pytest.raises(ModelError) as caught:
        read_checkpoint(path)
    message = str(caught.value)
    assert "could run code" in message and "\n" not in message
    assert "weights_only" not in message and "\x1b" not in message and "succeed" not in message


def test_module_callable(tmp_path: Path) -> None:
    loaded = load_model("tests.helpers.models:tiny_net")
    assert (loaded.name, loaded.weights, loaded.family) == ("TinyNet", "random", "generic")
    assert not loaded.module.training
    weights = TinyNet()
    path = tmp_path / "tiny.pt"
    torch.save(weights.state_dict(), path)
    with_weights = load_model("tests.helpers.models:tiny_net", str(path))
    assert with_weights.fingerprint == fingerprint(weights) != loaded.fingerprint


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("tests.helpers.no_such_module:net", "cannot import"),
        ("tests.helpers.models:no_such_net", "has no attribute"),
        ("tests.helpers.models:TINY_GEOMETRY", "is not callable"),
        ("tests.helpers.models:loaded_model.__name__", "is not callable"),
    ],
)
def test_module_callable_errors(spec: str, expected: str) -> None:
    with pytest.raises(ModelError, match=expected):
        load_model(spec)


def test_callable_must_return_a_module() -> None:
    with pytest.raises(ModelError, match=r"not a torch\.nn\.Module"):
        load_model("collections:OrderedDict")


def test_toy_by_name_with_random_weights() -> None:
    loaded = load_model("toy_vgg", "none")
    assert (loaded.name, loaded.input_size, loaded.family) == ("toy_vgg", 96, "toy_vgg")


def test_devices() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ModelError, match="unknown device"):
        resolve_device("abacus")
    if not torch.cuda.is_available():
        with pytest.raises(ModelError, match="CUDA is not available"):
            resolve_device("cuda:0")
