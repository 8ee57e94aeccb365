"""The object categories of the synthetic parts dataset, drawn in their own frame.

Each builder draws one articulated object facing right, about one unit long, centred near the
origin, with joint angles, limb lengths and proportions taken from the random generator it is
given. It returns the polygons in drawing order (later ones cover earlier ones) and the part
keypoints. A keypoint is placed where its own part is visible, never where a later polygon covers
it, so the part map at a keypoint names that keypoint's part.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from miner.data.synthetic.shapes import Primitive, capsule, direction, ellipse, polygon, rotation

Keypoints = dict[str, np.ndarray]
Builder = Callable[[np.random.Generator], tuple[list[Primitive], Keypoints]]

# Every role a pixel of an object can have; the part map stores 1 + the index here (0: none).
ROLES = (
    "body",
    "head",
    "neck",
    "tail",
    "leg",
    "front_foot",
    "back_foot",
    "foot",
    "beak",
    "wing",
    "dorsal_fin",
    "fin",
)

CATEGORY_PARTS: dict[str, tuple[str, ...]] = {
    "quadruped": ("head", "neck", "body", "tail", "front_foot", "back_foot"),
    "bird": ("head", "beak", "body", "wing", "tail", "foot"),
    "fish": ("head", "body", "tail", "dorsal_fin", "fin"),
    "giraffe": ("head", "neck", "body", "tail", "front_foot", "back_foot"),
}


def _leg(
    rng: np.random.Generator,
    hip: np.ndarray,
    upper: float,
    lower: float,
    width: float,
    swing: float,
    foot_role: str,
    shade: str,
) -> tuple[list[Primitive], np.ndarray]:
    """A two-segment leg from ``hip`` with random swing and knee bend; also returns the foot."""
    thigh_angle = 90.0 + rng.uniform(-swing, swing)
    shin_angle = thigh_angle + rng.uniform(-swing, swing)
    knee = hip + upper * direction(thigh_angle)
    foot = knee + lower * direction(shin_angle)
    prims = [
        Primitive(capsule(hip, knee, width, 0.85 * width), "leg", shade, textured=shade == "limb"),
        Primitive(capsule(knee, foot, 0.85 * width, 0.7 * width), "leg", shade),
        Primitive(ellipse(foot, 1.35 * width, 0.95 * width), foot_role, "dark"),
    ]
    return prims, foot


def _eye(centre: np.ndarray, radius: float) -> list[Primitive]:
    return [
        Primitive(ellipse(centre, 1.5 * radius, 1.5 * radius, n=10), "head", "light"),
        Primitive(ellipse(centre, radius, radius, n=10), "head", "dark"),
    ]


def _spike(root: np.ndarray, half_width: float, length: float, angle: float) -> np.ndarray:
    """A triangle from a base of ``2 · half_width`` at ``root`` to a tip ``length`` away at
    ``angle`` (a beak, a fin)."""
    side = half_width * direction(angle + 90)
    return polygon(root + side, root + length * direction(angle), root - side)


def _four_legs(
    rng: np.random.Generator,
    front_hip: np.ndarray,
    back_hip: np.ndarray,
    upper: float,
    lower: float,
    width: float,
    swing: float,
) -> tuple[list[Primitive], list[Primitive], Keypoints]:
    """Far legs (drawn behind the body, darker) and near legs (in front, annotated)."""
    far: list[Primitive] = []
    offset = np.array([0.05, -0.02])
    for hip in (front_hip + offset, back_hip + offset):
        far += _leg(rng, hip, upper, lower, width, swing, "leg", "far")[0]
    front, front_foot = _leg(rng, front_hip, upper, lower, width, swing, "front_foot", "limb")
    back, back_foot = _leg(rng, back_hip, upper, lower, width, swing, "back_foot", "limb")
    return far, front + back, {"front_foot": front_foot, "back_foot": back_foot}


def quadruped(rng: np.random.Generator) -> tuple[list[Primitive], Keypoints]:
    """A dog- or horse-like animal: long body, four legs, short neck, head, tail."""
    rx, ry = rng.uniform(0.44, 0.54), rng.uniform(0.17, 0.23)
    width = rng.uniform(0.055, 0.07)
    far, near, kp = _four_legs(
        rng,
        np.array([0.62 * rx, 0.35 * ry]),
        np.array([-0.62 * rx, 0.35 * ry]),
        rng.uniform(0.2, 0.26),
        rng.uniform(0.18, 0.24),
        width,
        swing=30.0,
    )
    tail_root = np.array([-0.92 * rx, -0.25 * ry])
    tail_dir = direction(rng.uniform(150.0, 215.0))
    tail_end = tail_root + rng.uniform(0.26, 0.34) * tail_dir
    neck_base = np.array([0.8 * rx, -0.35 * ry])
    neck_angle = rng.uniform(-75.0, -20.0)
    neck_end = neck_base + rng.uniform(0.2, 0.28) * direction(neck_angle)
    head_angle = rng.uniform(-20.0, 40.0)
    head = neck_end + 0.03 * direction(neck_angle)
    hr = rng.uniform(0.12, 0.15)
    prims = [
        *far,
        Primitive(capsule(tail_root, tail_end, 0.05, 0.035), "tail", "limb", textured=True),
        Primitive(ellipse(np.zeros(2), rx, ry), "body", "main", textured=True),
        Primitive(capsule(neck_base, neck_end, 0.1, 0.075), "neck", "main", textured=True),
        Primitive(
            polygon(
                head + 0.03 * direction(head_angle - 90),
                head + 0.13 * direction(head_angle - 150),
                head + 0.08 * direction(head_angle - 60),
            ),
            "head",
            "far",
        ),
        Primitive(ellipse(head, hr, 0.66 * hr, head_angle), "head", "main"),
        Primitive(
            ellipse(head + 0.85 * hr * direction(head_angle), 0.55 * hr, 0.42 * hr, head_angle),
            "head",
            "limb",
        ),
        *_eye(
            head + 0.3 * hr * direction(head_angle) + 0.3 * hr * direction(head_angle - 90), 0.018
        ),
        *near,
    ]
    kp["head"] = head
    kp["neck"] = 0.5 * (neck_base + neck_end)
    kp["body"] = np.zeros(2)
    kp["tail"] = tail_root + 0.75 * (tail_end - tail_root)
    return prims, kp


def giraffe(rng: np.random.Generator) -> tuple[list[Primitive], Keypoints]:
    """A long-necked animal: short sloping body, long legs, very long neck, small head."""
    rx, ry = rng.uniform(0.36, 0.44), rng.uniform(0.15, 0.19)
    tilt = rng.uniform(-14.0, -4.0)  # the back slopes down towards the tail
    turn = rotation(tilt)
    far, near, kp = _four_legs(
        rng,
        turn @ np.array([0.6 * rx, 0.45 * ry]),
        turn @ np.array([-0.6 * rx, 0.45 * ry]),
        rng.uniform(0.3, 0.36),
        rng.uniform(0.28, 0.34),
        rng.uniform(0.045, 0.055),
        swing=20.0,
    )
    tail_root = turn @ np.array([-0.95 * rx, -0.2 * ry])
    tail_angle = rng.uniform(100.0, 150.0)
    tail_end = tail_root + rng.uniform(0.24, 0.32) * direction(tail_angle)
    neck_base = turn @ np.array([0.7 * rx, -0.5 * ry])
    neck_angle = rng.uniform(-85.0, -50.0)
    neck_end = neck_base + rng.uniform(0.62, 0.78) * direction(neck_angle)
    head_angle = rng.uniform(-10.0, 50.0)
    head = neck_end + 0.05 * direction(head_angle)
    horn_dir = direction(head_angle - 110)
    horns = [
        Primitive(capsule(head + s, head + s + 0.1 * horn_dir, 0.018, 0.025), "head", "dark")
        for s in (-0.03 * direction(head_angle), 0.01 * direction(head_angle))
    ]
    prims = [
        *far,
        Primitive(capsule(tail_root, tail_end, 0.025, 0.02), "tail", "limb"),
        Primitive(ellipse(tail_end, 0.055, 0.04, tail_angle), "tail", "dark"),
        Primitive(ellipse(np.zeros(2), rx, ry, tilt), "body", "main", textured=True),
        Primitive(capsule(neck_base, neck_end, 0.085, 0.055), "neck", "main", textured=True),
        *horns,
        Primitive(ellipse(head, 0.12, 0.065, head_angle), "head", "main"),
        *_eye(head + 0.02 * direction(head_angle) + 0.03 * direction(head_angle - 90), 0.016),
        *near,
    ]
    kp["head"] = head
    kp["neck"] = 0.5 * (neck_base + neck_end)
    kp["body"] = np.zeros(2)
    kp["tail"] = tail_end
    return prims, kp


def _bird_legs(rng: np.random.Generator, ry: float) -> tuple[list[Primitive], np.ndarray]:
    """A bird's far leg and near leg, each with three toes and a pad; and the near foot."""
    prims: list[Primitive] = []
    foot = np.zeros(2)
    for hip, role in ((np.array([-0.08, 0.8 * ry]), "leg"), (np.array([0.06, 0.8 * ry]), "foot")):
        end = hip + rng.uniform(0.2, 0.28) * direction(90.0 + rng.uniform(-25.0, 25.0))
        shade = "far" if role == "leg" else "dark"
        prims.append(Primitive(capsule(hip, end, 0.024, 0.02), "leg", shade))
        toe_angle = rng.uniform(-20.0, 20.0)
        for toe in (-35.0, 0.0, 35.0):
            tip = end + 0.09 * direction(toe_angle + toe)
            prims.append(Primitive(capsule(end, tip, 0.016, 0.012), role, shade))
        prims.append(Primitive(ellipse(end, 0.045, 0.04), role, shade))
        if role == "foot":
            foot = end
    return prims, foot


