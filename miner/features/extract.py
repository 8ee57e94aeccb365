"""Feature extraction: object crops through the CNN into the on-disk cache (docs/method.md §1-2).

One pass over the images does everything: crops are decoded in background threads, run
through the model in batches (mixed precision on CUDA), the ReLU'd maps are appended to the
cache and the per-unit sums for the std are accumulated on the device. The std comes from the
background set when one is given, else from the images themselves (and their mirrors).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

from explgraph.core.errors import InputError, ModelError
from explgraph.core.faults import fault_point
from explgraph.core.progress import NULL_PROGRESS, Progress, Task
from miner.data.records import ImageRecord, image_content_id
from miner.features.cache import (
    CacheWriter,
    cache_key,
    find_entry,
    open_entry,
    remove_stale_temporaries,
)
from miner.features.featureset import FeatureSet, SkippedImage, record_to_json
from miner.features.forward import Forward, autocast_dtype, layer_outputs
from miner.features.loader import Batch, iter_batches
from miner.features.stats import STD_FLOOR, RunningMoments, floored_std
from miner.models.geometry import layer_geometry
from miner.models.layers import resolve_layers
from miner.models.loading import resolve_device
from miner.models.spec import LayerGeometry, LoadedModel

# Names the crop recipe (miner.data.images.crop_to_box: box, bilinear, aspect not kept) in
# the cache key; change it whenever the preprocessing changes what the model sees.
PREPROCESS = "crop_to_box/bilinear/v2"  # v2: 16-bit gray scaled, bounded padding
# The largest float16 value: responses above it would be stored as inf.
_F16_MAX = 65504.0

log = logging.getLogger(__name__)


def _content_ids(records: Sequence[ImageRecord], bar: Task) -> list[str]:
    """Content hashes of the image files (``missing`` for files that cannot be opened)."""

    def one(record: ImageRecord) -> str:
        try:
            return image_content_id(record.path)
        except OSError:
            return "missing"

    ids = []
    with ThreadPoolExecutor(max_workers=4) as pool:  # hashlib releases the GIL
        for image_id in pool.map(one, records):
            ids.append(image_id)
            bar.advance()
    return ids


def _key_images(records: Sequence[ImageRecord], ids: Sequence[str]) -> list[Any]:
    return [
        [image_id, list(rec.box) if rec.box else None]
        for rec, image_id in zip(records, ids, strict=True)
    ]


@dataclasses.dataclass
class _Runner:
    """Turns a batch of uint8 crops into raw float32 layer outputs on the device."""

    run: Forward
    geometry: list[LayerGeometry]
    device: torch.device
    scale: torch.Tensor  # 1 / (255 std), [1, 3, 1, 1]
    shift: torch.Tensor  # mean / std, [1, 3, 1, 1]
    amp: torch.dtype | None  # autocast dtype, None for full precision
    dtype: torch.dtype  # the model's parameter dtype
    checked: bool = False

    def __call__(self, batch: Batch, mirror: bool) -> list[torch.Tensor]:
        """Outputs per layer (call in inference mode); mirrored crops follow the originals."""
        pixels = batch.pixels.to(self.device, non_blocking=True).permute(0, 3, 1, 2)
        # (p / 255 - mean) / std in one pass: p * scale - shift.
        inputs = torch.addcmul(-self.shift, pixels.float(), self.scale)
        if mirror:
            inputs = torch.cat([inputs, inputs.flip(-1)])
        amp = self.amp or torch.bfloat16
        with torch.autocast(self.device.type, dtype=amp, enabled=self.amp is not None):
            outputs = self.run(inputs.to(self.dtype))
        if not self.checked:
            _check_shapes(outputs, self.geometry)
            self.checked = True
        return [outputs[layer.name].float() for layer in self.geometry]


def _check_shapes(outputs: dict[str, torch.Tensor], geometry: Sequence[LayerGeometry]) -> None:
    for layer in geometry:
        shape = tuple(outputs[layer.name].shape[1:])
        if shape != (layer.channels, layer.height, layer.width):
            raise ModelError(
                f"layer {layer.name} gives maps of shape {shape}, not the "
                f"{(layer.channels, layer.height, layer.width)} its geometry says; "
                "pick convolutional layers (outputs [N, C, H, W])"
            )


def _open_hit(entry: Path, records: Sequence[ImageRecord], progress: Progress) -> FeatureSet:
    """The cached entry, with the caller's records and paths in place of the stored ones."""
    fs = open_entry(entry)
    fs.records = [records[image["index"]] for image in fs.meta["images"]]
    fs.skipped = [
        SkippedImage(records[item["index"]].path, str(item["reason"]))
        for item in fs.meta["skipped"]
    ]
    progress.log(f"features: reusing cache {entry} ({fs.num_images} images)")
    return fs


