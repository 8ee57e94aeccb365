"""What explanatory-graph learning reads (a feature source) and what it produces (the graph).

Positions are ``(x, y)`` in map units of their layer (unit ``(0, 0)`` top-left); pixels come from
:meth:`miner.models.spec.LayerGeometry.to_pixels`. Patterns of a layer are ordered filter-major:
pattern ``p`` belongs to filter ``p // N`` where ``N`` is the layer's patterns per filter.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch

from explgraph.core.errors import InputError, MiningError
from miner.graph.settings import GraphSettings
from miner.models.spec import LayerGeometry


@runtime_checkable
class FeatureSource(Protocol):
    """Normalised activation mass of the selected layers for a fixed, ordered set of images."""

    @property
    def num_images(self) -> int:
        """How many images the source holds."""

    @property
    def layers(self) -> list[LayerGeometry]:
        """Geometry of the selected layers, bottom→top."""

    @property
    def mirrored(self) -> bool:
        """Whether features of the mirrored images are available (``flipped=True``)."""

    def chunk(
        self,
        layer: int,
        start: int,
        stop: int,
        *,
        flipped: bool = False,
        device: str | torch.device = "cpu",
    ) -> torch.Tensor:
        """Mass ``m >= 0`` of images ``start:stop`` of one layer, float32 ``[n, C, H, W]``."""


class FeatureView:
    """A :class:`FeatureSource` that reads another: every member passes through to the wrapped
    source, so a subclass overrides only what it changes (the layers, or how a chunk is read)."""

    def __init__(self, features: FeatureSource) -> None:
        self._features = features

    @property
    def num_images(self) -> int:
        """How many images the source holds."""
        return self._features.num_images

    @property
    def layers(self) -> list[LayerGeometry]:
        """Geometry of the layers, bottom→top."""
        return self._features.layers

    @property
    def mirrored(self) -> bool:
        """Whether features of the mirrored images are available."""
        return self._features.mirrored

    def chunk(
        self,
        layer: int,
        start: int,
        stop: int,
        *,
        flipped: bool = False,
        device: str | torch.device = "cpu",
    ) -> torch.Tensor:
        """The wrapped source's chunk."""
        return self._features.chunk(layer, start, stop, flipped=flipped, device=device)


class LayerSlice(FeatureView):
    """The layers ``start:stop`` of a feature source, seen as a source of their own (a layer
    index ``i`` of the slice reads layer ``start + i`` of the source)."""

    def __init__(self, features: FeatureSource, start: int, stop: int | None = None) -> None:
        super().__init__(features)
        self._start = start
        self._stop = stop

    @property
    def layers(self) -> list[LayerGeometry]:
        """Geometry of the sliced layers, bottom→top."""
        return self._features.layers[self._start : self._stop]

    def chunk(
        self,
        layer: int,
        start: int,
        stop: int,
        *,
        flipped: bool = False,
        device: str | torch.device = "cpu",
    ) -> torch.Tensor:
        """Layer ``start + layer`` of the source."""
        return super().chunk(self._start + layer, start, stop, flipped=flipped, device=device)


