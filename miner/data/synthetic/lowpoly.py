"""The ``lowpoly`` look of the synthetic parts dataset: a second look, for evaluation only.

Same categories, part names, splits and annotation format as the ``cartoon`` look
(:mod:`render`), drawn differently throughout, so that a method tuned on one look can be
checked on another it never saw:

- shapes and proportions: faceted, angular animals (:mod:`lowpoly_shapes`);
- colour: saturated hues, each facet shaded on its own, dark ink outlines between facets;
- skin textures: checks, rings and speckles (not stripes, spots or mottle);
- backgrounds: a horizon scene with grass, rotated tiles, or clouds of value noise; clutter of
  branches, rings, leaves and shards;
- poses: rotation drawn from a normal law (σ 20°, at most ±45°), a squash along the body and
  a shear (a three-quarter view), and a blur as well as sensor noise.

``difficulty="hard"`` applies the same :class:`render.Hardness` as the cartoon look (uniform
rotation up to ±60°, smaller objects, loose boxes, occluders). Sample ``i`` of seed ``k``
depends on ``(k, i)`` only, through generators of its own (never the cartoon look's).
"""

from __future__ import annotations

import colorsys

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from miner.data.synthetic.categories import CATEGORIES
from miner.data.synthetic.lowpoly_shapes import BUILDERS
from miner.data.synthetic.render import (
    SUPERSAMPLE,
    Hardness,
    Placement,
    SyntheticSample,
    check_request,
    loose_box,
    occlude,
    parts_and_maps,
    rasterise,
    split_of,
    tight_box,
)
from miner.data.synthetic.shapes import Primitive, rotation

STREAM = 17  # the look's own random streams: SeedSequence([seed, index, STREAM])
ROTATION_SD, MAX_ROTATION = 20.0, 45.0  # degrees
SCALE = (0.55, 0.85)  # longer object side, fraction of the image


def _pose(
    rng: np.random.Generator, prims: list[Primitive], size: int, hard: Hardness | None
) -> tuple[Placement, float, bool]:
    """Rotation, mirror, squash, shear, scale and placement: (placement, angle, mirrored)."""
    if hard is None:
        angle = float(np.clip(rng.normal(0.0, ROTATION_SD), -MAX_ROTATION, MAX_ROTATION))
    else:
        angle = float(rng.uniform(-hard.max_rotation, hard.max_rotation))
    mirrored = bool(rng.random() < 0.5)
    squash = np.diag([rng.uniform(0.75, 1.0), 1.0])
    shear = np.array([[1.0, rng.uniform(-0.15, 0.15)], [0.0, 1.0]])
    linear = rotation(angle) @ np.diag([-1.0 if mirrored else 1.0, 1.0]) @ shear @ squash
    verts = np.concatenate([p.points for p in prims]) @ linear.T
    lo, hi = verts.min(0), verts.max(0)
    extent = hi - lo
    low, high = SCALE if hard is None else hard.scale
    scale = rng.uniform(low, high) * size / extent.max()
    scale = max(scale, 0.42 * size / extent.min())  # thin poses still give big enough boxes
    scale = min(scale, (size - 2.0) / extent.max())
    room = np.maximum(size - 2.0 - extent * scale, 0.0)
    offset = 1.0 + rng.uniform(0, 1, 2) * room - lo * scale
    return (linear, float(scale), offset), angle, mirrored


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v)) * 255.0


def _palette(rng: np.random.Generator, backdrop: np.ndarray) -> dict[str, np.ndarray]:
    """Saturated shades of one hue, a complementary accent, kept apart from the background."""
    shades: dict[str, np.ndarray] = {}
    for _ in range(64):
        hue, sat, val = rng.uniform(0, 1), rng.uniform(0.45, 0.9), rng.uniform(0.45, 0.95)
        shades = {
            "main": _hsv(hue, sat, val),
            "limb": _hsv(hue + 0.06, sat, 0.8 * val),
            "far": _hsv(hue, sat, 0.5 * val),
            "accent": _hsv(hue + rng.uniform(0.35, 0.65), rng.uniform(0.6, 1.0), 0.9),
            "dark": _hsv(hue, 0.5, 0.15),
            "light": np.array([245.0, 240.0, 220.0]),
        }
        gaps = np.linalg.norm(np.stack(list(shades.values()))[:, None] - backdrop[None], axis=2)
        if gaps.min() >= 50:
            break
    return shades


def _object_frame(side: int, placement: Placement) -> tuple[np.ndarray, np.ndarray]:
    """Object-frame coordinates ``(u, v)`` of every canvas pixel (``side x side``)."""
    linear, scale, offset = placement
    axis = (np.arange(side, dtype=np.float64) + 0.5) / SUPERSAMPLE
    px, py = np.meshgrid(axis - offset[0], axis - offset[1])
    inverse = np.linalg.inv(linear) / scale
    return inverse[0, 0] * px + inverse[0, 1] * py, inverse[1, 0] * px + inverse[1, 1] * py


