"""Polygon primitives in an object's own frame, before pose is applied.

Every primitive is a closed polygon so that rotation, mirroring and scaling are one matrix
product on its vertices. Angles are in degrees in image orientation (y down): 0 points right,
90 points down, -90 points up.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# What a primitive's fill colour is derived from; the renderer turns these into RGB per sample.
SHADES = ("main", "limb", "far", "accent", "dark", "light")


@dataclass(frozen=True)
class Primitive:
    """One filled polygon of an object: its vertices, the part it belongs to, how it is coloured."""

    points: np.ndarray  # (n, 2) object-frame vertices
    role: str  # part name written into the part map
    shade: str = "main"  # one of SHADES
    textured: bool = False  # whether the sample's skin texture (stripes, spots, ...) applies


def direction(angle_deg: float) -> np.ndarray:
    """Unit vector at ``angle_deg`` (0 right, 90 down)."""
    rad = np.deg2rad(angle_deg)
    return np.array([np.cos(rad), np.sin(rad)])


def ellipse(
    centre: np.ndarray, rx: float, ry: float, angle_deg: float = 0.0, n: int = 20
) -> np.ndarray:
    """Vertices of an ellipse with half-axes ``rx`` (along ``angle_deg``) and ``ry``."""
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    local = np.stack([rx * np.cos(t), ry * np.sin(t)], axis=1)
    return np.asarray(centre, dtype=np.float64) + local @ rotation(angle_deg).T


def capsule(p0: np.ndarray, p1: np.ndarray, r0: float, r1: float, n: int = 6) -> np.ndarray:
    """A limb: the hull of a circle of radius ``r0`` at ``p0`` and one of ``r1`` at ``p1``."""
    p0 = np.asarray(p0, dtype=np.float64)
    p1 = np.asarray(p1, dtype=np.float64)
    phi = np.arctan2(p1[1] - p0[1], p1[0] - p0[0])
    far = phi + np.linspace(-np.pi / 2, np.pi / 2, n)
    near = phi + np.linspace(np.pi / 2, 3 * np.pi / 2, n)
    end = p1 + r1 * np.stack([np.cos(far), np.sin(far)], axis=1)
    start = p0 + r0 * np.stack([np.cos(near), np.sin(near)], axis=1)
    return np.concatenate([end, start])


def rotation(angle_deg: float) -> np.ndarray:
    """2x2 matrix turning vectors by ``angle_deg`` (clockwise on screen, since y points down)."""
    rad = np.deg2rad(angle_deg)
    c, s = np.cos(rad), np.sin(rad)
    return np.array([[c, -s], [s, c]])


def polygon(*points: np.ndarray | tuple[float, float]) -> np.ndarray:
    """Vertices given one by one, as an ``(n, 2)`` array."""
    return np.array([np.asarray(p, dtype=np.float64) for p in points])


__all__ = ["SHADES", "Primitive", "capsule", "direction", "ellipse", "polygon", "rotation"]