def bird(rng: np.random.Generator) -> tuple[list[Primitive], Keypoints]:
    """A perching bird: round tilted body, round head with beak, wing, fan tail, thin legs."""
    rx, ry = rng.uniform(0.36, 0.42), rng.uniform(0.24, 0.29)
    tilt = rng.uniform(-25.0, 0.0)
    turn = rotation(tilt)
    prims, foot = _bird_legs(rng, ry)
    kp: Keypoints = {"foot": foot}
    tail_root = turn @ np.array([-0.85 * rx, -0.05])
    tail_angle = rng.uniform(165.0, 215.0) + tilt
    tail_len = rng.uniform(0.28, 0.38)
    normal = 0.05 * direction(tail_angle + 90)
    prims.append(
        Primitive(
            polygon(
                tail_root + normal,
                tail_root + tail_len * direction(tail_angle - 18),
                tail_root + tail_len * direction(tail_angle + 18),
                tail_root - normal,
            ),
            "tail",
            "accent",
        )
    )
    kp["tail"] = tail_root + 0.6 * tail_len * direction(tail_angle)
    prims.append(Primitive(ellipse(np.zeros(2), rx, ry, tilt), "body", "main", textured=True))
    kp["body"] = turn @ np.array([0.1, 0.55 * ry])
    head_r = rng.uniform(0.14, 0.17)
    neck = turn @ np.array([0.75 * rx, -0.7 * ry])
    head = neck + 0.12 * direction(rng.uniform(-80.0, -30.0))
    prims.append(
        Primitive(capsule(turn @ np.array([0.4 * rx, -0.4 * ry]), head, 0.1, 0.1), "body", "main")
    )
    prims.append(Primitive(ellipse(head, head_r, head_r), "head", "main"))
    beak_angle = rng.uniform(-25.0, 35.0)
    beak_base = head + 0.8 * head_r * direction(beak_angle)
    beak_len = rng.uniform(0.16, 0.24)
    prims.append(Primitive(_spike(beak_base, 0.06, beak_len, beak_angle), "beak", "accent"))
    kp["beak"] = beak_base + 0.35 * beak_len * direction(beak_angle)
    eye = head + 0.4 * head_r * direction(beak_angle) + 0.3 * head_r * direction(beak_angle - 90)
    prims += _eye(eye, 0.022)
    kp["head"] = head
    shoulder = turn @ np.array([0.25 * rx, -0.35 * ry])
    wing_angle = rng.uniform(185.0, 235.0) + tilt
    wing = shoulder + 0.2 * direction(wing_angle)
    prims.append(Primitive(ellipse(wing, 0.26, 0.1, wing_angle), "wing", "accent", textured=True))
    kp["wing"] = wing
    return prims, kp


