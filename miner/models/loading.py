"""Load the CNN to mine: a torchvision model, a checkpoint file, or a ``module:callable``.

``spec`` and ``weights`` together name the model:

===========================  ===============================  ==================================
spec                         weights                          model
===========================  ===============================  ==================================
torchvision name (vgg16)     enum member (IMAGENET1K_V1),     torchvision's weights, through its
                             DEFAULT, or None (= DEFAULT)     own download cache ($TORCH_HOME),
                                                              or read in place from an installed
                                                              package that ships the file
                                                              (miner.models.packaged_weights)
torchvision name             ``none`` / ``random``            random initialisation
torchvision name             path to a state dict             that architecture with those
                                                              weights (class count taken from
                                                              the file)
checkpoint file (.pt/.pth)   None                             an explgraph checkpoint (arch,
                                                              weights, classes, input size)
checkpoint file              architecture name                a plain state dict for that arch
``toy_vgg``                  None / ``none`` / a checkpoint   the committed trained toy net
                                                              (``miner/assets/toy_vgg.pt``), a
                                                              random one, or that checkpoint
``module:callable``          None, or path to a state dict    ``callable()``, optionally loaded
===========================  ===============================  ==================================

The model comes back in eval mode with gradients off, on the requested device.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import logging
import os
import pickle
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
import torchvision
from torch import nn

from explgraph.core.errors import ModelError
from miner.models.checkpoint import (
    CHECKPOINT_SUFFIXES,
    Checkpoint,
    load_weights,
    read_checkpoint,
    state_dict_mismatch,
)
from miner.models.layers import default_layers, model_family
from miner.models.packaged_weights import load_packaged, packaged_weights
from miner.models.spec import LoadedModel
from miner.models.toy import TOY_ARCH, ToyVGG

TOY_CHECKPOINT = Path(__file__).resolve().parent.parent / "assets" / "toy_vgg.pt"
_CALLABLE_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_RANDOM_WEIGHTS = ("none", "random")
IMAGENET_INPUT_SIZE = 224

log = logging.getLogger(__name__)


def resolve_device(device: str | torch.device) -> torch.device:
    """``auto`` is CUDA when available, else the CPU; anything else as torch reads it."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise ModelError(f"unknown device '{device}'; use auto, cpu, cuda or cuda:N") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ModelError(f"device '{device}' asked for but CUDA is not available; use --device cpu")
    return resolved


def fingerprint(module: nn.Module) -> str:
    """A hash of every parameter and buffer (names, shapes, dtypes and bytes).

    It changes whenever any weight changes; hashing the raw bytes costs about a second per
    500 MB of weights, paid once per load.
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        data = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{data.dtype}:{tuple(data.shape)};".encode())
        digest.update(memoryview(data.reshape(-1).view(torch.uint8).numpy()))
    return digest.hexdigest()[:20]


def _torchvision_names() -> list[str]:
    return sorted(torchvision.models.list_models(module=torchvision.models))


def _is_checkpoint_path(text: str) -> bool:
    return text.lower().endswith(CHECKPOINT_SUFFIXES) or Path(text).is_file()


def _build_arch(arch: str, kwargs: dict[str, Any]) -> nn.Module:
    """A randomly initialised architecture by name (the toy net or a torchvision model)."""
    try:
        if arch == TOY_ARCH:
            return ToyVGG(**kwargs)
        if arch in _torchvision_names():
            return torchvision.models.get_model(arch, weights=None, **kwargs)
    except (TypeError, ValueError) as error:
        raise ModelError(f"cannot build {arch} with {kwargs}: {error}") from error
    raise ModelError(_unknown_model_message(arch))


def _unknown_model_message(spec: str) -> str:
    names = [*_torchvision_names(), TOY_ARCH]
    close = difflib.get_close_matches(spec, names, n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return (
        f"unknown model '{spec}': not a torchvision classification model, an existing checkpoint "
        f"file or a module:callable.{hint} (torchvision.models.list_models() lists the names)"
    )


def _fit_classifier(arch: str, state_dict: dict[str, torch.Tensor], source: str) -> nn.Module:
    """Build ``arch`` for ``state_dict``: with its class count when that is all that differs."""
    model = _build_arch(arch, {})
    if state_dict_mismatch(model, state_dict) is None:
        return model
    matrices = [t for t in state_dict.values() if t.ndim == 2]
    if matrices:
        # A fine-tuned torchvision net differs only in its last Linear: take its class count.
        try:
            candidate = _build_arch(arch, {"num_classes": int(matrices[-1].shape[0])})
        except ModelError:
            candidate = None
        if candidate is not None and state_dict_mismatch(candidate, state_dict) is None:
            return candidate
    load_weights(model, state_dict, source)  # raises with the mismatch
    return model


def _weights_enum_member(arch: str, weights: str) -> Any:
    enum = torchvision.models.get_model_weights(arch)
    member_name = weights.rsplit(".", 1)[-1]  # accept "VGG16_Weights.IMAGENET1K_V1" too
    try:
        return enum[member_name]
    except KeyError:
        valid = ", ".join([*(m.name for m in enum), "DEFAULT", "none"])
        raise ModelError(
            f"unknown weights '{weights}' for {arch}; valid: {valid}, or a state-dict file path"
        ) from None


def _cached_weights_path(url: str) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def _load_torchvision(
    arch: str, weights: str, allow_download: bool
) -> tuple[nn.Module, str, Any, Path]:
    """torchvision's weights from its cache, else an installed package that ships them, else a
    download; returns the module, the weights' name and enum member, and the file read."""
    member = _weights_enum_member(arch, weights)
    cached = _cached_weights_path(member.url)
    packaged = None if cached.is_file() else packaged_weights(cached.name)
    if packaged is not None:
        return load_packaged(arch, member, packaged), member.name, member, packaged.path
    where = f"put {cached.name} (from {member.url}) at {cached}"
    if not cached.is_file() and not allow_download:
        raise ModelError(
            f"weights {arch} {member.name} are not in the torch cache and downloads are off; "
            f"{where} (TORCH_HOME sets the cache folder)"
        )
    try:
        module = torchvision.models.get_model(arch, weights=member)
    except OSError as error:  # URLError, HTTP errors, no network
        raise ModelError(
            f"cannot download weights {arch} {member.name} ({error}); {where} "
            "(TORCH_HOME sets the cache folder)"
        ) from error
    except (RuntimeError, pickle.UnpicklingError, EOFError) as error:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ModelError(
            f"cached weights {cached} for {arch} cannot be loaded ({first_line}); delete the file "
            "and download it again"
        ) from error
    return module, member.name, member, cached