class TensorFeatures:
    """An in-memory :class:`FeatureSource` (tests, benchmarks, small image sets).

    Args:
        maps: one tensor ``[N, C, H, W]`` per layer, bottom→top, mass already normalised.
        layers: the geometry of each layer (its channels/height/width must match ``maps``).
        flipped_maps: the same for the mirrored images; ``None`` means no mirrored features.
        key: identity of the features, used to key learning checkpoints.
    """

    def __init__(
        self,
        maps: list[torch.Tensor],
        layers: list[LayerGeometry],
        flipped_maps: list[torch.Tensor] | None = None,
        key: str = "tensor-features",
    ) -> None:
        if not maps or len(maps) != len(layers):
            raise InputError(
                f"got {len(maps)} feature maps for {len(layers)} layers; give one tensor per layer"
            )
        for group in [maps] if flipped_maps is None else [maps, flipped_maps]:
            if len(group) != len(layers):
                raise InputError("flipped_maps must hold one tensor per layer, like maps")
            for m, g in zip(group, layers, strict=True):
                if m.dim() != 4 or tuple(m.shape[1:]) != (g.channels, g.height, g.width):
                    raise InputError(
                        f"layer {g.name}: features of shape {tuple(m.shape)} do not match "
                        f"[N, {g.channels}, {g.height}, {g.width}]; check the layer geometry"
                    )
                if m.shape[0] != maps[0].shape[0]:
                    raise InputError("every layer must hold the same number of images")
        self._maps = [m.float() for m in maps]
        self._flipped = None if flipped_maps is None else [m.float() for m in flipped_maps]
        self._layers = list(layers)
        self.key = key

    @property
    def num_images(self) -> int:
        """How many images the source holds."""
        return int(self._maps[0].shape[0])

    @property
    def layers(self) -> list[LayerGeometry]:
        """Geometry of the layers, bottom→top."""
        return self._layers

    @property
    def mirrored(self) -> bool:
        """Whether mirrored features were given."""
        return self._flipped is not None

    def chunk(
        self,
        layer: int,
        start: int,
        stop: int,
        *,
        flipped: bool = False,
        device: str | torch.device = "cpu",
    ) -> torch.Tensor:
        """Mass of images ``start:stop`` of one layer, on ``device``."""
        if flipped and self._flipped is None:
            raise MiningError("no mirrored features were given; pass flipped_maps or flipped=False")
        source = self._flipped if flipped and self._flipped is not None else self._maps
        return source[layer][start:stop].to(device)


@dataclass
class LayerPatterns:
    """The learned patterns (graph nodes) of one layer.

    Attributes:
        geometry: the layer.
        filter: ``[P]`` long, the filter each pattern belongs to.
        mu: ``[P, 2]`` prior position (map units).
        sigma: ``[P]`` positional spread (map units).
        parents: ``[P, M]`` long, indices of patterns of the layer above; ``-1`` = no parent.
        parent_weight: ``[P, M]`` co-activation score of each edge (docs/method.md §5.3).
        parent_mean: ``[P, M, 2]`` mean inferred position p̄ of each parent (parent map units).
        mean_position: ``[P, 2]`` mean inferred position over the training images (map units).
        mean_score: ``[P]`` mean inference score S over the training images.
        soft_norm: mean raw soft score over patterns and training images; inference divides by it
            so soft scores of new images are on the training scale.
        explained_share: fraction of the layer's activation mass over the training images that the
            patterns take through their responsibilities (the rest goes to the background term).
    """

    geometry: LayerGeometry
    filter: torch.Tensor
    mu: torch.Tensor
    sigma: torch.Tensor
    parents: torch.Tensor
    parent_weight: torch.Tensor
    parent_mean: torch.Tensor
    mean_position: torch.Tensor
    mean_score: torch.Tensor
    soft_norm: float
    explained_share: float

    @property
    def num_patterns(self) -> int:
        """P, the number of patterns of the layer."""
        return int(self.mu.shape[0])

    @property
    def per_filter(self) -> int:
        """N, the patterns per filter."""
        return self.num_patterns // self.geometry.channels

    def edge_offsets(self, upper: LayerGeometry) -> torch.Tensor:
        """``[P, M, 2]`` expected offset mu_V - p̄_V' of each edge in input pixels (0 where none)."""
        offset = self.geometry.to_pixels(self.mu)[:, None, :] - upper.to_pixels(self.parent_mean)
        return torch.where(self.parents[..., None] >= 0, offset, torch.zeros_like(offset))

    def to(self, device: str | torch.device) -> LayerPatterns:
        """A copy with every tensor on ``device``."""
        values: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            values[f.name] = v.to(device) if isinstance(v, torch.Tensor) else v
        return LayerPatterns(**values)

    def to_state(self) -> dict[str, Any]:
        """Plain dict of tensors and numbers (for ``torch.save``)."""
        state = {f.name: getattr(self, f.name) for f in fields(self)}
        state["geometry"] = dict(vars(self.geometry))
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> LayerPatterns:
        """Inverse of :meth:`to_state`."""
        values = dict(state)
        values["geometry"] = LayerGeometry(**values["geometry"])
        return cls(**values)


