"""Rendering one synthetic sample: pose, colours, skin texture, background clutter, noise.

Sample ``i`` of seed ``k`` is drawn from ``numpy.random.default_rng`` seeded with ``[k, i]``
only, so it does not depend on how many samples are made or in which order. The object is
rasterised at twice the output size into a label image (one id per polygon) and averaged down,
which gives smooth edges, an exact object mask and a part map from the same pass.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageDraw

from explgraph.core.errors import InputError
from miner.data.records import Box, ImageRecord, Keypoint
from miner.data.synthetic.categories import BUILDERS, CATEGORIES, ROLES
from miner.data.synthetic.shapes import Primitive, rotation

SUPERSAMPLE = 2
_COARSE = 17  # grid points per side for the smooth background fields
MIN_SIZE = 32
MAX_ROTATION = 35.0  # degrees either way
_MIN_SIDE = 0.42  # shorter box side, as a fraction of the image: >= 50 px at 128 px
DIFFICULTIES = ("normal", "hard")


@dataclass(frozen=True)
class Hardness:
    """What ``difficulty="hard"`` changes (``normal`` draws none of it: its bytes are unchanged).

    In the box-cropped frame a part's position is then no longer fixed by the facing alone: the
    object is rotated further, drawn smaller, and boxed with a random margin on every side (an
    annotator's loose box), so it sits anywhere in the crop; an occluder may hide part of it.
    """

    max_rotation: float = 60.0  # degrees either way
    scale: tuple[float, float] = (0.42, 0.70)  # longer object side, fraction of the image
    margin: tuple[float, float] = (0.0, 0.45)  # per box side, fraction of the object's extent
    occlusion: float = 0.6  # chance of one occluder over the object
    occluder: tuple[float, float] = (0.15, 0.32)  # its radius, fraction of the object's extent


HARD = Hardness()


@dataclass(frozen=True)
class SyntheticSample:
    """One rendered image with its exact annotations (pixel coordinates of ``image``)."""

    index: int
    image: np.ndarray  # (size, size, 3) uint8 RGB
    label: str
    split: str  # "train" or "test"
    box: Box  # tight bounds of the drawn object
    parts: Mapping[str, Keypoint]
    mask: np.ndarray  # (size, size) bool: pixels at least half covered by the object
    part_map: np.ndarray  # (size, size) uint8: 0 background, k the part ROLES[k - 1]
    angle: float  # rotation applied, degrees
    mirrored: bool  # whether the object faces left

    def to_record(self, path: Path) -> ImageRecord:
        """The annotations of this sample as the record of its image saved at ``path``."""
        return ImageRecord(
            path=path, box=self.box, parts=self.parts, label=self.label, split=self.split
        )


def split_of(index: int, test_fraction: float, n_categories: int = len(CATEGORIES)) -> str:
    """The split of sample ``index``: every category gets ``test_fraction`` of its samples.

    Within a category the j-th sample is a test sample when ``floor((j + 1) f)`` steps up, so the
    split is balanced, exact over any prefix and independent of the total count.
    """
    if not 0.0 <= test_fraction < 1.0:
        raise InputError(f"test fraction {test_fraction} is outside [0, 1): pick e.g. 0.25")
    j = index // n_categories
    return "test" if np.floor((j + 1) * test_fraction) > np.floor(j * test_fraction) else "train"


def _palette(rng: np.random.Generator, backdrop: np.ndarray) -> tuple[dict[str, np.ndarray], float]:
    """Colours of the object's shades and its texture depth, kept apart from the background."""
    depth = float(rng.uniform(0.2, 0.4))
    for _ in range(64):
        main = rng.uniform(0, 255, 3)
        shades = {
            "main": main,
            "limb": main * rng.uniform(0.75, 0.9),
            "far": main * 0.6,
            "accent": rng.uniform(0, 255, 3),
            "dark": np.array([30.0, 25.0, 20.0]) * rng.uniform(0.5, 1.5),
            "light": np.array([235.0, 235.0, 225.0]),
        }
        tones = np.stack([*shades.values(), main * (1 - depth)])
        gaps = np.linalg.norm(tones[:, None, :] - backdrop[None, :, :], axis=2)
        if gaps.min() >= 50:
            break
    return shades, depth


def _wave(
    side: int, linear: np.ndarray, scale: float, offset: np.ndarray, k: np.ndarray, phase: float
) -> np.ndarray:
    """``sin(k . obj + phase)`` over the canvas, ``obj`` the object-frame point of each pixel.

    ``obj`` is affine in the pixel column and row, so the 2-D wave is built from 1-D rows and
    columns with ``sin(a + b) = sin a cos b + cos a sin b``.
    """
    axis = (np.arange(side, dtype=np.float64) + 0.5) / SUPERSAMPLE
    w = linear @ k / scale  # obj = (p - offset) / scale @ linear, p in output pixels
    px = (axis - offset[0]) * w[0] + phase
    py = (axis - offset[1]) * w[1]
    wave = np.sin(px)[None, :] * np.cos(py)[:, None] + np.cos(px)[None, :] * np.sin(py)[:, None]
    return wave.astype(np.float32)


def _texture(
    rng: np.random.Generator,
    depth: float,
    side: int,
    linear: np.ndarray,
    scale: float,
    offset: np.ndarray,
) -> np.ndarray | None:
    """Skin brightness on the canvas, moving with the object: plain (None), stripes, spots..."""
    kind = int(rng.integers(0, 4))
    angle = rng.uniform(0.0, 180.0)
    period = rng.uniform(0.08, 0.16)
    centres = rng.uniform([-0.6, -0.9], [0.6, 0.5], size=(int(rng.integers(14, 30)), 2))
    radius = rng.uniform(0.03, 0.06)
    waves = rng.uniform(-25.0, 25.0, size=(2, 2))
    phases = rng.uniform(0, 2 * np.pi, 2)
    if kind == 0:
        return None
    if kind == 1:
        k = np.array([np.cos(np.deg2rad(angle)), np.sin(np.deg2rad(angle))]) * 2 * np.pi / period
        return 1.0 - depth * (_wave(side, linear, scale, offset, k, 0.0) > 0)
    if kind == 2:
        spots = Image.new("L", (side, side), 0)
        draw = ImageDraw.Draw(spots)
        r = radius * scale * SUPERSAMPLE
        for cx, cy in (centres @ linear.T * scale + offset) * SUPERSAMPLE - 0.5:
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=1)
        return 1.0 - depth * np.asarray(spots, dtype=np.float32)
    mottle = _wave(side, linear, scale, offset, waves[0], phases[0])
    mottle *= _wave(side, linear, scale, offset, waves[1], phases[1])
    return 1.0 - depth * 0.5 * (1.0 + mottle)


