"""The ``lowpoly`` look's animals: faceted, angular bodies in other proportions and poses.

The same four categories and part names as the ``cartoon`` look (:mod:`categories`), drawn
differently: bodies and heads are irregular polygons of a few vertices (no smooth ellipses),
limbs are straight bars, the bird is slender and long-necked with a long thin beak, a crest and
a wing that may be folded or raised, the quadruped is boxy with a long snout and ears, the
giraffe's neck leans further forward, the fish is a rhombus with a lunate tail. Each builder
draws one object facing right, about one unit long, near the origin, and returns its polygons
in drawing order and the keypoints, each placed where its own part is visible.
"""

from __future__ import annotations

import numpy as np

from miner.data.synthetic.categories import Builder, Keypoints
from miner.data.synthetic.shapes import Primitive, direction, polygon, rotation


def facets(
    rng: np.random.Generator,
    centre: np.ndarray,
    rx: float,
    ry: float,
    angle: float = 0.0,
    corners: tuple[int, int] = (5, 8),
) -> np.ndarray:
    """An irregular convex-ish polygon of a few corners inscribed in an ellipse: a faceted
    blob (corners at jittered angles, radii between 0.85 and 1 of the ellipse's)."""
    n = int(rng.integers(corners[0], corners[1] + 1))
    turns = np.sort((np.arange(n) + rng.uniform(-0.3, 0.3, n)) * 2 * np.pi / n)
    radii = rng.uniform(0.85, 1.0, n)
    local = np.stack([rx * radii * np.cos(turns), ry * radii * np.sin(turns)], axis=1)
    return np.asarray(centre, dtype=np.float64) + local @ rotation(angle).T


def around(centre: np.ndarray, *offsets: tuple[float, float]) -> np.ndarray:
    """The polygon of ``centre`` plus each offset, in order."""
    return np.asarray(centre, dtype=np.float64) + np.array(offsets, dtype=np.float64)


def bar(p0: np.ndarray, p1: np.ndarray, w0: float, w1: float) -> np.ndarray:
    """A straight limb: the quadrilateral from a width ``2 w0`` at ``p0`` to ``2 w1`` at ``p1``."""
    p0, p1 = np.asarray(p0, dtype=np.float64), np.asarray(p1, dtype=np.float64)
    d = p1 - p0
    normal = np.array([-d[1], d[0]]) / max(float(np.hypot(*d)), 1e-9)
    return polygon(p0 + w0 * normal, p1 + w1 * normal, p1 - w1 * normal, p0 - w0 * normal)


def _hoof_leg(
    rng: np.random.Generator, hip: np.ndarray, length: float, width: float, role: str, shade: str
) -> tuple[list[Primitive], np.ndarray]:
    """A straight leg from ``hip`` with a blocky hoof; returns the hoof's centre."""
    end = hip + length * direction(90.0 + rng.uniform(-22.0, 22.0))
    hoof = end + np.array([0.02, 0.0])
    prims = [
        Primitive(bar(hip, end, width, 0.7 * width), "leg", shade, textured=shade == "limb"),
        Primitive(
            polygon(
                end + np.array([-1.1 * width, -0.6 * width]),
                end + np.array([1.6 * width, -0.6 * width]),
                end + np.array([1.8 * width, 0.9 * width]),
                end + np.array([-1.1 * width, 0.9 * width]),
            ),
            role,
            "dark",
        ),
    ]
    return prims, hoof


def _legs(
    rng: np.random.Generator, front: np.ndarray, back: np.ndarray, length: float, width: float
) -> tuple[list[Primitive], list[Primitive], Keypoints]:
    """Far legs (behind the body) and near legs (in front, annotated feet)."""
    far: list[Primitive] = []
    for hip in (front + np.array([0.06, -0.02]), back + np.array([0.06, -0.02])):
        far += _hoof_leg(rng, hip, length, width, "leg", "far")[0]
    near_front, front_foot = _hoof_leg(rng, front, length, width, "front_foot", "limb")
    near_back, back_foot = _hoof_leg(rng, back, length, width, "back_foot", "limb")
    # both legs before either hoof: a swinging leg never hides the other's annotated hoof
    near = [near_back[0], near_front[0], near_back[1], near_front[1]]
    return far, near, {"front_foot": front_foot, "back_foot": back_foot}