def _background_moments(
    runner: _Runner, background: list[ImageRecord], loader_args: dict[str, Any], bar: Task
) -> tuple[list[RunningMoments], int, list[tuple[int, str]]]:
    """Per-unit moments over the background set: (moments, images used, skipped)."""
    moments = [RunningMoments() for _ in runner.geometry]
    skipped: list[tuple[int, str]] = []
    used = 0
    for batch in iter_batches(background, **loader_args):
        skipped.extend(batch.skipped)
        if batch.positions:
            for raw, stats in zip(runner(batch, False), moments, strict=True):
                stats.update(raw)
            used += len(batch.positions)
        bar.advance(batch.size)
    if used == 0:
        raise InputError(
            f"none of the {len(background)} background images could be used "
            f"(first: {skipped[0][1]}); fix or replace the background set"
        )
    return moments, used, skipped


def _write_maps(
    runner: _Runner,
    records: list[ImageRecord],
    loader_args: dict[str, Any],
    writer: CacheWriter,
    moments: list[RunningMoments] | None,
    mirror: bool,
    bar: Task,
) -> tuple[list[int], list[tuple[int, str]]]:
    """Append every usable image's max(x, 0) maps to the cache: (kept, skipped) indices.

    ``moments`` (self-normalisation) also take the raw responses, mirrors included: they are
    the images the graph is learned from.
    """
    kept: list[int] = []
    skipped: list[tuple[int, str]] = []
    for batch in iter_batches(records, **loader_args):
        skipped.extend(batch.skipped)
        if batch.positions:
            count = len(batch.positions)
            for index, raw in enumerate(runner(batch, mirror)):
                if moments is not None:
                    moments[index].update(raw)
                # Clamped after the cast: overflow becomes inf, then the float16 maximum.
                maps = raw.half().clamp_(0.0, _F16_MAX).cpu().numpy()
                writer.append(index, maps[:count])
                if mirror:
                    writer.append(index, maps[count:], flipped=True)
            kept.extend(batch.positions)
        bar.advance(batch.size)
        fault_point("features.batch")
    if not kept:
        reasons = sorted({reason for _, reason in skipped})
        raise InputError(
            f"none of the {len(records)} images could be used ({'; '.join(reasons[:3])}); "
            "fix or replace them"
        )
    return kept, skipped


def _parameter_dtype(module: torch.nn.Module) -> torch.dtype:
    """The float dtype the model computes in (inputs are cast to it)."""
    first = next(iter(module.parameters()), None)
    return first.dtype if first is not None and first.dtype.is_floating_point else torch.float32


def _skipped_json(
    records: Sequence[ImageRecord], skipped: list[tuple[int, str]]
) -> list[dict[str, Any]]:
    return [{"index": i, "path": str(records[i].path), "reason": r} for i, r in skipped]


def _check_inputs(
    records: Sequence[ImageRecord], batch_size: int, background: Sequence[ImageRecord] | None
) -> None:
    if not records:
        raise InputError("no images to extract features from; check the dataset folder or split")
    if batch_size < 1:
        raise InputError(f"batch size must be at least 1, got {batch_size}")
    if background is not None and len(background) == 0:
        raise InputError(
            "the background set is empty; point it at a folder of images, or leave it out to "
            "normalise by the images themselves"
        )