def _from_torchvision(spec: str, weights: str | None, allow_download: bool) -> dict[str, Any]:
    arch = spec.lower()
    if arch not in _torchvision_names():
        raise ModelError(_unknown_model_message(spec))
    base: dict[str, Any] = {"name": arch, "input_size": IMAGENET_INPUT_SIZE}
    choice = "DEFAULT" if weights is None else weights
    if choice.lower() in _RANDOM_WEIGHTS:
        return {**base, "module": _build_arch(arch, {}), "weights": "random"}
    if _is_checkpoint_path(choice):
        ckpt = read_checkpoint(choice)
        if ckpt.arch is not None and ckpt.arch != arch:
            raise ModelError(
                f"checkpoint {choice} is a {ckpt.arch}, not a {arch}; load it on its own "
                f"(load_model('{choice}'))"
            )
        module = _fit_classifier(arch, ckpt.state_dict, choice)
        load_weights(module, ckpt.state_dict, choice)
        return {**base, "module": module, "weights": Path(choice).name, "classes": ckpt.classes}
    module, member_name, member, weights_file = _load_torchvision(arch, choice, allow_download)
    transforms = member.transforms()
    crop = getattr(transforms, "crop_size", [IMAGENET_INPUT_SIZE])
    return {
        **base,
        "module": module,
        "weights": member_name,
        "weights_file": str(weights_file),
        "classes": list(member.meta.get("categories") or []) or None,
        "input_size": int(crop[0]),
        "mean": tuple(float(v) for v in getattr(transforms, "mean", (0.485, 0.456, 0.406))),
        "std": tuple(float(v) for v in getattr(transforms, "std", (0.229, 0.224, 0.225))),
    }


def _from_toy(weights: str | None) -> dict[str, Any]:
    """``toy_vgg``: the committed trained checkpoint, or a random one with ``none``."""
    if weights is not None and weights.lower() in _RANDOM_WEIGHTS:
        return {"module": ToyVGG(4), "name": TOY_ARCH, "weights": "random", "input_size": 96}
    if weights is not None and weights != "DEFAULT":
        return _from_checkpoint(weights, TOY_ARCH)
    if not TOY_CHECKPOINT.is_file():
        raise ModelError(
            f"no trained toy checkpoint at {TOY_CHECKPOINT}; train one with "
            f"`explgraph train --out {TOY_CHECKPOINT}`, or use weights 'none'"
        )
    return _from_checkpoint(str(TOY_CHECKPOINT), None)


