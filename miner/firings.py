"""Which pattern firings are worth storing: the top patterns of every image, and the top images
of every pattern, selected in one streaming pass over image chunks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Firings:
    """Selected firings of one layer, as parallel 1-D tensors (one entry per firing)."""

    image: torch.Tensor  # long, index into the mined images
    pattern: torch.Tensor  # long, index into the layer's patterns
    x: torch.Tensor  # float, image pixels of the model input crop
    y: torch.Tensor
    score: torch.Tensor  # inference score S
    rank: torch.Tensor  # long, rank of the pattern among the image's patterns (0 = best)


class FiringSelector:
    """Streams inference chunks of one layer and keeps the firings worth storing.

    A firing ``(image, pattern)`` is kept when the pattern is among the image's ``per_image`` best
    or the image is among the pattern's ``per_pattern`` best; both are exact over all chunks.
    """

    def __init__(self, n_patterns: int, per_image: int, per_pattern: int) -> None:
        self.per_image = per_image
        self.per_pattern = per_pattern
        self._best_scores = torch.empty(0, n_patterns)
        self._best_images = torch.empty(0, n_patterns, dtype=torch.long)
        self._rows: list[tuple[torch.Tensor, ...]] = []
        self._positions: list[torch.Tensor] = []
        self._scores: list[torch.Tensor] = []
        self._offset = 0

    def add(self, positions: torch.Tensor, scores: torch.Tensor) -> None:
        """Add one chunk: ``positions [n, P, 2]`` pixels and ``scores [n, P]``."""
        positions, scores = positions.detach().float().cpu(), scores.detach().float().cpu()
        n, n_patterns = scores.shape
        images = torch.arange(self._offset, self._offset + n)
        # the per-pattern best images, merged with earlier chunks
        merged_scores = torch.cat([self._best_scores, scores])
        merged_images = torch.cat([self._best_images, images[:, None].expand(n, n_patterns)])
        k = min(self.per_pattern, merged_scores.shape[0])
        top = merged_scores.topk(k, dim=0)
        self._best_scores = top.values
        self._best_images = merged_images.gather(0, top.indices)
        # the per-image best patterns of this chunk: final, since they depend on this image only
        k_image = min(self.per_image, n_patterns)
        order = scores.argsort(dim=1, descending=True)
        rank = torch.empty_like(order)
        rank.scatter_(1, order, torch.arange(n_patterns).expand(n, n_patterns).contiguous())
        self._positions.append(positions)
        self._scores.append(scores)
        self._rows.append((rank, order[:, :k_image]))
        self._offset += n

    def result(self) -> Firings:
        """The union of per-image and per-pattern selections, sorted by image then rank."""
        positions = torch.cat(self._positions)
        scores = torch.cat(self._scores)
        ranks = torch.cat([rank for rank, _ in self._rows])
        keep = torch.zeros_like(scores, dtype=torch.bool)
        per_image = torch.cat([top for _, top in self._rows])
        keep.scatter_(1, per_image, True)
        patterns = torch.arange(scores.shape[1]).expand_as(self._best_images)
        keep[self._best_images, patterns] = True
        image, pattern = keep.nonzero(as_tuple=True)
        order = torch.argsort(image * scores.shape[1] + ranks[image, pattern])
        image, pattern = image[order], pattern[order]
        return Firings(
            image=image,
            pattern=pattern,
            x=positions[image, pattern, 0],
            y=positions[image, pattern, 1],
            score=scores[image, pattern],
            rank=ranks[image, pattern],
        )


__all__ = ["FiringSelector", "Firings"]