def fish(rng: np.random.Generator) -> tuple[list[Primitive], Keypoints]:
    """A fish: oval body, forked tail fin, dorsal and belly fins, blunt head, pectoral fin."""
    rx, ry = rng.uniform(0.45, 0.52), rng.uniform(0.19, 0.25)
    kp: Keypoints = {}
    tail_root = np.array([-0.9 * rx, 0.0])
    tail_angle = 180.0 + rng.uniform(-30.0, 30.0)
    tail_len, spread = rng.uniform(0.26, 0.34), rng.uniform(28.0, 40.0)
    tail = polygon(
        tail_root,
        tail_root + tail_len * direction(tail_angle - spread),
        tail_root + 0.55 * tail_len * direction(tail_angle),
        tail_root + tail_len * direction(tail_angle + spread),
    )
    kp["tail"] = tail_root + 0.45 * tail_len * direction(tail_angle)
    top_front = np.array([0.3 * rx, -0.93 * ry])
    top_back = np.array([-0.35 * rx, -0.92 * ry])
    apex = np.array([-0.1 * rx + rng.uniform(-0.1, 0.05), -ry - rng.uniform(0.14, 0.22)])
    kp["dorsal_fin"] = 0.5 * (top_front + top_back) + 0.6 * (apex - 0.5 * (top_front + top_back))
    belly = np.array([-0.45 * rx, 0.9 * ry])
    belly_tip = belly + rng.uniform(0.1, 0.15) * direction(rng.uniform(100.0, 150.0))
    head = np.array([0.62 * rx, 0.0])
    fin_root = np.array([0.3 * rx, 0.35 * ry])
    fin_angle = rng.uniform(120.0, 170.0)
    fin_len = rng.uniform(0.14, 0.19)
    prims = [
        Primitive(tail, "tail", "accent"),
        Primitive(polygon(top_front, apex, top_back), "dorsal_fin", "accent"),
        Primitive(
            polygon(belly + np.array([0.08, 0.0]), belly_tip, belly - np.array([0.06, 0.0])),
            "fin",
            "accent",
        ),
        Primitive(ellipse(np.zeros(2), rx, ry), "body", "main", textured=True),
        Primitive(ellipse(head, 0.4 * rx, 0.75 * ry), "head", "limb"),
        *_eye(np.array([0.78 * rx, -0.3 * ry]), 0.028),
        Primitive(_spike(fin_root, 0.045, fin_len, fin_angle), "fin", "accent"),
    ]
    kp["fin"] = fin_root + 0.55 * fin_len * direction(fin_angle)
    kp["head"] = head
    kp["body"] = np.array([-0.2 * rx, 0.0])
    return prims, kp


BUILDERS: dict[str, Builder] = {
    "quadruped": quadruped,
    "bird": bird,
    "fish": fish,
    "giraffe": giraffe,
}

CATEGORIES: tuple[str, ...] = tuple(BUILDERS)

__all__ = [
    "BUILDERS",
    "CATEGORIES",
    "CATEGORY_PARTS",
    "ROLES",
    "bird",
    "fish",
    "giraffe",
    "quadruped",
]