def _from_checkpoint(spec: str, weights: str | None) -> dict[str, Any]:
    ckpt: Checkpoint = read_checkpoint(spec)
    arch = ckpt.arch
    if arch is None:
        if weights is None:
            raise ModelError(
                f"{spec} is a plain state dict with no architecture; name it: "
                f"load_model('{spec}', 'vgg16') or load_model('vgg16', '{spec}') "
                "(CLI: --model vgg16 --weights FILE)"
            )
        arch = weights
        module = _fit_classifier(arch, ckpt.state_dict, spec)
    else:
        if weights is not None and weights != arch:
            raise ModelError(
                f"{spec} already holds a {arch} with its weights; drop the weights argument "
                f"'{weights}'"
            )
        module = _build_arch(arch, ckpt.arch_kwargs)
    if ckpt.interpretable is not None:
        from miner.models.interpretable import InterpretableSpec, attach_mask

        attach_mask(module, InterpretableSpec.from_dict(ckpt.interpretable))
    load_weights(module, ckpt.state_dict, spec)
    loaded: dict[str, Any] = {
        "module": module,
        "name": arch,
        "weights": Path(spec).name,
        "classes": ckpt.classes,
        "input_size": ckpt.input_size or IMAGENET_INPUT_SIZE,
        "interpretable": ckpt.interpretable,
    }
    if ckpt.mean is not None and ckpt.std is not None:
        loaded.update(mean=ckpt.mean, std=ckpt.std)
    return loaded


def _from_callable(spec: str, weights: str | None) -> dict[str, Any]:
    module_path, attr_path = spec.split(":", 1)
    try:
        target: Any = importlib.import_module(module_path)
    except ImportError as error:
        raise ModelError(
            f"cannot import {module_path} for {spec} ({error}); make sure it is on PYTHONPATH"
        ) from error
    for attr in attr_path.split("."):
        if not hasattr(target, attr):
            raise ModelError(f"{module_path} has no attribute '{attr_path}'; check {spec}")
        target = getattr(target, attr)
    if not callable(target):
        raise ModelError(
            f"{spec} is not callable; it must be a function or class returning a model"
        )
    module = target()
    if not isinstance(module, nn.Module):
        raise ModelError(f"{spec}() returned {type(module).__name__}, not a torch.nn.Module")
    name = "random"
    if weights is not None:
        ckpt = read_checkpoint(weights)
        load_weights(module, ckpt.state_dict, weights)
        name = Path(weights).name
    return {"module": module, "name": type(module).__name__, "weights": name}


def load_model(
    spec: str,
    weights: str | None = None,
    *,
    device: str | torch.device = "cpu",
    allow_download: bool | None = None,
) -> LoadedModel:
    """Load a CNN for mining (see the module docstring for every form of ``spec``/``weights``).

    Args:
        spec: a torchvision model name, a checkpoint file path, or ``package.module:callable``.
        weights: weights enum member, ``none``, a state-dict path, or an architecture name for a
            plain state dict (see the table above).
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
        allow_download: whether torchvision may download weights that are not in its cache;
            ``None`` means yes unless the environment sets ``EXPLGRAPH_OFFLINE=1``.

    Returns:
        The model in eval mode with gradients off, with its fingerprint and default layers.

    Raises:
        ModelError: unknown model or weights, weights that do not fit the architecture, or
            weights neither cached nor downloadable (the message says where to put the file).

    Example:
        >>> loaded = load_model("mobilenet_v2", "IMAGENET1K_V1")
        >>> loaded.default_layers[0]
        'features.6.conv.1'
    """
    if allow_download is None:
        allow_download = os.environ.get("EXPLGRAPH_OFFLINE", "") not in ("1", "true", "yes")
    target_device = resolve_device(device)
    if spec == TOY_ARCH:
        parts = _from_toy(weights)
    elif _is_checkpoint_path(spec):
        parts = _from_checkpoint(spec, weights)
    elif _CALLABLE_SPEC.match(spec):
        parts = _from_callable(spec, weights)
    else:
        parts = _from_torchvision(spec, weights, allow_download)
    module: nn.Module = parts.pop("module")
    module.eval()
    module.requires_grad_(False)
    weights_hash = fingerprint(module)
    module.to(target_device)
    input_size = int(parts.pop("input_size", IMAGENET_INPUT_SIZE))
    log.debug(
        "loaded %s (weights %s, fingerprint %s) on %s", spec, weights, weights_hash, target_device
    )
    return LoadedModel(
        module=module,
        source=spec,
        fingerprint=weights_hash,
        input_size=input_size,
        family=model_family(module),
        default_layers=default_layers(module, input_size),
        **parts,
    )


__all__ = ["fingerprint", "load_model", "resolve_device"]