@dataclass
class ExplanatoryGraph:
    """A learned explanatory graph.

    Attributes:
        layers: patterns of each layer, bottom→top.
        settings: the parameters it was learned with (seed included).
        flips: ``[N]`` bool, per training image whether its mirror was used (top-layer choice).
    """

    layers: list[LayerPatterns]
    settings: GraphSettings
    flips: torch.Tensor

    def save(self, path: str | Path) -> None:
        """Write the graph with ``torch.save`` (tensors and a plain settings dict)."""
        torch.save(
            {
                "format": "explgraph-graph/1",
                "settings": self.settings.to_dict(),
                "flips": self.flips.cpu(),
                "layers": [layer.to("cpu").to_state() for layer in self.layers],
            },
            Path(path),
        )

    @classmethod
    def load(cls, path: str | Path) -> ExplanatoryGraph:
        """Read a graph written by :meth:`save`."""
        try:
            state = torch.load(Path(path), map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, pickle.UnpicklingError) as exc:
            raise InputError(
                f"cannot read explanatory graph {path}: {exc}; re-run learning"
            ) from exc
        if not isinstance(state, dict) or state.get("format") != "explgraph-graph/1":
            raise InputError(f"{path} is not an explanatory graph file written by explgraph")
        return cls(
            layers=[LayerPatterns.from_state(s) for s in state["layers"]],
            settings=GraphSettings.from_dict(state["settings"]),
            flips=state["flips"],
        )


@dataclass
class LayerInference:
    """Inference of one layer on a batch of ``n`` images.

    Attributes:
        positions: ``[n, P, 2]`` inferred position p̂ (map units, in the frame of the orientation
            used for that image: see :attr:`GraphInference.flipped`).
        expected: ``[n, P, 2]`` expected position c_V = mu_V + shift_V before looking at evidence.
        score: ``[n, P]`` inference score S = max over candidates of g·A.
        soft: ``[n, P]`` soft score (sum over candidates of g·A) divided by the layer's training
            mean, for ranking.
    """

    positions: torch.Tensor
    expected: torch.Tensor
    score: torch.Tensor
    soft: torch.Tensor


@dataclass
class GraphInference:
    """Top-down inference of a whole graph on ``n`` images.

    ``layers`` is bottom→top like the graph. ``flipped[i]`` says whether image ``i`` was read
    through its mirror image; its positions are then in mirrored-image coordinates, and
    :meth:`pixels` maps them back to the original image.
    """

    layers: list[LayerInference]
    geometry: list[LayerGeometry]
    flipped: torch.Tensor

    def pixels(self, layer: int, input_size: int | None = None) -> torch.Tensor:
        """``[n, P, 2]`` positions of one layer as receptive-field centres in input pixels.

        With ``input_size`` (the side of the square network input), positions of mirrored images
        are mirrored back (``x -> input_size - x``; pixel ``i`` covers ``[i, i + 1)``) into the
        original image's frame.
        """
        px = self.geometry[layer].to_pixels(self.layers[layer].positions)
        if input_size is None or not bool(self.flipped.any()):
            return px
        mirrored_x = input_size - px[..., 0]
        x = torch.where(self.flipped[:, None].to(px.device), mirrored_x, px[..., 0])
        return torch.stack([x, px[..., 1]], dim=-1)


__all__ = [
    "ExplanatoryGraph",
    "FeatureSource",
    "FeatureView",
    "GraphInference",
    "LayerInference",
    "LayerPatterns",
    "LayerSlice",
    "TensorFeatures",
]
