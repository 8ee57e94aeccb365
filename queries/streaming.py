"""Per-pattern top-k over images, accumulated chunk by chunk, so memory does not grow with N.

``compare`` and ``diagnose`` need, per pattern, only its ``k`` best-scoring images (where it
fires, and where it sits there), and, per landmark, its ``k`` best-scoring images that show the
landmark (docs/method.md §7.1). Holding ``[N, P]`` scores and ``[N, P, 2]`` positions for that
grows with the number of images; merging each chunk of images into a running top-k keeps
``O(k·P)`` whatever ``N``. The result equals a single ``topk`` over all images (same entries in
the same descending order) except where scores tie exactly at the k-th place.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from explgraph.core.errors import InputError


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


class TopKAccumulator:
    """Unsigned and signed location instability of ``P`` patterns, streamed over image chunks.

    Per landmark and pattern only the ``top_k`` best-scoring images that show the landmark are
    held (score, and the offset landmark - position in the mirror-normalised frame), plus each
    pattern's ``top_k`` scores over all images for the ranking: memory is ``O(J·k·P)`` whatever
    the number of images (docs/method.md §7.1, §7.3).

    ``views`` position sets may share one set of scores (the patterns and the patterns frozen
    at their prior are ranked by the same inference scores): the top-k is then selected once
    and each view keeps its own offsets. Only the offsets of the selected images are computed.
    ``dtype`` is what positions and scores are held in (``None``: the inputs' own).
    """

    def __init__(
        self,
        n_patterns: int,
        n_landmarks: int,
        top_k: int = 20,
        *,
        views: int = 1,
        rank: bool = True,
        dtype: torch.dtype | None = torch.float32,
    ) -> None:
        if top_k < 1:
            raise InputError(f"top-k needs k >= 1, got {top_k}")
        self.top_k = top_k
        self.n_patterns = n_patterns
        self.n_landmarks = n_landmarks
        self.views = views
        self.rank = rank
        self.dtype = dtype
        self.shown = torch.zeros(n_landmarks, dtype=torch.long)
        # [held, J, P], best first along dim 0; None until the first chunk
        self._scores: torch.Tensor | None = None
        # per view the x and y of landmark - position, each [held, J, P]
        self._offsets: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.rank_scores: torch.Tensor | None = None  # [held, P]
        # the unsigned distance as pattern_instability rounds it (|d| / diagonal); the evaluate
        # stability figures were always |d / diagonal|
        self._divide_after_norm = False

    @property
    def scores(self) -> torch.Tensor:
        """``[J, held, P]`` the held scores per landmark, best first (``-inf``: no image)."""
        if self._scores is None:
            return torch.full((self.n_landmarks, 0, self.n_patterns), float("-inf"))
        return self._scores.transpose(0, 1)

    def offsets(self, view: int = 0) -> torch.Tensor:
        """``[J, held, P, 2]`` landmark - position of the held images, mirror-normalised."""
        if not self._offsets:
            return torch.zeros((self.n_landmarks, 0, self.n_patterns, 2))
        return torch.stack(self._offsets[view], dim=-1).transpose(0, 1)

    def add(
        self,
        positions: torch.Tensor | Sequence[torch.Tensor],
        scores: torch.Tensor,
        landmarks: torch.Tensor,
        visible: torch.Tensor,
        flipped: torch.Tensor | None = None,
    ) -> None:
        """Add a chunk of ``n`` images.

        Args:
            positions: ``[n, P, 2]`` positions in the original image frame (pixels), or one
                such tensor per view.
            scores: ``[n, P]`` scores that rank the images per pattern.
            landmarks: ``[n, J, 2]`` in the same frame; visible ``[n, J]`` bool.
            flipped: ``[n]`` bool, whether the detector read the image mirrored; the offset's x
                is negated there (the frame where the mirror is undone). ``None``: no mirror.
        """
        views = [positions] if isinstance(positions, torch.Tensor) else list(positions)
        if len(views) != self.views:
            raise InputError(f"the accumulator holds {self.views} view(s), got {len(views)}")
        dtype = self.dtype or torch.result_type(views[0], scores)
        views = [view.to(dtype) for view in views]
        scores, landmarks = scores.to(dtype), landmarks.to(dtype)
        n, n_patterns = scores.shape
        self.n_patterns = n_patterns
        visible = visible.to(torch.bool)
        self.shown += visible.to(torch.long).sum(dim=0)
        if self.rank:
            ranked = scores if self.rank_scores is None else torch.cat([self.rank_scores, scores])
            self.rank_scores = ranked.topk(min(self.top_k, ranked.shape[0]), dim=0).values
        n_landmarks = visible.shape[1]
        masked = scores[:, None, :].expand(n, n_landmarks, n_patterns)
        masked = masked.masked_fill(~visible[:, :, None], float("-inf"))  # [n, J, P]
        held = 0 if self._scores is None else self._scores.shape[0]
        candidates = masked if self._scores is None else torch.cat([self._scores, masked])
        top = candidates.topk(min(self.top_k, candidates.shape[0]), dim=0)  # best first
        self._scores = top.values
        self._offsets = self._merged_offsets(views, landmarks, flipped, top.indices, held)

    def _merged_offsets(
        self,
        views: list[torch.Tensor],
        landmarks: torch.Tensor,
        flipped: torch.Tensor | None,
        index: torch.Tensor,
        held: int,
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per view the offsets ``(x, y)`` ``[keep, J, P]`` of the images now held: the held
        ones kept, the chunk's new ones formed (``index``: rows of held + chunk, best first)."""
        n, n_landmarks, n_patterns = views[0].shape[0], landmarks.shape[1], views[0].shape[1]
        image = (index - held).clamp_min(0)  # the chunk's image where a new row was picked
        shape = (n, n_landmarks, n_patterns)

        def picked(per_image: torch.Tensor) -> torch.Tensor:
            """``[n, J, P]``-broadcastable values at the picked images: ``[keep, J, P]``."""
            return per_image.expand(shape).gather(0, image)

        # gathers of [keep, J, P], x and y apart: advanced indexing of [keep, J, P, 2] cost
        # 5x more; the offsets of the chunk's other images are never formed
        landmark_x = picked(landmarks[:, :, None, 0])
        landmark_y = picked(landmarks[:, :, None, 1])
        sign = None
        if flipped is not None:
            dtype = landmarks.dtype
            sign = picked(torch.where(flipped.to(torch.bool), -1.0, 1.0).to(dtype)[:, None, None])
        kept = index < held
        old_rows = index.clamp_max(max(held - 1, 0))
        merged = []
        for view, position in enumerate(views):
            offset_x = landmark_x - picked(position[:, None, :, 0])
            offset_y = landmark_y - picked(position[:, None, :, 1])
            if sign is not None:
                offset_x = offset_x * sign
            if held:
                old_x, old_y = self._offsets[view]
                offset_x = torch.where(kept, old_x.gather(0, old_rows), offset_x)
                offset_y = torch.where(kept, old_y.gather(0, old_rows), offset_y)
            merged.append((offset_x, offset_y))
        return merged

    def landmark_spreads(
        self, *, diagonal: float, signed: bool, min_images: int = 2, view: int = 0
    ) -> list[torch.Tensor | None]:
        """Per landmark ``[P]`` (signed) instability over the top-k images showing it, or
        ``None`` where fewer than ``min_images`` of the held images count."""
        out: list[torch.Tensor | None] = []
        offsets = self._offsets[view] if self._offsets else None
        for j in range(self.n_landmarks):  # a handful of landmarks; every pattern at once
            k = int(min(self.top_k, int(self.shown[j])))
            if k < min_images or offsets is None:
                out.append(None)
                continue
            held = torch.stack([offsets[0][:k, j], offsets[1][:k, j]], dim=-1)  # [k, P, 2]
            if signed:
                off = held / diagonal
                out.append(off.var(dim=0, unbiased=False).sum(dim=-1).sqrt())
            elif self._divide_after_norm:
                out.append((held.norm(dim=-1) / diagonal).std(dim=0, unbiased=False))
            else:
                out.append((held / diagonal).norm(dim=-1).std(dim=0, unbiased=False))
        return out

    def per_pattern(
        self, *, diagonal: float, signed: bool, min_images: int = 2, view: int = 0
    ) -> torch.Tensor:
        """``[P]`` mean over landmarks with enough images of the (signed) instability; NaN if
        no landmark counted."""
        rows = [
            row
            for row in self.landmark_spreads(
                diagonal=diagonal, signed=signed, min_images=min_images, view=view
            )
            if row is not None
        ]
        if not rows:
            return torch.full((self.n_patterns,), float("nan"))
        return torch.stack(rows).mean(dim=0)

    def ranking(self) -> torch.Tensor:
        """Patterns sorted by the mean of their top-k scores, best first."""
        if self.rank_scores is None:
            return torch.arange(self.n_patterns)
        return self.rank_scores.mean(dim=0).argsort(descending=True)

    def layer_mean(
        self,
        n_top: int,
        *,
        diagonal: float,
        signed: bool,
        order: torch.Tensor | None = None,
        view: int = 0,
    ) -> float:
        """Mean (signed) instability of the ``n_top`` best-ranked measurable patterns
        (``order`` overrides the ranking, e.g. to score a control on the same patterns)."""
        values = self.per_pattern(diagonal=diagonal, signed=signed, view=view)
        ranked = self.ranking() if order is None else order
        ranked = ranked[~values[ranked].isnan()][:n_top]
        return float(values[ranked].mean()) if ranked.numel() else float("nan")


class StreamedInstability(TopKAccumulator):
    """Location instability (unsigned, no mirror) of ``P`` patterns against ``J`` landmarks.

    The same numbers as :func:`queries.stability.pattern_instability` on all images at once:
    per landmark, each pattern's ``top_k`` best-scoring images among those showing the
    landmark; the std over them of ``|position - landmark| / diagonal``. Values keep the
    inputs' dtype; no ranking is kept.
    """

    def __init__(self, n_landmarks: int, top_k: int) -> None:
        super().__init__(0, n_landmarks, top_k, rank=False, dtype=None)
        self._divide_after_norm = True

    def per_landmark(self, *, diagonal: float, min_images: int = 2) -> list[torch.Tensor | None]:
        """Per landmark ``[P]`` instability, or ``None`` where fewer than ``min_images`` show it."""
        # counted over the images shown, not the k held (differs only when top_k < min_images)
        spreads = self.landmark_spreads(diagonal=diagonal, signed=False, min_images=1)
        return [
            None if int(self.shown[j]) < min_images else spread for j, spread in enumerate(spreads)
        ]

    def per_pattern(  # type: ignore[override]
        self, n_patterns: int, *, diagonal: float, min_images: int = 2
    ) -> torch.Tensor:
        """``[P]`` mean over the landmarks that count (NaN where none does)."""
        rows = [
            row
            for row in self.per_landmark(diagonal=diagonal, min_images=min_images)
            if row is not None
        ]
        if not rows:
            return torch.full((n_patterns,), float("nan"))
        return torch.stack(rows).mean(dim=0)


__all__ = ["RunningTopK", "StreamedInstability", "TopKAccumulator"]