@dataclasses.dataclass
class _Request:
    """One extraction, as asked: the images (with their content ids) and every setting that
    names its cache entry."""

    model: LoadedModel
    records: list[ImageRecord]
    ids: list[str]
    background: list[ImageRecord] | None
    background_ids: list[str]
    names: list[str]  # the layers as given (the model's defaults when none were)
    names_given: bool  # False: ``names`` are the model's defaults, already resolved
    mirror: bool
    min_box: int

    def key(self) -> str:
        """The cache key: model, layers, preprocessing, images and background."""
        model = self.model
        return cache_key(
            {
                "model": [model.name, model.source, model.weights, model.fingerprint],
                "layers": self.names,
                "input_size": model.input_size,
                "mean": list(model.mean),
                "std": list(model.std),
                "preprocess": PREPROCESS,
                "min_box": self.min_box,
                "mirror": self.mirror,
                "std_floor": STD_FLOOR,
                "images": _key_images(self.records, self.ids),
                "background": _key_images(self.background, self.background_ids)
                if self.background
                else None,
            }
        )


def _make_runner(
    model: LoadedModel, run: Forward, geometry: list[LayerGeometry], device: torch.device
) -> _Runner:
    channel_std = torch.tensor(model.std, device=device).view(1, 3, 1, 1)
    return _Runner(
        run=run,
        geometry=geometry,
        device=device,
        scale=1.0 / (255.0 * channel_std),
        shift=torch.tensor(model.mean, device=device).view(1, 3, 1, 1) / channel_std,
        amp=autocast_dtype(device),
        dtype=_parameter_dtype(model.module),
    )


@dataclasses.dataclass
class _Outcome:
    """What one extraction pass kept and skipped."""

    kept: list[int]
    skipped: list[tuple[int, str]]
    moments: list[RunningMoments]  # the per-unit moments the std comes from
    background_used: int = 0
    background_skipped: list[tuple[int, str]] = dataclasses.field(default_factory=list)


