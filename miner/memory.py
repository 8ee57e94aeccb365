"""How much memory and disk a mining run will take, estimated before any work starts.

Mining holds, per selected layer (``C`` filters on an ``H x W`` map, ``N_L`` patterns per filter,
``P = C·N_L`` patterns, ``G x G`` candidates, ``n`` images per chunk, ``N`` images in all):

* **candidate competition** (E-step): for each image slice, a boolean overlap table
  ``[C, N_L, N_L]`` and, for every overlapping (pattern, query-group) pair, its cell indices and
  a ``G x G`` gather — quadratic in patterns per filter;
* **explained-mass pass** (end of each layer): every pattern's prior evaluated on the whole
  ``H x W`` map, ``P·H·W`` floats per image — the term that makes a 224 px layer without
  pooling (``P`` ≈ 80 000) need 16 GB for a *single* image;
* **evaluation tensors** ``[n, P, G, G]`` (prior, evidence, their product, competition, ...;
  twice with mirroring);
* the **feature chunk** ``[n, C, H, W]`` (mass and smoothed, twice with mirroring);
* per-image **positions and scores** ``[N, P]`` kept for the layer and its children;
* **parent selection** scores ``[P, K]`` in float64.

The estimate is the process's current resident memory plus the largest per-layer working set
plus what every layer keeps. It is compared with ``--max-memory`` or, without it, with the
memory the kernel reports as available; the feature cache (float16 maps on disk) is compared
with the free space of the cache folder. :func:`check_mining_fits` refuses with one line that
names the dominant term and the settings that shrink it.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from explgraph.core.errors import InputError
from miner.graph.settings import GraphSettings
from miner.models.spec import LayerGeometry

_FLOAT16 = 2
_INT64 = 8
_FLOAT64 = 8
# Evaluation tensors alive at once in the E-step: centre-grid queries, prior g, evidence A,
# g·A, competition, responsibility, phi — and the same again for the mirrored orientation.
_EVALUATION_COPIES = 8
# Bytes per overlapping (pattern, query group) pair in the competition sum, per candidate row:
# int64 cell index per axis, one padded table row gather and the float result.
_PAIR_OVERHEAD = 4 * _INT64 + 8  # the (image, filter, pattern, group) indices and 1/cell


@dataclass(frozen=True)
class LayerEstimate:
    """Bytes one layer needs: its largest working set and what it keeps until the end."""

    name: str
    patterns: int
    working: int
    kept: int
    dominant: str  # which term of the working set is largest


@dataclass(frozen=True)
class MiningEstimate:
    """Peak resident memory (bytes) of a mining run, and the feature cache size on disk."""

    base: int
    layers: tuple[LayerEstimate, ...]
    extraction: int
    cache_bytes: int

    @property
    def peak(self) -> int:
        """Base + the worst of extraction and learning (largest working set + everything kept)."""
        kept = sum(layer.kept for layer in self.layers)
        working = max((layer.working for layer in self.layers), default=0)
        return self.base + max(self.extraction, working + kept)

    @property
    def worst(self) -> LayerEstimate | None:
        """The layer with the largest working set."""
        return max(self.layers, key=lambda layer: layer.working, default=None)


def format_bytes(value: float) -> str:
    """``1.5 GB``-style text (powers of 1024)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(value) < 1024 or unit == "TB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{int(value)} B"
        value /= 1024
    return f"{value:.1f} TB"


def parse_bytes(text: str) -> int:
    """``"8G"``, ``"512MB"``, ``"1.5 GiB"``, ``"1000000"`` → bytes (powers of 1024).

    Raises:
        InputError: not a size.
    """
    found = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)(i?b)?\s*", text, re.IGNORECASE)
    if not found:
        raise InputError(f"--max-memory {text!r} is not a size; write e.g. 8G, 512M or 1.5GB")
    power = " kmgt".index(found.group(2).lower() or " ")
    return int(float(found.group(1)) * 1024**power)