def _snout_head(
    rng: np.random.Generator, head: np.ndarray, angle: float, size: float
) -> list[Primitive]:
    """A wedge head with a long snout, two ears and a square eye."""
    tip = head + 2.0 * size * direction(angle)
    jaw = head + 0.7 * size * direction(angle + 100)
    crown = head + 0.8 * size * direction(angle - 100)
    back = head - 0.6 * size * direction(angle)
    ear = [
        Primitive(
            polygon(crown, crown + 0.9 * size * direction(angle - 125 + s), back), "head", "far"
        )
        for s in (0.0, rng.uniform(15.0, 30.0))
    ]
    eye = head + 0.3 * size * direction(angle) + 0.25 * size * direction(angle - 90)
    e = 0.16 * size
    return [
        *ear,
        Primitive(polygon(back, crown, tip, jaw), "head", "main"),
        Primitive(around(eye, (-e, -e), (e, -e), (e, e), (-e, e)), "head", "dark"),
    ]


def quadruped(rng: np.random.Generator) -> tuple[list[Primitive], Keypoints]:
    """A boxy beast: hexagonal body, straight legs with hooves, short neck, long snout."""
    rx, ry = rng.uniform(0.38, 0.46), rng.uniform(0.2, 0.26)
    far, near, kp = _legs(
        rng,
        np.array([0.6 * rx, 0.5 * ry]),
        np.array([-0.6 * rx, 0.5 * ry]),
        rng.uniform(0.3, 0.4),
        rng.uniform(0.05, 0.065),
    )
    tail_root = np.array([-0.95 * rx, -0.4 * ry])
    tail_end = tail_root + rng.uniform(0.3, 0.4) * direction(rng.uniform(120.0, 200.0))
    neck_base = np.array([0.75 * rx, -0.5 * ry])
    neck_angle = rng.uniform(-60.0, -15.0)
    neck_end = neck_base + rng.uniform(0.16, 0.22) * direction(neck_angle)
    head_angle = rng.uniform(0.0, 50.0)
    head = neck_end + 0.04 * direction(neck_angle)
    prims = [
        *far,
        Primitive(bar(tail_root, tail_end, 0.025, 0.012), "tail", "limb"),
        Primitive(facets(rng, tail_end, 0.06, 0.04, 0.0, (4, 6)), "tail", "dark"),
        Primitive(
            facets(rng, np.zeros(2), rx, ry, rng.uniform(-6, 6), (6, 6)),
            "body",
            "main",
            textured=True,
        ),
        Primitive(bar(neck_base, neck_end, 0.11, 0.08), "neck", "main", textured=True),
        *_snout_head(rng, head, head_angle, rng.uniform(0.08, 0.1)),
        *near,
    ]
    kp["head"] = head
    kp["neck"] = 0.5 * (neck_base + neck_end)
    kp["body"] = np.array([-0.1 * rx, 0.1 * ry])
    kp["tail"] = tail_end
    return prims, kp


def giraffe(rng: np.random.Generator) -> tuple[list[Primitive], Keypoints]:
    """A tall browser: short body, very long straight legs, a long neck leaning forward."""
    rx, ry = rng.uniform(0.3, 0.36), rng.uniform(0.16, 0.2)
    tilt = rng.uniform(-20.0, -8.0)
    turn = rotation(tilt)
    far, near, kp = _legs(
        rng,
        turn @ np.array([0.55 * rx, 0.5 * ry]),
        turn @ np.array([-0.55 * rx, 0.5 * ry]),
        rng.uniform(0.5, 0.6),
        rng.uniform(0.035, 0.045),
    )
    tail_root = turn @ np.array([-0.95 * rx, -0.1 * ry])
    tail_end = tail_root + rng.uniform(0.2, 0.28) * direction(rng.uniform(95.0, 130.0))
    neck_base = turn @ np.array([0.65 * rx, -0.55 * ry])
    neck_angle = rng.uniform(-65.0, -35.0)
    neck_end = neck_base + rng.uniform(0.55, 0.7) * direction(neck_angle)
    head = neck_end + 0.03 * direction(neck_angle)
    prims = [
        *far,
        Primitive(bar(tail_root, tail_end, 0.02, 0.012), "tail", "limb"),
        Primitive(facets(rng, tail_end, 0.05, 0.035, 90.0, (4, 5)), "tail", "dark"),
        Primitive(facets(rng, np.zeros(2), rx, ry, tilt, (5, 7)), "body", "main", textured=True),
        Primitive(bar(neck_base, neck_end, 0.08, 0.045), "neck", "main", textured=True),
        *_snout_head(rng, head, rng.uniform(10.0, 60.0), rng.uniform(0.06, 0.075)),
        *near,
    ]
    kp["head"] = head
    kp["neck"] = 0.5 * (neck_base + neck_end)
    kp["body"] = np.zeros(2)
    kp["tail"] = tail_end
    return prims, kp