def _background(
    rng: np.random.Generator, side: int, backdrop: np.ndarray, clean: bool
) -> Image.Image:
    """A side x side RGB background: gradient, blotches and random clutter shapes."""
    angle = rng.uniform(0, 2 * np.pi)
    blotch = float(rng.uniform(0, 25))
    waves = rng.uniform(2, 8, size=(2, 2)) * rng.choice([-1, 1], size=(2, 2)) / side
    phases = rng.uniform(0, 2 * np.pi, 2)
    count = int(rng.integers(2, 8))
    if clean:
        return Image.new("RGB", (side, side), tuple(int(v) for v in np.rint(backdrop[0])))
    # Gradient and blotches vary slowly: evaluate them on a coarse grid and let PIL's bilinear
    # resize (in C) fill in the full-resolution canvas.
    coarse = np.linspace(0.0, side, _COARSE, dtype=np.float32)
    xs, ys = coarse[None, :], coarse[:, None]
    t = xs * np.float32(np.cos(angle)) + ys * np.float32(np.sin(angle))
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    field = np.sin(xs * waves[0, 0] + ys * waves[0, 1] + phases[0]) * np.sin(
        xs * waves[1, 0] + ys * waves[1, 1] + phases[1]
    )
    base = backdrop[0] + t[..., None] * (backdrop[1] - backdrop[0]) + blotch * field[..., None]
    small = Image.fromarray(np.clip(base + 0.5, 0, 255).astype(np.uint8))
    canvas = small.resize((side, side), Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(canvas)
    for _ in range(count):
        # Clutter never imitates a part on purpose: plain random blobs, boxes, polygons, lines.
        kind = int(rng.integers(0, 4))
        centre = rng.uniform(0, side, 2)
        extent = rng.uniform(0.05, 0.2) * side
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        if kind == 0:
            r = extent * rng.uniform(0.4, 1.0, 2)
            draw.ellipse([*(centre - r), *(centre + r)], fill=colour)
        elif kind == 1:
            r = extent * rng.uniform(0.3, 1.0, 2)
            draw.rectangle([*(centre - r), *(centre + r)], fill=colour)
        elif kind == 2:
            k = int(rng.integers(3, 7))
            turns = np.sort(rng.uniform(0, 2 * np.pi, k))
            radii = extent * rng.uniform(0.4, 1.0, k)
            pts = centre + np.stack([np.cos(turns), np.sin(turns)], 1) * radii[:, None]
            draw.polygon(pts.ravel().tolist(), fill=colour)
        else:
            end = centre + rng.uniform(-2, 2, 2) * extent
            width = max(1, int(rng.uniform(0.01, 0.035) * side))
            draw.line([*centre, *end], fill=colour, width=width)
    return canvas


def _pose(
    rng: np.random.Generator, prims: list[Primitive], size: int, hard: Hardness | None = None
) -> tuple[np.ndarray, float, np.ndarray, float, bool]:
    """Random rotation, mirroring, scale and placement; returns (linear map, scale, offset, ...)."""
    max_rotation = MAX_ROTATION if hard is None else hard.max_rotation
    angle = float(rng.uniform(-max_rotation, max_rotation))
    mirrored = bool(rng.random() < 0.5)
    linear = rotation(angle) @ np.diag([-1.0 if mirrored else 1.0, 1.0])
    verts = np.concatenate([p.points for p in prims]) @ linear.T
    lo, hi = verts.min(0), verts.max(0)
    extent = hi - lo
    low, high = (0.62, 0.92) if hard is None else hard.scale
    scale = rng.uniform(low, high) * size / extent.max()
    scale = max(scale, _MIN_SIDE * size / extent.min())  # thin poses still give big enough boxes
    scale = min(scale, (size - 2.0) / extent.max())
    room = np.maximum(size - 2.0 - extent * scale, 0.0)
    offset = 1.0 + rng.uniform(0, 1, 2) * room - lo * scale
    return linear, float(scale), offset, angle, mirrored


def occlude(
    rng: np.random.Generator, image: np.ndarray, box: Box, hard: Hardness
) -> np.ndarray | None:
    """Maybe paint one elliptic occluder over the object (in place); returns its pixel mask."""
    if rng.random() >= hard.occlusion:
        return None
    size = image.shape[0]
    x0, y0, x1, y1 = box
    extent = max(x1 - x0, y1 - y0)
    centre = rng.uniform([x0, y0], [x1, y1])
    radii = rng.uniform(*hard.occluder, 2) * extent
    colour = rng.integers(0, 256, 3).astype(np.float32)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    inside = ((xs - centre[0]) / radii[0]) ** 2 + ((ys - centre[1]) / radii[1]) ** 2 <= 1.0
    image[inside] = colour
    return inside


def loose_box(rng: np.random.Generator, box: Box, size: int, hard: Hardness) -> Box:
    """The tight box grown by a random margin on each side, kept inside the image."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    m = rng.uniform(*hard.margin, 4)
    return (
        float(max(0.0, np.floor(x0 - m[0] * w))),
        float(max(0.0, np.floor(y0 - m[1] * h))),
        float(min(size, np.ceil(x1 + m[2] * w))),
        float(min(size, np.ceil(y1 + m[3] * h))),
    )


def check_request(size: int, index: int, difficulty: str) -> Hardness | None:
    """Check the arguments of :func:`render_sample`; the hardness to apply (None: normal)."""
    if size < MIN_SIZE:
        raise InputError(f"image size {size} is too small: use at least {MIN_SIZE} px")
    if index < 0:
        raise InputError(f"sample index {index} is negative: indices start at 0")
    if difficulty not in DIFFICULTIES:
        raise InputError(f"difficulty {difficulty!r}: use one of {', '.join(DIFFICULTIES)}")
    return HARD if difficulty == "hard" else None


# The object's placement on the output image: linear map, scale and offset (p = obj @ L.T * s + o).
Placement = tuple[np.ndarray, float, np.ndarray]


def rasterise(prims: list[Primitive], placement: Placement, side: int) -> Image.Image:
    """The label canvas at ``side x side``: each pixel the number of the last polygon over it."""
    linear, scale, offset = placement
    canvas = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(canvas)
    for number, prim in enumerate(prims, start=1):
        # PIL puts pixel centres on integers; our coordinates put them on half-integers.
        pts = (prim.points @ linear.T * scale + offset) * SUPERSAMPLE - 0.5
        draw.polygon(pts.ravel().tolist(), fill=number)
    return canvas


def _paint(
    canvas: Image.Image,
    prims: list[Primitive],
    placement: Placement,
    rngs: tuple[np.random.Generator, np.random.Generator],
    clean: bool,
) -> tuple[np.ndarray, Image.Image]:
    """The coloured, shaded object pasted on its background and averaged down to the output
    size (float32 RGB), and the canvas's object coverage (255 on the object)."""
    look_rng, back_rng = rngs
    side = canvas.size[0]
    backdrop = look_rng.uniform(0, 255, size=(2, 3)).astype(np.float32)
    shades, depth = _palette(look_rng, backdrop)
    colours = np.array([np.zeros(3), *(shades[p.shade] for p in prims)])
    textured = np.array([False, *(p.textured for p in prims)])
    # Compose in PIL (C loops over the canvas): palette lookup, skin shading, paste on background.
    solid = canvas.copy()
    solid.putpalette(np.clip(np.rint(colours), 0, 255).astype(np.uint8).ravel().tolist())
    body = solid.convert("RGB")
    skin_tone = _texture(look_rng, depth, side, *placement)
    if skin_tone is not None:
        shade = Image.fromarray(np.rint(skin_tone * 255).astype(np.uint8))
        skin = canvas.point([255 if flag else 0 for flag in textured] + [0] * (256 - len(textured)))
        shade = Image.composite(shade, Image.new("L", shade.size, 255), skin)
        body = ImageChops.multiply(body, Image.merge("RGB", (shade, shade, shade)))
    drawn = canvas.point([0] + [255] * 255)
    background = _background(back_rng, side, backdrop, clean)
    fine = Image.composite(body, background, drawn)
    # PIL's box reduction averages each 2x2 block: the anti-aliasing.
    return np.asarray(fine.reduce(SUPERSAMPLE), dtype=np.float32), drawn


def tight_box(mask: np.ndarray) -> Box:
    """The smallest box holding every ``True`` pixel of ``mask``."""
    cols, rows = np.nonzero(mask.any(axis=0))[0], np.nonzero(mask.any(axis=1))[0]
    return (float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1))


