"""Every parameter of explanatory-graph learning and inference (docs/method.md §3-5)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch

from explgraph.core.errors import InputError
from miner.models.spec import LayerGeometry

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass(frozen=True)
class GraphSettings:
    """The knobs of docs/method.md, each with the paper's default (VGG-16).

    Lengths are given as fractions of the layer's map height ``H`` and turned into map units per
    layer. ``density`` lists patterns-per-unit for each selected layer bottom→top; left empty, the
    rule below applies: ``density_top`` for the top stage (every layer whose stride equals the top
    layer's stride, i.e. conv5_x for VGG-16), ``density_low`` for the layers below.
    """

    density: tuple[float, ...] = ()
    density_top: float = 0.1
    density_low: float = 0.05
    parents: int = 15  # M: parents per pattern
    candidate_pool: int = 600  # candidate parents kept in the layer above
    iterations: int = 20  # T: EM iterations per layer (0 = patterns at initialisation)
    grid: int = 6  # candidates per axis inside the window
    window: float = 0.15  # half window and initial sigma, fraction of H
    sigma_map: float = 0.025  # evidence smoothing, fraction of H
    truncate: float = 3.0  # smoothing kernel cut at this many sigma_map
    tau: float = 0.1  # background term, fraction of the mean summed prior per pattern
    sigma_clip: tuple[float, float] = (0.1, 1.0)  # times 1/sqrt(density), map units
    border: float = 0.1  # candidate parents closer than this (fraction of H) to the border go
    static_drop: float = 0.5  # share of the least-moving upper patterns dropped as parents
    seed: int = 0
    use_flip: bool = True  # choose per image between it and its mirror at the top layer
    use_parents: bool = True  # False: every layer is learned like the top one (a control)
    chunk_size: int = 32  # images read from the feature source at a time
    work_elements: int = 1 << 24  # largest intermediate tensor (elements) of one sub-chunk
    dtype: str = "float32"

    def __post_init__(self) -> None:
        checks = [
            (self.parents >= 1, "parents must be at least 1"),
            (self.candidate_pool >= 1, "candidate_pool must be at least 1"),
            (self.iterations >= 0, "iterations must be 0 or more"),
            (self.grid >= 1, "grid must be at least 1"),
            (self.window > 0 and self.sigma_map > 0, "window and sigma_map must be positive"),
            (self.truncate > 0 and self.tau >= 0, "truncate must be positive, tau non-negative"),
            (0 < self.sigma_clip[0] <= self.sigma_clip[1], "sigma_clip must be 0 < low <= high"),
            (0 <= self.border < 0.5, "border must be in [0, 0.5)"),
            (0 <= self.static_drop < 1, "static_drop must be in [0, 1)"),
            (self.chunk_size >= 1 and self.work_elements >= 1, "chunk sizes must be positive"),
            (self.dtype in _DTYPES, f"dtype must be one of {sorted(_DTYPES)}"),
            (
                all(d > 0 for d in (*self.density, self.density_top, self.density_low)),
                "densities must be positive",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(f"invalid graph settings: {message}; fix the value and retry")

    @property
    def torch_dtype(self) -> torch.dtype:
        """The floating-point type used for learning and inference."""
        return _DTYPES[self.dtype]

    def densities(self, layers: Sequence[LayerGeometry]) -> tuple[float, ...]:
        """Patterns per map unit for each layer (bottom→top), explicit or by the default rule."""
        if self.density:
            if len(self.density) != len(layers):
                raise InputError(
                    f"density lists {len(self.density)} values for {len(layers)} layers; "
                    "give one per layer or leave it empty for the default rule"
                )
            return tuple(float(d) for d in self.density)
        top_stride = layers[-1].stride
        return tuple(
            self.density_top if math.isclose(g.stride, top_stride) else self.density_low
            for g in layers
        )

    def patterns_per_filter(self, layers: Sequence[LayerGeometry]) -> tuple[int, ...]:
        """N_L = ceil(H·W·density) for each layer; at least 1, at most H·W."""
        out = []
        for g, d in zip(layers, self.densities(layers), strict=True):
            n = max(1, math.ceil(g.height * g.width * d - 1e-9))
            if n > g.height * g.width:
                raise InputError(
                    f"density {d} asks for {n} patterns per filter on the {g.height}x{g.width} "
                    f"map of layer {g.name}; use a density of at most 1"
                )
            out.append(n)
        return tuple(out)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values, for storing with the graph."""
        out = asdict(self)
        out["density"] = list(self.density)
        out["sigma_clip"] = list(self.sigma_clip)
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> GraphSettings:
        """Inverse of :meth:`to_dict`; unknown keys are an error (they would be silently lost)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(f"unknown graph settings {unknown}; valid names: {sorted(known)}")
        kwargs = dict(values)
        if "density" in kwargs:
            kwargs["density"] = tuple(kwargs["density"])
        if "sigma_clip" in kwargs:
            kwargs["sigma_clip"] = tuple(kwargs["sigma_clip"])
        return cls(**kwargs)


__all__ = ["GraphSettings"]