def _bird_legs(rng: np.random.Generator, hip_y: float) -> tuple[list[Primitive], np.ndarray]:
    """Two long straight legs, each ending in a two-toed claw; returns the near foot."""
    prims: list[Primitive] = []
    foot = np.zeros(2)
    for hip, role in ((np.array([-0.05, hip_y]), "leg"), (np.array([0.07, hip_y]), "foot")):
        end = hip + rng.uniform(0.26, 0.36) * direction(90.0 + rng.uniform(-18.0, 18.0))
        shade = "far" if role == "leg" else "dark"
        prims.append(Primitive(bar(hip, end, 0.014, 0.012), "leg", shade))
        claw = around(end, (-0.06, 0.0), (0.0, -0.025), (0.08, 0.0), (0.0, 0.03))
        prims.append(Primitive(claw, role, shade))
        if role == "foot":
            foot = end
    return prims, foot


def _bird_wing(
    rng: np.random.Generator, shoulder: np.ndarray, tilt: float
) -> tuple[Primitive, np.ndarray]:
    """A triangular wing, folded back along the body or raised; returns its keypoint."""
    raised = bool(rng.random() < 0.4)
    angle = (rng.uniform(235.0, 290.0) if raised else rng.uniform(175.0, 205.0)) + tilt
    length = rng.uniform(0.34, 0.44) if raised else rng.uniform(0.3, 0.38)
    base = 0.09 * direction(angle + 90)
    tip = shoulder + length * direction(angle)
    wing = polygon(shoulder + base, tip, shoulder - base)
    return Primitive(wing, "wing", "accent", textured=True), shoulder + 0.4 * (tip - shoulder)


def bird(rng: np.random.Generator) -> tuple[list[Primitive], Keypoints]:
    """A wader: slender faceted body, long neck, small crested head, long thin beak, long
    forked tail, long legs, a wing folded or raised."""
    rx, ry = rng.uniform(0.34, 0.42), rng.uniform(0.13, 0.17)
    tilt = rng.uniform(-30.0, 10.0)
    turn = rotation(tilt)
    prims, foot = _bird_legs(rng, 0.8 * ry)
    kp: Keypoints = {"foot": foot}
    tail_root = turn @ np.array([-0.85 * rx, 0.0])
    tail_angle = rng.uniform(160.0, 200.0) + tilt
    tail_len = rng.uniform(0.3, 0.42)
    tips = [
        tail_root + tail_len * direction(tail_angle + side * rng.uniform(4.0, 12.0))
        for side in (-1.0, 1.0)
    ]  # two narrow feathers: a forked tail
    prims += [Primitive(bar(tail_root, tip, 0.035, 0.012), "tail", "accent") for tip in tips]
    kp["tail"] = tail_root + 0.5 * (tips[1] - tail_root)
    prims.append(
        Primitive(facets(rng, np.zeros(2), rx, ry, tilt, (6, 8)), "body", "main", textured=True)
    )
    kp["body"] = turn @ np.array([-0.05, 0.3 * ry])
    neck = turn @ np.array([0.7 * rx, -0.4 * ry])
    head = neck + rng.uniform(0.2, 0.3) * direction(rng.uniform(-85.0, -50.0))
    head_r = rng.uniform(0.085, 0.11)
    prims.append(Primitive(bar(neck, head, 0.05, 0.04), "body", "main"))
    wing, kp["wing"] = _bird_wing(rng, turn @ np.array([0.15 * rx, -0.5 * ry]), tilt)
    prims.append(wing)
    crest = head + 0.7 * head_r * direction(-120.0)
    prims.append(
        Primitive(polygon(head, crest + 1.2 * head_r * direction(-160.0), crest), "head", "accent")
    )
    prims.append(Primitive(facets(rng, head, head_r, 0.9 * head_r, 0.0, (5, 6)), "head", "main"))
    beak_angle = rng.uniform(-10.0, 50.0)
    beak_base = head + 0.75 * head_r * direction(beak_angle)
    beak_len = rng.uniform(0.2, 0.3)
    side = 0.04 * direction(beak_angle + 90)
    prims.append(
        Primitive(
            polygon(
                beak_base + side, beak_base + beak_len * direction(beak_angle), beak_base - side
            ),
            "beak",
            "accent",
        )
    )
    kp["beak"] = beak_base + 0.25 * beak_len * direction(beak_angle)
    eye = head + 0.35 * head_r * direction(beak_angle - 60)
    prims.append(Primitive(facets(rng, eye, 0.022, 0.022, 0.0, (4, 4)), "head", "dark"))
    kp["head"] = head - 0.3 * head_r * direction(beak_angle)
    return prims, kp