def parts_and_maps(
    canvas: Image.Image,
    prims: list[Primitive],
    keypoints: Mapping[str, np.ndarray],
    placement: Placement,
    mask: np.ndarray,
    occluded: np.ndarray | None,
) -> tuple[dict[str, Keypoint], np.ndarray, np.ndarray]:
    """The placed keypoints (hidden under an occluder: not visible), the object mask and the
    part map, both without what an occluder covers."""
    linear, scale, offset = placement
    size = mask.shape[0]
    roles = np.array([0, *(ROLES.index(p.role) + 1 for p in prims)], dtype=np.uint8)
    centre = SUPERSAMPLE // 2
    part_map = roles[np.asarray(canvas)[centre::SUPERSAMPLE, centre::SUPERSAMPLE]]
    names = list(keypoints)
    placed = np.stack([keypoints[n] for n in names]) @ linear.T * scale + offset
    shown = np.ones(len(names), dtype=bool)
    if occluded is not None:
        mask = mask & ~occluded
        part_map = np.where(occluded, 0, part_map).astype(np.uint8)
        px = np.clip(np.floor(placed).astype(int), 0, size - 1)
        shown = ~occluded[px[:, 1], px[:, 0]]
    parts = {
        n: Keypoint(float(x), float(y), bool(v))
        for n, (x, y), v in zip(names, placed, shown, strict=True)
    }
    return parts, mask, part_map