def _entry_meta(
    request: _Request,
    geometry: list[LayerGeometry],
    aliases: dict[str, str],
    outcome: _Outcome,
    runner: _Runner,
) -> dict[str, Any]:
    """The cache entry's description: model, layers, kept and skipped images, normalisation."""
    model, records, background = request.model, request.records, request.background
    return {
        "model": {
            "name": model.name,
            "source": model.source,
            "weights": model.weights,
            "fingerprint": model.fingerprint,
            "input_size": model.input_size,
            "mean": list(model.mean),
            "std": list(model.std),
        },
        "layers": [dataclasses.asdict(layer) for layer in geometry],
        "aliases": aliases,
        "num_images": len(outcome.kept),
        "mirrored": request.mirror,
        "normalisation": "self" if background is None else "background",
        "background": {
            "given": len(background or ()),
            "used": outcome.background_used,
            "skipped": _skipped_json(background or (), outcome.background_skipped),
        },
        "images": [
            {"index": i, "id": request.ids[i], "record": record_to_json(records[i])}
            for i in outcome.kept
        ],
        "skipped": _skipped_json(records, outcome.skipped),
        "min_box": request.min_box,
        "std_floor": STD_FLOOR,
        "preprocess": PREPROCESS,
        "device": str(runner.device),
        "precision": str(runner.amp or runner.dtype).removeprefix("torch."),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _run_model(
    request: _Request,
    runner: _Runner,
    writer: CacheWriter,
    loader_args: dict[str, Any],
    bar: Task,
) -> _Outcome:
    """The background's moments (when given), then every image's maps into the cache."""
    if request.background is not None:
        moments, used, background_skipped = _background_moments(
            runner, request.background, loader_args, bar
        )
        kept, skipped = _write_maps(
            runner, request.records, loader_args, writer, None, request.mirror, bar
        )
        return _Outcome(kept, skipped, moments, used, background_skipped)
    moments = [RunningMoments() for _ in runner.geometry]
    kept, skipped = _write_maps(
        runner, request.records, loader_args, writer, moments, request.mirror, bar
    )
    return _Outcome(kept, skipped, moments)


def _extract(
    request: _Request,
    key: str,
    cache_dir: Path,
    device: torch.device,
    batch_size: int,
    progress: Progress,
) -> tuple[Path, list[int]]:
    """Run the model over the images into a new cache entry ``key``: the entry's folder and the
    indices of the images kept."""
    log.info(
        "no cached features %s in %s: running %s on %s", key, cache_dir, request.model.name, device
    )
    model, names = request.model, request.names
    resolved = resolve_layers(model, names) if request.names_given else names
    # Friendly names (conv4_2, module paths) stay usable on the FeatureSet.
    aliases = {name: resolve_layers(model, [name])[0] for name in names if name not in resolved}
    geometry = layer_geometry(model, resolved)
    loader_args: dict[str, Any] = {
        "size": model.input_size,
        "batch_size": batch_size,
        "min_box": request.min_box,
        "pin_memory": device.type == "cuda",
    }
    total = len(request.records) + len(request.background or ())
    with (
        torch.inference_mode(),
        progress.task(f"features of {model.name}", total) as bar,
        layer_outputs(model.module, resolved, device) as run,
        CacheWriter(cache_dir, key, geometry, request.mirror) as writer,
    ):
        runner = _make_runner(model, run, geometry, device)
        outcome = _run_model(request, runner, writer, loader_args, bar)
        meta = _entry_meta(request, geometry, aliases, outcome, runner)
        entry = writer.commit(meta, [floored_std(stats.std()) for stats in outcome.moments])
    if outcome.skipped:
        progress.log(f"features: skipped {len(outcome.skipped)} of {len(request.records)} images")
    return entry, outcome.kept


def extract_features(
    model: LoadedModel,
    records: Sequence[ImageRecord],
    layers: Sequence[str],
    *,
    cache_dir: Path,
    device: str = "auto",
    batch_size: int = 32,
    mirror: bool = False,
    background: Sequence[ImageRecord] | None = None,
    min_box: int = 50,
    progress: Progress = NULL_PROGRESS,
) -> FeatureSet:
    """Extract the normalised feature maps of ``records`` at ``layers``, or reuse the cache.

    Args:
        model: the loaded CNN; its input size, mean and std define the preprocessing.
        records: the images; each is cropped to its box (whole image if none) and resized.
        layers: node names as ``get_graph_node_names`` gives them (empty: the model's defaults).
        cache_dir: where cache entries live; an entry with the same key is reused without
            running the model.
        device: ``auto`` (CUDA if available), ``cpu``, ``cuda`` or ``cuda:N``.
        batch_size: images per forward pass (twice as many inputs with ``mirror``).
        mirror: also extract the left-right mirrored crops (``FeatureSet.chunk(flipped=True)``).
        background: images without the object used only for the per-unit std (docs/method.md §2);
            ``None`` normalises by the images themselves, recorded as ``"self"``.
        min_box: boxes (or whole images) with a side shorter than this are skipped.
        progress: progress bars; the default shows nothing.

    Returns:
        A :class:`FeatureSet` over the kept images; unreadable images and too-small boxes are
        listed in ``skipped``.

    Raises:
        InputError: no images, none usable, an empty or unusable background set.
        ModelError: an unknown layer name, a layer that does not give ``[N, C, H, W]`` maps,
            or a device that does not exist here.
    """
    records = list(records)
    _check_inputs(records, batch_size, background)
    torch_device = resolve_device(device)
    # Without names the defaults are resolved now: they are part of the cache key.
    names = list(layers) if layers else resolve_layers(model, None)
    background = list(background) if background is not None else None
    with progress.task("hashing images", len(records) + len(background or ())) as bar:
        ids = _content_ids(records, bar)
        background_ids = _content_ids(background, bar) if background else []
    request = _Request(
        model, records, ids, background, background_ids, names, bool(layers), mirror, min_box
    )
    key = request.key()
    cache_dir = Path(cache_dir)
    remove_stale_temporaries(cache_dir)
    entry = find_entry(cache_dir, key)
    if entry is not None:
        return _open_hit(entry, records, progress)
    entry, kept = _extract(request, key, cache_dir, torch_device, batch_size, progress)
    return open_entry(entry, [records[i] for i in kept])


__all__ = ["PREPROCESS", "extract_features"]
