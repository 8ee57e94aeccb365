"""The CNN's identity, kept with a mined graph, and its checkpoint found again by fingerprint.

A graph is only meaningful with the CNN it was mined from. :func:`identify` records how to get
that CNN back: a torchvision name with its weights enum, or a checkpoint file's name, SHA-256 and
size (and, for a checkpoint bundled with this package such as the toy CNN, its package resource).
:func:`load_identified` loads it again on any machine: a bundled checkpoint from the installed
package, any other from ``--model-file``, the path it had at mining, or the same file name in
the folders searched (beside the store, a search path), each verified by its SHA-256 first.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torchvision

from explgraph.core.errors import ModelError
from miner.models.loading import load_model
from miner.models.spec import LoadedModel
from miner.models.toy import TOY_ARCH, bundled_checkpoint

#: Stands for the checkpoint file in :attr:`CnnIdentity.spec` / :attr:`CnnIdentity.weights`.
CHECKPOINT = "{checkpoint}"
_HASH_CHUNK = 1 << 20
_DEFAULT_WEIGHTS = (None, "DEFAULT")


@dataclass(frozen=True)
class FileFingerprint:
    """What identifies a checkpoint file: the SHA-256 of its bytes and its size."""

    sha256: str
    size: int

    def __str__(self) -> str:
        return f"sha256 {self.sha256[:16]}…, {self.size} bytes"


def file_fingerprint(path: Path) -> FileFingerprint:
    """The SHA-256 and size of ``path`` (read in 1 MB chunks)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return FileFingerprint(digest.hexdigest(), Path(path).stat().st_size)


@dataclass(frozen=True)
class CheckpointSearch:
    """Where to look for a checkpoint that has moved: the files named by the user
    (``--model-file``), then the same file name in each of ``folders``.

    ``strict``: one of the named files must be the checkpoint (a command about one model);
    otherwise a named file may belong to another model of the same command (``compare``).
    """

    model_files: tuple[Path, ...] = ()
    folders: tuple[Path, ...] = ()
    strict: bool = True