def _texture(rng: np.random.Generator, side: int, placement: Placement) -> np.ndarray | None:
    """Skin brightness moving with the object: none, checks, rings or speckles."""
    kind = int(rng.integers(0, 4))
    period = rng.uniform(0.07, 0.14)
    depth = rng.uniform(0.2, 0.4)
    centre = rng.uniform(-0.3, 0.3, 2)
    dots = rng.uniform(-0.6, 0.6, size=(int(rng.integers(60, 120)), 2))
    if kind == 0:
        return None
    u, v = _object_frame(side, placement)
    if kind == 1:
        check = np.sin(2 * np.pi * u / period) * np.sin(2 * np.pi * v / period) > 0
        return (1.0 - depth * check).astype(np.float32)
    if kind == 2:
        radius = np.hypot(u - centre[0], v - centre[1])
        return (1.0 - depth * (np.sin(2 * np.pi * radius / period) > 0.3)).astype(np.float32)
    speckle = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(speckle)
    linear, scale, offset = placement
    r = 0.012 * scale * SUPERSAMPLE
    for cx, cy in (dots @ linear.T * scale + offset) * SUPERSAMPLE - 0.5:
        draw.rectangle([cx - r, cy - r, cx + r, cy + r], fill=1)
    return 1.0 - depth * np.asarray(speckle, dtype=np.float32)


def _backdrop_field(rng: np.random.Generator, side: int, colours: np.ndarray) -> np.ndarray:
    """``[side, side, 3]`` float: a horizon scene, rotated tiles or clouds between two colours."""
    kind = int(rng.integers(0, 3))
    ys, xs = np.mgrid[0:side, 0:side].astype(np.float64) / side
    if kind == 0:  # sky above a jagged horizon
        knots = rng.uniform(0.45, 0.8) + rng.uniform(-0.06, 0.06, 9)
        horizon = np.interp(xs[0], np.linspace(0, 1, 9), knots)
        weight = (ys > horizon[None, :]).astype(np.float64)
        weight = np.maximum(weight, 0.35 * (1.0 - ys))  # the sky lightens upwards
    elif kind == 1:  # rotated tiles
        turn, tile = rng.uniform(0, np.pi), rng.uniform(0.06, 0.18)
        u = (xs * np.cos(turn) + ys * np.sin(turn)) / tile
        v = (-xs * np.sin(turn) + ys * np.cos(turn)) / tile
        weight = ((np.floor(u) + np.floor(v)) % 2).astype(np.float64)
    else:  # clouds: two octaves of value noise
        coarse = Image.fromarray((rng.uniform(0, 255, (4, 4))).astype(np.uint8))
        fine = Image.fromarray((rng.uniform(0, 255, (11, 11))).astype(np.uint8))
        weight = sum(
            w * np.asarray(im.resize((side, side), Image.Resampling.BICUBIC), np.float64) / 255
            for w, im in ((0.7, coarse), (0.3, fine))
        )
    return colours[0] + np.asarray(weight)[..., None] * (colours[1] - colours[0])


def _clutter(rng: np.random.Generator, canvas: Image.Image) -> None:
    """Branches, rings, leaves and shards over the background (in place)."""
    side = canvas.size[0]
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(3, 11))):
        kind = int(rng.integers(0, 4))
        centre = rng.uniform(0, side, 2)
        extent = rng.uniform(0.05, 0.2) * side
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        if kind == 0:
            turns = np.cumsum(rng.uniform(-0.8, 0.8, 4)) + rng.uniform(0, 2 * np.pi)
            steps = np.stack([np.cos(turns), np.sin(turns)], 1) * extent * 0.5
            points = centre + np.cumsum(steps, axis=0)
            width = max(1, int(rng.uniform(0.005, 0.02) * side))
            draw.line([*centre, *points.ravel()], fill=colour, width=width)
        elif kind == 1:
            r = extent * rng.uniform(0.3, 0.8, 2)
            width = max(1, int(rng.uniform(0.01, 0.03) * side))
            draw.ellipse([*(centre - r), *(centre + r)], outline=colour, width=width)
        elif kind == 2:
            tip = centre + extent * np.array([np.cos(a := rng.uniform(0, 6.3)), np.sin(a)])
            mid, normal = 0.5 * (centre + tip), 0.25 * extent * np.array([-np.sin(a), np.cos(a)])
            draw.polygon([*centre, *(mid + normal), *tip, *(mid - normal)], fill=colour)
        else:
            pts = centre + rng.uniform(-1, 1, (3, 2)) * extent
            draw.polygon(pts.ravel().tolist(), fill=colour)