def available_memory() -> int | None:
    """Bytes the kernel says can be allocated without swapping (``MemAvailable``), if known."""
    try:
        import psutil  # optional

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def resident_memory() -> int:
    """This process's resident set size in bytes (0 where ``/proc`` is missing)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            pages = int(handle.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _overlap(geometry: LayerGeometry, settings: GraphSettings) -> float:
    """Share of (pattern, query group) pairs of one filter whose windows overlap.

    Windows start at ``±window·H`` around spread-out centres; two overlap when their centres
    are closer than a window side on both axes.
    """
    side = 4 * settings.window * geometry.height
    return min(1.0, side / geometry.width) * min(1.0, side / geometry.height)


def layer_estimate(
    geometry: LayerGeometry,
    per_filter: int,
    *,
    n_images: int,
    settings: GraphSettings,
    mirrored: bool,
    upper_patterns: int | None,
) -> LayerEstimate:
    """The bytes learning one layer needs (see the module docstring for the terms)."""
    item = 8 if settings.dtype == "float64" else 4
    c, h, w, grid = geometry.channels, geometry.height, geometry.width, settings.grid
    patterns = c * per_filter
    chunk = max(1, min(settings.chunk_size, n_images))
    flips = 2 if mirrored and settings.use_flip else 1
    budget = settings.work_elements

    # candidate competition: sliced so that C·N_L²·G² elements per slice stay within the budget
    per_image = c * per_filter * per_filter * grid * grid
    images = max(1, min(chunk, budget // max(per_image, 1)))
    pairs = c * per_filter * per_filter * _overlap(geometry, settings)
    per_pair = _PAIR_OVERHEAD + grid * (2 * _INT64 + (grid + 1) * item + grid * item)
    competition = images * (3 * c * per_filter * per_filter + int(pairs * per_pair))
    competition += chunk * patterns * grid * grid * item

    # explained-mass pass: every pattern's prior on the whole map, image by image
    per_image = patterns * h * w
    images = max(1, min(chunk, budget // max(per_image, 1)))
    per_pair = _PAIR_OVERHEAD + w * _INT64 + h * _INT64 + h * (grid + 1) * item + h * w * item
    mass_pass = images * (3 * patterns + patterns * per_pair) + 2 * chunk * c * h * w * item

    evaluation = _EVALUATION_COPIES * flips * chunk * patterns * grid * grid * item
    features = 2 * flips * chunk * c * h * w * item + chunk * c * h * w * _FLOAT16
    pool = min(settings.candidate_pool, upper_patterns or 0)
    parents = patterns * pool * _FLOAT64 + 4 * budget * _FLOAT64 if upper_patterns else 0
    terms = {
        "candidate competition": competition,
        "explained-mass pass": mass_pass,
        "evaluation tensors": evaluation + features,
        "parent selection": parents,
    }
    dominant = max(terms, key=lambda name: terms[name])
    working = max(competition, mass_pass) + evaluation + features + parents
    kept = 2 * n_images * patterns * 4 * item  # positions (2), score, soft; iteration + final
    return LayerEstimate(geometry.name, patterns, working, kept, dominant)


def estimate_mining(
    layers: Sequence[LayerGeometry],
    *,
    n_images: int,
    settings: GraphSettings,
    batch_size: int,
    base: int | None = None,
) -> MiningEstimate:
    """Estimate the peak memory of mining ``n_images`` at ``layers`` (bottom→top)."""
    per_filter = settings.patterns_per_filter(layers)
    mirrored = settings.use_flip
    estimates = []
    for index, geometry in enumerate(layers):
        upper = None
        if index + 1 < len(layers):
            upper = layers[index + 1].channels * per_filter[index + 1]
        estimates.append(
            layer_estimate(
                geometry,
                per_filter[index],
                n_images=n_images,
                settings=settings,
                mirrored=mirrored,
                upper_patterns=upper,
            )
        )
    flips = 2 if mirrored else 1
    maps = sum(g.channels * g.height * g.width for g in layers)
    # a batch of float32 maps and their float16 copies, per orientation, during extraction
    extraction = batch_size * flips * maps * (3 * 4 + _FLOAT16)
    cache = n_images * flips * maps * _FLOAT16
    return MiningEstimate(
        base=resident_memory() if base is None else base,
        layers=tuple(estimates),
        extraction=extraction,
        cache_bytes=cache,
    )


_ADVICE = {
    "candidate competition": "a lower pattern density (--density) or a smaller input size",
    "explained-mass pass": (
        "a smaller input size, higher layers (--layers) or a lower pattern density (--density)"
    ),
    "evaluation tensors": "a smaller --chunk-size or a lower pattern density (--density)",
    "parent selection": "a lower pattern density (--density)",
}


def check_mining_fits(
    estimate: MiningEstimate,
    *,
    max_memory: int | None,
    cache_dir: Path | None = None,
    available: int | None = None,
) -> None:
    """Refuse, with one line saying what to change, a run that will not fit.

    Memory: the peak is compared with ``max_memory`` when given, else the growth above the
    current resident memory is compared with the available memory. Disk: the feature cache
    with the free space of ``cache_dir`` (skipped when the folder cannot be inspected).

    Raises:
        InputError: the run does not fit.
    """
    worst = estimate.worst
    have: int | None
    if max_memory is not None:
        need, have, what = estimate.peak, max_memory, f"--max-memory {format_bytes(max_memory)}"
    else:
        free = available_memory() if available is None else available
        need, have = estimate.peak - estimate.base, free
        what = f"{format_bytes(free or 0)} available"
    if have is not None and need > have:
        kept = sum(layer.kept for layer in estimate.layers)
        if worst is not None and worst.working >= kept:
            cause = (
                f"layer {worst.name}: {worst.patterns:,} patterns, {worst.dominant} "
                f"{format_bytes(worst.working)}; use {_ADVICE[worst.dominant]}"
            )
        else:
            cause = f"per-image results {format_bytes(kept)}; use fewer images (--max-images)"
        raise InputError(
            f"mining needs about {format_bytes(need)} of memory but {what} ({cause}; "
            "or raise --max-memory if the estimate is too cautious)"
        )
    if cache_dir is not None:
        folder = Path(cache_dir)
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        try:
            free_disk = shutil.disk_usage(folder).free
        except OSError:
            return
        if estimate.cache_bytes > free_disk:
            raise InputError(
                f"the feature cache needs about {format_bytes(estimate.cache_bytes)} but "
                f"{folder} has {format_bytes(free_disk)} free; free space, point --cache-dir "
                "elsewhere, or use fewer images (--max-images) or higher layers (--layers)"
            )


__all__ = [
    "LayerEstimate",
    "MiningEstimate",
    "available_memory",
    "check_mining_fits",
    "estimate_mining",
    "format_bytes",
    "layer_estimate",
    "parse_bytes",
    "resident_memory",
]