@dataclass(frozen=True)
class CnnIdentity:
    """How to load a mined graph's CNN again (stored as JSON in ``Model.identity``).

    ``spec`` and ``weights`` are :func:`~miner.models.loading.load_model`'s arguments, with
    :data:`CHECKPOINT` where the checkpoint file found at load time goes.
    """

    kind: str  # "torchvision", "checkpoint" or "callable"
    architecture: str
    spec: str
    weights: str | None
    weights_enum: str | None = None  # torchvision: e.g. "VGG16_Weights.IMAGENET1K_V1"
    file_name: str | None = None
    sha256: str | None = None
    size: int | None = None
    resource: str | None = None  # a checkpoint bundled with the miner package: its path there
    recorded_path: str | None = None  # where the checkpoint was at mining

    @property
    def fingerprint(self) -> FileFingerprint | None:
        """The checkpoint's fingerprint; ``None`` when the CNN has no checkpoint file."""
        if self.sha256 is None or self.size is None:
            return None
        return FileFingerprint(self.sha256, int(self.size))

    def to_json(self) -> str:
        """The identity as one JSON object."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> CnnIdentity:
        """Inverse of :meth:`to_json`.

        Raises:
            ModelError: the text is not an identity this version can read.
        """
        try:
            data: dict[str, Any] = json.loads(text)
            return cls(**data)
        except (ValueError, TypeError) as error:
            raise ModelError(
                f"the stored CNN identity cannot be read ({error}): mine the model again"
            ) from None


def bundled_resource(path: Path) -> str | None:
    """``path``'s place inside the miner package (``assets/toy_vgg.pt``) when it is a
    checkpoint the package ships; ``None`` otherwise."""
    assets = bundled_checkpoint().parent
    resolved = Path(path).resolve()
    return f"assets/{resolved.name}" if resolved.parent == assets else None


def resource_path(resource: str) -> Path:
    """Where the installed miner package holds ``resource``."""
    return Path(str(resources.files("miner").joinpath(resource)))


def _checkpoint_role(spec: str, weights: str | None) -> tuple[Path, str] | None:
    """The checkpoint file ``load_model(spec, weights)`` reads and which argument names it."""
    if spec == TOY_ARCH and weights in _DEFAULT_WEIGHTS:
        return bundled_checkpoint(), "spec"
    if Path(spec).is_file():
        return Path(spec), "spec"
    if weights is not None and Path(weights).is_file():
        return Path(weights), "weights"
    return None


def identify(loaded: LoadedModel, weights: str | None) -> CnnIdentity:
    """The identity of ``loaded``, which ``load_model(loaded.source, weights)`` returned."""
    found = _checkpoint_role(loaded.source, weights)
    if found is None:
        if ":" in loaded.source:
            return CnnIdentity("callable", loaded.name, loaded.source, weights)
        enum = None
        if loaded.weights not in (None, "random"):
            try:
                weights_class = torchvision.models.get_model_weights(loaded.name).__name__
            except (KeyError, ValueError):  # not a torchvision name: the weights name alone
                weights_class = None
            enum = f"{weights_class}.{loaded.weights}" if weights_class else loaded.weights
        return CnnIdentity("torchvision", loaded.name, loaded.source, loaded.weights, enum)
    path, role = found
    fingerprint = file_fingerprint(path)
    return CnnIdentity(
        "checkpoint",
        loaded.name,
        spec=CHECKPOINT if role == "spec" else loaded.source,
        weights=CHECKPOINT if role == "weights" else weights,
        file_name=path.name,
        sha256=fingerprint.sha256,
        size=fingerprint.size,
        resource=bundled_resource(path),
        recorded_path=str(path.resolve()),
    )


def _verified(path: Path, wanted: FileFingerprint) -> bool:
    """Whether ``path`` is a file with the ``wanted`` fingerprint (size compared first)."""
    return (
        path.is_file() and path.stat().st_size == wanted.size and (file_fingerprint(path) == wanted)
    )


def locate_checkpoint(identity: CnnIdentity, search: CheckpointSearch, model_id: str) -> Path:
    """The checkpoint file of ``identity``, verified by its SHA-256 (module docstring).

    Raises:
        ModelError: ``search.model_file`` is another file (the line names both fingerprints),
            or the checkpoint is nowhere searched.
    """
    wanted = identity.fingerprint
    if wanted is None:
        raise ModelError(f"the CNN of {model_id} has no checkpoint file to find")
    given = _given_file(identity, search, wanted, model_id)
    if given is not None:
        return given
    candidates = [resource_path(identity.resource)] if identity.resource else []
    candidates += [Path(identity.recorded_path)] if identity.recorded_path else []
    candidates += [Path(folder) / str(identity.file_name) for folder in search.folders]
    for candidate in candidates:
        if _verified(candidate, wanted):
            return candidate
    folders = ", ".join(str(folder) for folder in search.folders) or "none"
    named = "".join(f"; {path} has {file_fingerprint(path)}" for path in search.model_files)
    raise ModelError(
        f"the checkpoint of {model_id} ({identity.file_name}, {wanted}) is not at "
        f"{identity.recorded_path} nor in the folders searched ({folders}){named}: pass "
        "--model-file FILE, or put the file beside the store"
    )


def _given_file(
    identity: CnnIdentity, search: CheckpointSearch, wanted: FileFingerprint, model_id: str
) -> Path | None:
    """The ``--model-file`` that is the checkpoint; with ``strict``, one line naming both
    fingerprints when the named file is another one."""
    for path in search.model_files:
        if not Path(path).is_file():
            raise ModelError(f"--model-file {path} does not exist: name the checkpoint file")
    found = [(Path(path), file_fingerprint(Path(path))) for path in search.model_files]
    for path, fingerprint in found:
        if fingerprint == wanted:
            return path
    if search.strict and found:
        path, fingerprint = found[0]
        raise ModelError(
            f"{path} is not the checkpoint {model_id} was mined from: it has {fingerprint}, "
            f"{identity.file_name} has {wanted}"
        )
    return None


def load_identified(
    identity: CnnIdentity, search: CheckpointSearch, model_id: str, *, device: str = "cpu"
) -> LoadedModel:
    """Load the CNN of ``identity``: its checkpoint found by :func:`locate_checkpoint`.

    Raises:
        ModelError: the checkpoint cannot be found or loaded (see :func:`locate_checkpoint`).
    """
    if identity.fingerprint is None:
        return load_model(identity.spec, identity.weights, device=device)
    path = str(locate_checkpoint(identity, search, model_id))
    spec = path if identity.spec == CHECKPOINT else identity.spec
    weights = path if identity.weights == CHECKPOINT else identity.weights
    return load_model(spec, weights, device=device)


__all__ = [
    "CHECKPOINT",
    "CheckpointSearch",
    "CnnIdentity",
    "FileFingerprint",
    "bundled_resource",
    "file_fingerprint",
    "identify",
    "load_identified",
    "locate_checkpoint",
    "resource_path",
]