def _background(
    rng: np.random.Generator, side: int, colours: np.ndarray, clean: bool
) -> Image.Image:
    """The ``side x side`` RGB background (plain when ``clean``)."""
    field = _backdrop_field(rng, side, colours)
    if clean:
        return Image.new("RGB", (side, side), tuple(int(v) for v in np.rint(colours[0])))
    canvas = Image.fromarray(np.clip(np.rint(field), 0, 255).astype(np.uint8))
    _clutter(rng, canvas)
    return canvas


def _outline(labels: np.ndarray) -> np.ndarray:
    """``[side, side]`` bool: canvas pixels where two polygons (or polygon and background) meet,
    on the object: the ink lines between facets."""
    edge = np.zeros_like(labels, dtype=bool)
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edge[1:, :] |= labels[1:, :] != labels[:-1, :]
    wide = edge.copy()  # two canvas pixels wide: about one output pixel
    wide[:, :-1] |= edge[:, 1:]
    wide[:-1, :] |= edge[1:, :]
    return wide & (labels > 0)


def _paint(
    canvas: Image.Image,
    prims: list[Primitive],
    placement: Placement,
    rngs: tuple[np.random.Generator, np.random.Generator],
    clean: bool,
) -> tuple[np.ndarray, Image.Image]:
    """The faceted, outlined, textured object on its background, averaged down to the output
    size (float32 RGB), and the canvas's object coverage (255 on the object)."""
    look_rng, back_rng = rngs
    side = canvas.size[0]
    backdrop = look_rng.uniform(30, 225, size=(2, 3))
    shades = _palette(look_rng, backdrop)
    facet = look_rng.uniform(0.82, 1.12, len(prims))  # each facet shaded on its own
    colours = np.array(
        [np.zeros(3), *(shades[p.shade] * f for p, f in zip(prims, facet, strict=True))]
    )
    textured = np.array([False, *(p.textured for p in prims)])
    ink = shades["dark"]
    skin_tone = _texture(look_rng, side, placement)
    labels = np.asarray(canvas)
    body = np.clip(colours[labels], 0, 255)
    if skin_tone is not None:
        body = np.where(textured[labels][..., None], body * skin_tone[..., None], body)
    body = np.where(_outline(labels)[..., None], ink, body)
    drawn = canvas.point([0] + [255] * 255)
    background = _background(back_rng, side, backdrop, clean)
    fine = Image.composite(Image.fromarray(np.rint(body).astype(np.uint8)), background, drawn)
    small = fine.reduce(SUPERSAMPLE)
    if not clean:
        small = small.filter(ImageFilter.GaussianBlur(back_rng.uniform(0.0, 0.7)))
    return np.asarray(small, dtype=np.float32), drawn


def render_sample(
    index: int,
    size: int = 128,
    seed: int = 0,
    *,
    test_fraction: float = 0.25,
    clean: bool = False,
    difficulty: str = "normal",
) -> SyntheticSample:
    """Draw sample ``index`` of the ``lowpoly`` look with seed ``seed`` at ``size x size`` px
    (arguments as :func:`render.render_sample`; the category is
    ``CATEGORIES[index % len(CATEGORIES)]``, the split :func:`render.split_of`)."""
    hard = check_request(size, index, difficulty)
    shape_rng, look_rng, back_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence([seed, index, STREAM]).spawn(3)
    )
    label = CATEGORIES[index % len(CATEGORIES)]
    prims, keypoints = BUILDERS[label](shape_rng)
    placement, angle, mirrored = _pose(shape_rng, prims, size, hard)
    canvas = rasterise(prims, placement, size * SUPERSAMPLE)
    image, drawn = _paint(canvas, prims, placement, (look_rng, back_rng), clean)
    mask = np.asarray(drawn.reduce(SUPERSAMPLE)) >= 128
    box = tight_box(mask)
    occluded = None
    if hard is not None:
        hard_rng = np.random.default_rng(np.random.SeedSequence([seed, index, STREAM, 1]))
        occluded = occlude(hard_rng, image, box, hard)
        box = loose_box(hard_rng, box, size, hard)
    if not clean:
        noise = back_rng.standard_normal(image.shape).astype(np.float32)
        image = image + noise * np.float32(back_rng.uniform(0, 4))
    pixels = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    parts, mask, part_map = parts_and_maps(canvas, prims, keypoints, placement, mask, occluded)
    return SyntheticSample(
        index=index,
        image=pixels,
        label=label,
        split=split_of(index, test_fraction),
        box=box,
        parts=parts,
        mask=mask,
        part_map=part_map,
        angle=angle,
        mirrored=mirrored,
    )


__all__ = ["MAX_ROTATION", "ROTATION_SD", "SCALE", "STREAM", "render_sample"]
