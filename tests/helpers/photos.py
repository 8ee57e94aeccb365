"""Natural photographs for the domain check: scikit-image's sample images (a test dependency).

The synthetic data the toy graph is mined on are flat-coloured drawings; these are real photos
of a cat, a coffee cup and a person, the issue's own examples of images outside that domain.
"""

from __future__ import annotations

from pathlib import Path

#: the photos, by scikit-image's file names
NATURAL_PHOTOS = ("chelsea.png", "coffee.png", "astronaut.png")


def natural_photo(name: str) -> Path:
    """The path of one of scikit-image's bundled sample photos (``NATURAL_PHOTOS``)."""
    import skimage

    path = Path(skimage.__file__).parent / "data" / name
    assert path.is_file(), f"scikit-image's sample {name} is missing: reinstall scikit-image"
    return path


__all__ = ["NATURAL_PHOTOS", "natural_photo"]