def fish(rng: np.random.Generator) -> tuple[list[Primitive], Keypoints]:
    """A rhombic fish: angular body, lunate tail, long low dorsal fin, a pointed head."""
    rx, ry = rng.uniform(0.42, 0.5), rng.uniform(0.22, 0.3)
    kp: Keypoints = {}
    tail_root = np.array([-0.95 * rx, 0.0])
    tail_angle = 180.0 + rng.uniform(-25.0, 25.0)
    tail_len = rng.uniform(0.22, 0.3)
    centre = tail_root + tail_len * direction(tail_angle)
    across = 0.8 * tail_len * direction(tail_angle + 90)
    tail = polygon(
        tail_root, centre + across, centre + 0.35 * (tail_root - centre), centre - across
    )
    kp["tail"] = tail_root + 0.4 * tail_len * direction(tail_angle)
    top_front = np.array([0.35 * rx, -0.6 * ry])
    top_back = np.array([-0.6 * rx, -0.45 * ry])
    apex = np.array([-0.3 * rx, -ry - rng.uniform(0.08, 0.14)])
    base = 0.5 * (top_front + top_back)
    kp["dorsal_fin"] = base + 0.6 * (apex - base)
    fin_root = np.array([0.1 * rx, 0.4 * ry])
    fin_angle = rng.uniform(110.0, 160.0)
    fin_len = rng.uniform(0.16, 0.22)
    body = polygon(
        (rx, rng.uniform(-0.1, 0.1) * ry), (0.1 * rx, -ry), (-0.95 * rx, 0.0), (0.1 * rx, ry)
    )
    head = polygon((rx, 0.0), (0.45 * rx, -0.8 * ry), (0.45 * rx, 0.8 * ry))
    prims = [
        Primitive(tail, "tail", "accent"),
        Primitive(polygon(top_front, apex, top_back), "dorsal_fin", "accent"),
        Primitive(body, "body", "main", textured=True),
        Primitive(head, "head", "limb"),
        Primitive(
            facets(rng, np.array([0.75 * rx, -0.2 * ry]), 0.03, 0.03, 0.0, (4, 5)), "head", "dark"
        ),
        Primitive(
            bar(fin_root, fin_root + fin_len * direction(fin_angle), 0.04, 0.01), "fin", "accent"
        ),
    ]
    kp["fin"] = fin_root + 0.5 * fin_len * direction(fin_angle)
    kp["head"] = np.array([0.62 * rx, 0.2 * ry])
    kp["body"] = np.array([-0.3 * rx, 0.1 * ry])
    return prims, kp


BUILDERS: dict[str, Builder] = {
    "quadruped": quadruped,
    "bird": bird,
    "fish": fish,
    "giraffe": giraffe,
}

__all__ = ["BUILDERS", "around", "bar", "bird", "facets", "fish", "giraffe", "quadruped"]
