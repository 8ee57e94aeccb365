"""Per-pattern top-k over images, accumulated chunk by chunk, so memory does not grow with N.

``compare`` and ``diagnose`` need, per pattern, only its ``k`` best-scoring images (where it
fires, and where it sits there), and, per landmark, its ``k`` best-scoring images that show the
landmark (docs/method.md §7.1). Holding ``[N, P]`` scores and ``[N, P, 2]`` positions for that
grows with the number of images; merging each chunk of images into a running top-k keeps
``O(k·P)`` whatever ``N``. The result equals a single ``topk`` over all images (same entries in
the same descending order) except where scores tie exactly at the k-th place.
"""

from __future__ import annotations

import torch

from explgraph.errors import InputError


class RunningTopK:
    """The ``k`` largest scores along the image axis, per pattern, with rows of payload alongside.

    Scores are ``[n, *shape]`` per chunk; each payload ``[n, *shape, *extra]``. After the last
    chunk :attr:`scores` is ``[min(k, N), *shape]`` sorted descending and :attr:`payloads` the
    matching rows.
    """

    def __init__(self, k: int) -> None:
        if k < 1:
            raise InputError(f"top-k needs k >= 1, got {k}")
        self.k = k
        self.scores: torch.Tensor | None = None
        self.payloads: tuple[torch.Tensor, ...] = ()

    def add(self, scores: torch.Tensor, *payloads: torch.Tensor) -> None:
        """Merge a chunk of ``n`` images into the running top-k."""
        if self.scores is not None:
            scores = torch.cat([self.scores, scores], dim=0)
            payloads = tuple(
                torch.cat([old, new], dim=0)
                for old, new in zip(self.payloads, payloads, strict=True)
            )
        keep = min(self.k, scores.shape[0])
        top = scores.topk(keep, dim=0)  # sorted, best first
        self.scores = top.values
        self.payloads = tuple(_rows(payload, top.indices) for payload in payloads)


def _rows(payload: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``payload[index[r, p], p, ...]``: the payload rows that ``index`` picked, per pattern."""
    extra = payload.dim() - index.dim()
    shaped = index.reshape(*index.shape, *([1] * extra)).expand(
        *index.shape, *payload.shape[index.dim() :]
    )
    return payload.gather(0, shaped)


class StreamedInstability:
    """Location instability of ``P`` patterns against ``J`` landmarks, streamed over images.

    The same numbers as :func:`queries.stability.pattern_instability` on all images at once:
    per landmark, each pattern's ``top_k`` best-scoring images among those showing the
    landmark; the std over them of ``|position - landmark| / diagonal``.
    """

    def __init__(self, n_landmarks: int, top_k: int) -> None:
        self.top_k = top_k
        self.landmarks = [RunningTopK(top_k) for _ in range(n_landmarks)]
        self.shown = torch.zeros(n_landmarks, dtype=torch.long)

    def add(
        self,
        positions: torch.Tensor,
        scores: torch.Tensor,
        landmarks: torch.Tensor,
        visible: torch.Tensor,
    ) -> None:
        """A chunk: positions ``[n, P, 2]``, scores ``[n, P]``, landmarks ``[n, J, 2]`` in the
        same frame, visible ``[n, J]`` bool."""
        n, n_patterns = scores.shape
        visible = visible.to(torch.bool)
        self.shown += visible.sum(dim=0).to(torch.long)
        for j, running in enumerate(self.landmarks):  # a handful of landmarks; all patterns
            masked = scores.masked_fill(~visible[:, j, None], float("-inf"))
            target = landmarks[:, j, None, :].expand(n, n_patterns, 2)
            running.add(masked, positions, target)

    def per_landmark(self, *, diagonal: float, min_images: int = 2) -> list[torch.Tensor | None]:
        """Per landmark ``[P]`` instability, or ``None`` where fewer than ``min_images`` show it."""
        out: list[torch.Tensor | None] = []
        for j, running in enumerate(self.landmarks):
            n_shown = int(self.shown[j])
            if n_shown < min_images or running.scores is None:
                out.append(None)
                continue
            k = min(self.top_k, n_shown)
            picked, target = (payload[:k] for payload in running.payloads)
            distance = (picked - target).norm(dim=-1) / diagonal
            out.append(distance.std(dim=0, unbiased=False))
        return out

    def per_pattern(self, n_patterns: int, *, diagonal: float, min_images: int = 2) -> torch.Tensor:
        """``[P]`` mean over the landmarks that count (NaN where none does)."""
        rows = [
            row
            for row in self.per_landmark(diagonal=diagonal, min_images=min_images)
            if row is not None
        ]
        if not rows:
            return torch.full((n_patterns,), float("nan"))
        return torch.stack(rows).mean(dim=0)


__all__ = ["RunningTopK", "StreamedInstability"]