def render_sample(
    index: int,
    size: int = 128,
    seed: int = 0,
    *,
    test_fraction: float = 0.25,
    clean: bool = False,
    difficulty: str = "normal",
) -> SyntheticSample:
    """Draw sample ``index`` of the synthetic dataset with seed ``seed`` at ``size x size`` px.

    The category is ``CATEGORIES[index % len(CATEGORIES)]``. ``clean=True`` draws the very same
    object on a plain background with no clutter or noise (for checks and figures).
    ``difficulty="hard"`` applies :class:`Hardness` (more rotation, smaller objects, loose boxes,
    occluders; keypoints under an occluder are marked not visible); ``"normal"`` is unchanged.

    Example:
        >>> sample = render_sample(0, size=64, seed=1)
        >>> sample.image.shape, sample.label
        ((64, 64, 3), 'quadruped')
    """
    hard = check_request(size, index, difficulty)
    shape_rng, look_rng, back_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence([seed, index]).spawn(3)
    )
    label = CATEGORIES[index % len(CATEGORIES)]
    prims, keypoints = BUILDERS[label](shape_rng)
    linear, scale, offset, angle, mirrored = _pose(shape_rng, prims, size, hard)
    placement = (linear, scale, offset)
    canvas = rasterise(prims, placement, size * SUPERSAMPLE)
    image, drawn = _paint(canvas, prims, placement, (look_rng, back_rng), clean)
    noise_sigma = back_rng.uniform(0, 6)
    mask = np.asarray(drawn.reduce(SUPERSAMPLE)) >= 128
    box = tight_box(mask)
    occluded = None
    if hard is not None:  # its own stream: the normal draws above are untouched
        hard_rng = np.random.default_rng(np.random.SeedSequence([seed, index, 1]))
        occluded = occlude(hard_rng, image, box, hard)
        box = loose_box(hard_rng, box, size, hard)
    if clean:
        pixels_u8 = image.astype(np.uint8)
    else:
        noise = back_rng.standard_normal(image.shape, dtype=np.float32) * np.float32(noise_sigma)
        pixels_u8 = np.clip(np.rint(image + noise), 0, 255).astype(np.uint8)
    parts, mask, part_map = parts_and_maps(canvas, prims, keypoints, placement, mask, occluded)
    return SyntheticSample(
        index=index,
        image=pixels_u8,
        label=label,
        split=split_of(index, test_fraction),
        box=box,
        parts=parts,
        mask=mask,
        part_map=part_map,
        angle=angle,
        mirrored=mirrored,
    )


def iter_samples(
    n: int,
    size: int = 128,
    seed: int = 0,
    *,
    test_fraction: float = 0.25,
    difficulty: str = "normal",
) -> Iterator[SyntheticSample]:
    """Samples ``0 .. n-1`` in order (each one the same as :func:`render_sample` gives)."""
    for index in range(n):
        yield render_sample(index, size, seed, test_fraction=test_fraction, difficulty=difficulty)


__all__ = [
    "DIFFICULTIES",
    "HARD",
    "MAX_ROTATION",
    "MIN_SIZE",
    "SUPERSAMPLE",
    "Hardness",
    "Placement",
    "SyntheticSample",
    "check_request",
    "iter_samples",
    "loose_box",
    "occlude",
    "parts_and_maps",
    "rasterise",
    "render_sample",
    "split_of",
    "tight_box",
]
