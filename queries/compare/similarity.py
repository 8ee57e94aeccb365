"""How alike two patterns of two graphs are, judged by where and when they fire on shared images.

For one layer of model A and one layer of model B, both inferred on the same ``N`` images:

    w[n, p]   = S[n, p] if image n is among pattern p's top-k images by inference score S, else 0;
                each pattern's column is scaled to unit length (sum_n w[n, p]^2 = 1)
    sim(p, q) = sum_n wA[n, p] * wB[n, q] * exp(-|zA[n, p] - zB[n, q]|^2 / (2 t^2))

``z`` are positions in a frame both models share (the compare module uses object-box units:
original-image pixels relative to the box corner divided by the box diagonal) and ``t`` is the
positional tolerance in that unit. ``sim`` lies in ``[0, 1]``: it is the cosine overlap of the two
patterns' firing profiles over the images (co-firing), with each shared image discounted by how
far apart the two patterns sit on it (positional agreement). ``sim(p, p) = 1`` exactly.

The full ``P_A x P_B`` matrix is never held. Patterns are taken in blocks; within a block pair
only pairs of firings on the same image are visited (a sparse join on the image: about
``P_A * P_B * k^2 / N`` pairs in all, instead of ``P_A * P_B * N``), in runs of images that bound
the work memory; and only each pattern's best ``m`` candidates on the other side are kept. Two
VGG-16-sized graphs (61k patterns each) need ``O(block^2 + work + (P_A + P_B) * m)`` memory.

Matching (:func:`match_candidates`) is one-to-one: iterated mutual best. In each round every
still-unmatched pattern proposes its best still-unmatched candidate with ``sim >= threshold``; pairs
that propose each other are matched. Ties go to the lower pattern index on both sides, so a graph
compared with itself matches every pattern to itself even where two patterns are exact duplicates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from explgraph.core.errors import InputError
from explgraph.core.progress import NULL_PROGRESS, Progress


@dataclass(frozen=True)
class Candidates:
    """The best candidates of every pattern of A among B's patterns, and of B's among A's.

    Attributes:
        a_index: ``[P_A, m]`` long, B pattern indices best first (``-1``: no candidate; only
            patterns with a positive similarity are candidates).
        a_value: ``[P_A, m]`` their similarities (``-1`` where no candidate).
        b_index: ``[P_B, m]`` long, A pattern indices best first.
        b_value: ``[P_B, m]`` their similarities.
    """

    a_index: torch.Tensor
    a_value: torch.Tensor
    b_index: torch.Tensor
    b_value: torch.Tensor

    @property
    def best_a(self) -> torch.Tensor:
        """``[P_A]`` similarity of each A pattern's best counterpart in B (``-1``: none)."""
        return self.a_value[:, 0]

    @property
    def best_b(self) -> torch.Tensor:
        """``[P_B]`` similarity of each B pattern's best counterpart in A (``-1``: none)."""
        return self.b_value[:, 0]


def firing_weights(scores: torch.Tensor, top_k: int) -> torch.Tensor:
    """Each pattern's firing profile: its top-k scores, zero elsewhere, scaled to unit length.

    Args:
        scores: ``[N, P]`` inference scores (higher = fires more strongly); negative scores are
            treated as no firing.
        top_k: images per pattern that count as firings (at most ``N``).

    Returns:
        ``[N, P]`` float32 weights; a pattern with no positive score gets an all-zero column.
    """
    if scores.dim() != 2:
        raise InputError(f"scores must be [images, patterns], got shape {tuple(scores.shape)}")
    n_images = scores.shape[0]
    if top_k < 1:
        raise InputError(f"top_k must be at least 1, got {top_k}")
    k = min(top_k, n_images)
    values = scores.float().clamp_min(0.0)
    weights = torch.zeros_like(values)
    if n_images == 0 or values.shape[1] == 0:
        return weights
    top = values.topk(k, dim=0)
    return weights.scatter_(0, top.indices, unit_columns(top.values, top.indices))


def unit_columns(top_values: torch.Tensor, top_images: torch.Tensor) -> torch.Tensor:
    """``[k, P]`` top-k firing scores (clamped at 0) scaled so each column has unit length.

    ``top_images`` ``[k, P]``: the image of each value. The squares are summed in image order,
    as the norm of the full ``[N, P]`` column sums them (every other image weighs 0), so the
    in-memory path (:func:`firing_weights`) and the streamed one (:class:`TopFirings`) give the
    same floats as the full-column norm.
    """
    by_image = top_values.gather(0, top_images.argsort(dim=0))
    norm = by_image.norm(dim=0, keepdim=True)
    return top_values / norm.clamp_min(1e-30)


