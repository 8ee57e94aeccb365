"""What a mine run is asked to do, and what it reports back."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class MineRequest:
    """Everything ``explgraph mine`` was asked to do."""

    model: str
    images: Path
    cache_dir: Path
    weights: str | None = None
    annotations: Path | None = None
    layers: list[str] | None = None
    label: str | None = None
    split: str | None = "train"
    max_images: int | None = None
    background: Path | None = None
    model_id: str | None = None
    device: str = "auto"
    settings_overrides: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 32
    fires_per_image: int = 20
    fires_per_pattern: int = 20
    force: bool = False
    boxes: str = "clip"  # boxes past the image border: clip them, or refuse (skip) the image
    allow_outside_root: bool = False  # annotation paths may leave the image root
    max_memory: str | None = None  # refuse to start above this estimate ("8G"; None: free RAM)

    def run_params(self) -> dict[str, Any]:
        """The request as recorded in the stored model's ``params`` (next to its run digest)."""
        return {
            "weights_arg": self.weights,
            "label": self.label,
            "split": self.split,
            "images": str(self.images),
            "annotations": str(self.annotations) if self.annotations else None,
            "requested_layers": self.layers,
        }


@dataclass
class MineSummary:
    """What a mine run did, for the CLI and the demo."""

    model_id: str
    reused: bool
    n_images: int
    skipped: list[str]
    layers: list[dict[str, Any]]
    n_edges: int
    n_fires: int
    seconds: float
    skipped_file: Path | None = None  # every skipped image with its reason, one per line
    #: lines the user must see: what the run chose on its own, and warnings ("warning: ...")
    notes: list[str] = field(default_factory=list)

    @classmethod
    def nothing_written(cls, model_id: str, n_images: int, *, reused: bool) -> MineSummary:
        """A run that wrote nothing: the model was already stored (``reused``), or this rank
        of a distributed run leaves the writing to rank 0."""
        return cls(model_id, reused, n_images, [], [], 0, 0, 0.0)

    def text(self) -> str:
        """A few human lines."""
        if self.reused:
            return (
                f"model {self.model_id} is already in the store with the same inputs and "
                "parameters; nothing to do (use --force to mine it again)"
            )
        lines = [f"mined {self.model_id} on {self.n_images} images in {self.seconds:.0f} s"]
        if self.skipped:
            where = f", ... all listed in {self.skipped_file}" if self.skipped_file else ""
            lines[0] += f" ({len(self.skipped)} skipped: {', '.join(self.skipped[:3])}{where})"
        for row in self.layers:
            lines.append(
                f"  {row['name']:>12}: {row['patterns']:>6} patterns, "
                f"explained share {row['explained_share']:.1%}"
            )
        lines.append(f"  {self.n_edges} PARENT edges, {self.n_fires} FIRES edges")
        return "\n".join([*lines, *self.notes])


__all__ = ["MineRequest", "MineSummary"]