@dataclass(frozen=True)
class TopFirings:
    """Each pattern's firings kept as its top-k images only, ``O(k·P)`` whatever ``N``.

    What :func:`top_similarity_candidates` reads; built while streaming over images (see
    :class:`queries.streaming.RunningTopK`) instead of holding ``[N, P]`` weights.

    Attributes:
        n_images: ``N``, images the top-k were taken over.
        image: ``[k, P]`` long, the images (``0 .. N-1``).
        weight: ``[k, P]`` float32 firing weights (:func:`unit_columns`; 0: no firing).
        xy: ``[k, P, 2]`` positions there.
    """

    n_images: int
    image: torch.Tensor
    weight: torch.Tensor
    xy: torch.Tensor

    @property
    def num_patterns(self) -> int:
        """``P``."""
        return int(self.weight.shape[1])

    @classmethod
    def from_top(
        cls, n_images: int, top_scores: torch.Tensor, image: torch.Tensor, xy: torch.Tensor
    ) -> TopFirings:
        """From each pattern's top-k scores ``[k, P]`` (any sign), their images and positions."""
        weight = unit_columns(top_scores.float().clamp_min(0.0), image)
        return cls(n_images=n_images, image=image.long(), weight=weight, xy=xy.float())


def _merge(
    values: torch.Tensor, index: torch.Tensor, block: torch.Tensor, offset: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the best ``m`` of the old candidates and the block's columns ``offset + j`` (those
    with a positive similarity).

    Ties go to the lower index: candidates are ordered by index, then stably by value. (Only
    more than ``m`` exactly tied columns could push the lowest of them out of the block's top-m.)
    """
    m = values.shape[1]
    top = block.topk(min(m, block.shape[1]), dim=1)
    # A pattern that never fires with another is no candidate of it (and zeros tie by the many).
    none = top.values <= 0
    new_values = top.values.masked_fill(none, -1.0)
    new_index = (top.indices + offset).masked_fill(none, -1)
    all_values = torch.cat([values, new_values], dim=1)
    all_index = torch.cat([index, new_index], dim=1)
    # -1 (no candidate) goes last: it always comes with the value -1, below any similarity.
    by_index = torch.where(all_index < 0, torch.iinfo(torch.long).max, all_index).argsort(dim=1)
    all_values, all_index = all_values.gather(1, by_index), all_index.gather(1, by_index)
    order = all_values.sort(dim=1, descending=True, stable=True).indices[:, :m]
    return all_values.gather(1, order), all_index.gather(1, order)


@dataclass(frozen=True)
class _Firings:
    """The firings of one block of ``size`` patterns as a list sorted by image, then pattern.

    ``image``, ``pattern`` (index within the block), ``weight``, ``xy`` ``[F, 2]``; ``start`` and
    ``count`` ``[N]``: where each image's firings begin in the list and how many there are.
    """

    image: torch.Tensor
    pattern: torch.Tensor
    weight: torch.Tensor
    xy: torch.Tensor
    start: torch.Tensor
    count: torch.Tensor
    size: int

    def dense(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The block as ``[N, size]`` weights and ``[N, size, 2]`` positions (0 off firings:
        they only ever meet a weight of 0)."""
        n_images = int(self.count.numel())
        weight = torch.zeros(n_images, self.size, device=self.weight.device)
        xy = torch.zeros(n_images, self.size, 2, device=self.weight.device)
        weight[self.image, self.pattern] = self.weight
        xy[self.image, self.pattern] = self.xy
        return weight, xy


def _listed(
    image: torch.Tensor,
    pattern: torch.Tensor,
    weight: torch.Tensor,
    xy: torch.Tensor,
    n_images: int,
    size: int,
    device: torch.device,
) -> _Firings:
    """Firings already sorted by image (then pattern) as a :class:`_Firings` on ``device``."""
    count = torch.bincount(image, minlength=n_images)
    return _Firings(
        image=image.to(device),
        pattern=pattern.to(device),
        weight=weight.to(device, torch.float32),
        xy=xy.to(device, torch.float32),
        start=(count.cumsum(0) - count).to(device),
        count=count.to(device),
        size=size,
    )


def _firings(weights: torch.Tensor, positions: torch.Tensor, device: torch.device) -> _Firings:
    """Firing list of a dense block: ``weights`` ``[N, b]``, ``positions`` ``[N, b, 2]``."""
    image, pattern = (weights > 0).nonzero(as_tuple=True)  # row-major: sorted by image
    return _listed(
        image,
        pattern,
        weights[image, pattern],
        positions[image, pattern],
        weights.shape[0],
        weights.shape[1],
        device,
    )


def _top_firings(top: TopFirings, b0: int, b1: int, device: torch.device) -> _Firings:
    """Firing list of patterns ``b0:b1`` of ``top``, in the order :func:`_firings` gives."""
    weight = top.weight[:, b0:b1]
    fired = weight > 0
    pattern = torch.arange(b1 - b0).expand_as(weight)[fired]
    image = top.image[:, b0:b1][fired]
    order = torch.argsort(image * (b1 - b0) + pattern)  # unique keys: image, then pattern
    return _listed(
        image[order],
        pattern[order],
        weight[fired][order],
        top.xy[:, b0:b1][fired][order],
        top.n_images,
        b1 - b0,
        device,
    )


def _image_join_similarity(
    a: _Firings, b: _Firings, size_a: int, size_b: int, inv_two_t2: float, work: int
) -> torch.Tensor:
    """``[size_a, size_b]`` similarities of one block pair by a sparse join on the image.

    Only pairs of firings on the same image are visited, about ``size_a * size_b * k^2 / N`` of
    them instead of ``size_a * size_b * N``. Images are taken in runs; within a run each image's
    firings of A and of B are padded to the run's largest count, so every firing pair of an image
    is one cell of a dense ``[images, fa, fb]`` product (streaming arithmetic, no per-pair index
    gathers). Padding cells carry weight 0 and add exactly 0. Each similarity is summed over the
    images in ascending order, the same order as :func:`_pairwise_similarity`, so both give the
    same floats. Runs hold at most ``work`` padded pairs (one image may exceed it).
    """
    device = a.image.device
    out = torch.zeros(size_a * size_b, device=device)
    both = ((a.count > 0) & (b.count > 0)).nonzero().squeeze(1)
    if both.numel() == 0:
        return out.reshape(size_a, size_b)
    # int32 flat indices where they fit: half the memory traffic of the widest temporary
    index_dtype = torch.int32 if size_a * size_b < 2**31 else torch.long
    counts_a = a.count[both].cpu().tolist()
    counts_b = b.count[both].cpu().tolist()
    first, n_images = 0, len(counts_a)
    while first < n_images:
        # as many images as keep the padded run within ``work`` pairs (at least one); a loop
        # over images, not pairs: a few hundred steps per block pair
        last, peak_a, peak_b = first, 0, 0
        while last < n_images:
            wider_a, wider_b = max(peak_a, counts_a[last]), max(peak_b, counts_b[last])
            if last > first and (last - first + 1) * wider_a * wider_b > work:
                break
            last, peak_a, peak_b = last + 1, wider_a, wider_b
        images = both[first:last]
        fa = _padded(a, images, peak_a, size_b, index_dtype)
        fb = _padded(b, images, peak_b, 1, index_dtype)
        d2 = (fa.x[:, :, None] - fb.x[:, None, :]).square_()
        d2.add_((fa.y[:, :, None] - fb.y[:, None, :]).square_())
        value = d2.mul_(-inv_two_t2).exp_().mul_(fa.weight[:, :, None]).mul_(fb.weight[:, None, :])
        index = fa.pattern[:, :, None] + fb.pattern[:, None, :]  # row offset + column
        out.index_add_(0, index.reshape(-1), value.reshape(-1))
        first = last
    return out.reshape(size_a, size_b)


@dataclass(frozen=True)
class _PaddedRun:
    """Firings of a run of images, ``[images, width]``: padding has weight 0 and pattern 0
    (``pattern`` is already scaled to a flat index offset)."""

    x: torch.Tensor
    y: torch.Tensor
    weight: torch.Tensor
    pattern: torch.Tensor


def _padded(
    fired: _Firings, images: torch.Tensor, width: int, row: int, index_dtype: torch.dtype
) -> _PaddedRun:
    """The firings of ``images`` (ascending), each image's padded to ``width`` slots; their
    pattern index is multiplied by ``row`` (A: the flat row offset; B: 1)."""
    slot = torch.arange(width, device=images.device)
    present = slot[None, :] < fired.count[images][:, None]  # [r, width]
    at = (fired.start[images][:, None] + slot[None, :]).masked_fill_(~present, 0)
    xy = fired.xy[at]  # [r, width, 2]
    return _PaddedRun(
        x=xy[..., 0],
        y=xy[..., 1],
        weight=fired.weight[at].masked_fill_(~present, 0.0),
        pattern=(fired.pattern[at].masked_fill_(~present, 0) * row).to(index_dtype),
    )


def _pairwise_similarity(
    a: _Firings, b: _Firings, size_a: int, size_b: int, inv_two_t2: float, work: int
) -> torch.Tensor:
    """The former sparse join, pair by pair with index gathers: the reference that
    :func:`_image_join_similarity` reproduces exactly (kept for the test that asserts it).

    A's firings are taken pattern by pattern (images ascending within a pattern, so every
    similarity is summed in the same order as image by image); runs hold at most ``work``
    firing pairs (a single firing may exceed it) to bound memory.
    """
    device = a.image.device
    out = torch.zeros(size_a * size_b, device=device)
    order = torch.argsort(a.pattern, stable=True)  # by pattern; the list is sorted by image
    per_firing = b.count[a.image[order]]  # B firings on the image of each A firing
    ends = per_firing.cumsum(0).cpu()
    n_firings = int(order.numel())
    first = 0
    while first < n_firings:
        done = int(ends[first - 1]) if first else 0
        # at least one firing per run, then as many as stay within ``work`` pairs
        last = min(
            n_firings, max(first + 1, int(torch.searchsorted(ends, done + work, right=True)))
        )
        if int(ends[last - 1]) > done:
            repeat = per_firing[first:last]
            left = torch.repeat_interleave(order[first:last], repeat)
            group = torch.repeat_interleave(repeat.cumsum(0) - repeat, repeat)
            right = b.start[a.image[left]] + torch.arange(left.numel(), device=device) - group
            # Differences, not |a|^2 + |b|^2 - 2ab: a pattern compared with itself must sit at
            # distance 0 exactly, so its self-similarity is 1 and exact duplicates stay tied.
            d2 = (a.xy[left] - b.xy[right]).square_().sum(dim=1)
            value = d2.mul_(-inv_two_t2).exp_().mul_(a.weight[left]).mul_(b.weight[right])
            out.index_add_(0, a.pattern[left] * size_b + b.pattern[right], value)
        first = last
    return out.reshape(size_a, size_b)


def _dense_similarity(a: _Firings, b: _Firings, inv_two_t2: float, work: int) -> torch.Tensor:
    """``[size_a, size_b]`` similarities of one block pair, every pattern pair on every image
    where both blocks fire, in image chunks of at most ``work`` pair-images."""
    wa, a_xy = a.dense()
    wb, b_xy = b.dense()
    active = ((wa > 0).any(dim=1) & (wb > 0).any(dim=1)).nonzero().squeeze(1)
    out = torch.zeros(wa.shape[1], wb.shape[1], device=wa.device)
    chunk = max(1, work // max(1, wa.shape[1] * wb.shape[1]))
    for start in range(0, active.numel(), chunk):
        images = active[start : start + chunk]
        a_w, b_w = wa[images].T, wb[images]  # [ba, c], [c, bb]
        a_z = a_xy[images].permute(2, 1, 0)  # [2, ba, c]
        b_z = b_xy[images].permute(2, 0, 1)  # [2, c, bb]
        d2 = (a_z[0][:, :, None] - b_z[0][None]).square_()  # differences: see _pairwise_similarity
        d2.add_((a_z[1][:, :, None] - b_z[1][None]).square_())  # [ba, c, bb]
        kernel = d2.mul_(-inv_two_t2).exp_().mul_(b_w[None])
        out += torch.bmm(a_w[:, None, :], kernel).squeeze(1)
    return out


# A firing pair of the sparse join costs about as much as this many dense pair-images (measured
# on a CPU: gathers and a scatter-add per pair against streaming arithmetic).
_SPARSE_COST = 10


def _block_similarity(a: _Firings, b: _Firings, inv_two_t2: float, work: int) -> torch.Tensor:
    """``[size_a, size_b]`` similarities of one block pair, by whichever kernel is cheaper.

    Dense costs ``size_a * size_b`` per image both blocks fire on; the sparse join
    ``count_a * count_b`` firing pairs per image. With few images per pattern among many
    (``k << N``) the join wins by far; on small image sets dense arithmetic does.
    """
    size_a, size_b = a.size, b.size
    both = (a.count > 0) & (b.count > 0)
    dense_cost = int(both.sum()) * size_a * size_b
    sparse_cost = _SPARSE_COST * int((a.count * b.count).sum())
    if dense_cost <= sparse_cost:
        return _dense_similarity(a, b, inv_two_t2, work)
    return _image_join_similarity(a, b, size_a, size_b, inv_two_t2, work)


def similarity_candidates(
    weights_a: torch.Tensor,
    positions_a: torch.Tensor,
    weights_b: torch.Tensor,
    positions_b: torch.Tensor,
    *,
    tolerance: float,
    candidates: int = 8,
    block: int = 2048,
    work_elements: int = 1 << 18,
    device: str | torch.device = "cpu",
    progress: Progress = NULL_PROGRESS,
    description: str = "matching patterns",
) -> Candidates:
    """Every pattern's best ``candidates`` counterparts on the other side, blockwise.

    Args:
        weights_a: ``[N, P_A]`` firing weights of A (:func:`firing_weights`).
        positions_a: ``[N, P_A, 2]`` positions of A's patterns in the shared frame.
        weights_b: ``[N, P_B]`` firing weights of B on the same images, same order.
        positions_b: ``[N, P_B, 2]`` positions of B's patterns.
        tolerance: ``t``, the positional tolerance in the unit of the positions.
        candidates: ``m``, candidates kept per pattern.
        block: patterns per side in one block (a block pair's similarities are held densely).
        work_elements: firing pairs (sparse join, about 60 bytes each) or pattern-pair-images
            (dense, about 8 bytes each) per step; images are taken in runs that stay under it.
        device: where to compute; inputs stay where they are and blocks are copied over.
        progress: one bar over the block pairs.
        description: the bar's label.

    Raises:
        InputError: shapes that do not fit together, or a tolerance that is not positive.
    """
    n_images, p_a = weights_a.shape
    p_b = weights_b.shape[1]
    if weights_b.shape[0] != n_images:
        raise InputError(
            f"A holds {n_images} images and B {weights_b.shape[0]}: infer both on the same images"
        )
    if positions_a.shape != (n_images, p_a, 2) or positions_b.shape != (n_images, p_b, 2):
        raise InputError("positions must be [images, patterns, 2] like the weights")
    dev = torch.device(device)
    return _candidates(
        lambda a0, a1: _firings(weights_a[:, a0:a1], positions_a[:, a0:a1], dev),
        lambda b0, b1: _firings(weights_b[:, b0:b1], positions_b[:, b0:b1], dev),
        p_a,
        p_b,
        tolerance=tolerance,
        candidates=candidates,
        block=block,
        work_elements=work_elements,
        progress=progress,
        description=description,
    )


def top_similarity_candidates(
    top_a: TopFirings,
    top_b: TopFirings,
    *,
    tolerance: float,
    candidates: int = 8,
    block: int = 2048,
    work_elements: int = 1 << 18,
    device: str | torch.device = "cpu",
    progress: Progress = NULL_PROGRESS,
    description: str = "matching patterns",
) -> Candidates:
    """:func:`similarity_candidates` from each pattern's top-k firings only (streamed input).

    Gives the same floats as :func:`similarity_candidates` on the dense weights that
    :func:`firing_weights` makes from the same scores: the firing lists are identical.

    Raises:
        InputError: the two sides cover different image counts, or settings out of range.
    """
    if top_a.n_images != top_b.n_images:
        raise InputError(
            f"A holds {top_a.n_images} images and B {top_b.n_images}: infer both on the same images"
        )
    dev = torch.device(device)
    return _candidates(
        lambda a0, a1: _top_firings(top_a, a0, a1, dev),
        lambda b0, b1: _top_firings(top_b, b0, b1, dev),
        top_a.num_patterns,
        top_b.num_patterns,
        tolerance=tolerance,
        candidates=candidates,
        block=block,
        work_elements=work_elements,
        progress=progress,
        description=description,
    )


def _candidates(
    block_a: Callable[[int, int], _Firings],
    block_b: Callable[[int, int], _Firings],
    p_a: int,
    p_b: int,
    *,
    tolerance: float,
    candidates: int,
    block: int,
    work_elements: int,
    progress: Progress,
    description: str,
) -> Candidates:
    """The block loop of both entry points: ``block_a(a0, a1)`` gives A's firings of patterns
    ``a0:a1`` (likewise B), each block pair's similarities are merged into the candidates."""
    if tolerance <= 0:
        raise InputError(f"tolerance must be positive, got {tolerance}")
    if candidates < 1 or block < 1 or work_elements < 1:
        raise InputError("candidates, block and work_elements must be at least 1")
    m = candidates
    a_value = torch.full((p_a, m), -1.0)
    a_index = torch.full((p_a, m), -1, dtype=torch.long)
    b_value = torch.full((p_b, m), -1.0)
    b_index = torch.full((p_b, m), -1, dtype=torch.long)
    inv_two_t2 = 1.0 / (2.0 * tolerance * tolerance)
    b_blocks = [
        (b0, b1, block_b(b0, b1))
        for b0, b1 in ((b0, min(b0 + block, p_b)) for b0 in range(0, p_b, block))
    ]
    a_starts = range(0, p_a, block)
    with progress.task(description, len(a_starts) * len(b_blocks)) as bar:
        for a0 in a_starts:
            a1 = min(a0 + block, p_a)
            fired_a = block_a(a0, a1)
            for b0, b1, fired_b in b_blocks:
                sim = _block_similarity(fired_a, fired_b, inv_two_t2, work_elements).cpu()
                a_value[a0:a1], a_index[a0:a1] = _merge(a_value[a0:a1], a_index[a0:a1], sim, b0)
                # topk along contiguous rows: twice as fast as on the transposed view
                b_value[b0:b1], b_index[b0:b1] = _merge(
                    b_value[b0:b1], b_index[b0:b1], sim.T.contiguous(), a0
                )
                bar.advance()
    return Candidates(a_index, a_value, b_index, b_value)


def _proposals(
    index: torch.Tensor,
    value: torch.Tensor,
    free_self: torch.Tensor,
    free_other: torch.Tensor,
    threshold: float,
) -> torch.Tensor:
    """Each free pattern's best free candidate with ``sim >= threshold`` (``-1``: none)."""
    valid = (index >= 0) & (value >= threshold)
    valid &= free_other[index.clamp_min(0)]
    has = valid.any(dim=1) & free_self
    first = valid.to(torch.int8).argmax(dim=1)  # first True: the best, ties at the lower index
    picked = index.gather(1, first[:, None]).squeeze(1)
    return torch.where(has, picked, torch.full_like(picked, -1))


def match_candidates(
    found: Candidates, threshold: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One-to-one matches by iterated mutual best (see the module docstring).

    Args:
        found: the candidate lists of :func:`similarity_candidates`.
        threshold: the least similarity of a match.

    Returns:
        ``a``, ``b`` (long, matched pattern indices, sorted by ``a``) and their similarities.
    """
    p_a, p_b = found.a_index.shape[0], found.b_index.shape[0]
    free_a = torch.ones(p_a, dtype=torch.bool)
    free_b = torch.ones(p_b, dtype=torch.bool)
    partner_a = torch.full((p_a,), -1, dtype=torch.long)
    while True:
        prop_a = _proposals(found.a_index, found.a_value, free_a, free_b, threshold)
        prop_b = _proposals(found.b_index, found.b_value, free_b, free_a, threshold)
        proposing = (prop_a >= 0).nonzero().squeeze(1)
        mutual = proposing[prop_b[prop_a[proposing]] == proposing]
        if mutual.numel() == 0:
            break
        partner_a[mutual] = prop_a[mutual]
        free_a[mutual] = False
        free_b[prop_a[mutual]] = False
    a = (partner_a >= 0).nonzero().squeeze(1)
    b = partner_a[a]
    slot = (found.a_index[a] == b[:, None]).to(torch.int8).argmax(dim=1)
    similarity = found.a_value[a].gather(1, slot[:, None]).squeeze(1)
    return a, b, similarity


__all__ = ["Candidates", "firing_weights", "match_candidates", "similarity_candidates"]
