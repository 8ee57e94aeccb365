"""Models whose mining needs far more memory than their size suggests (for the memory estimate:
``bench/memory_estimate.py`` measures it, ``tests/faults/test_bad_inputs.py`` sees it refused).

``two_convs`` is the model of issue 12 that grew to 20 GB under ``explgraph mine``: two 3x3
convolutions without pooling at the default 224 px input, so both selected layers keep a 224x224
map and every filter gets ``ceil(224²·0.1)`` = 5,018 patterns.
"""

from __future__ import annotations

import torch
from torch import nn


class TwoConvs(nn.Module):
    """conv 3x3 (3→8) p1, ReLU, conv 3x3 (8→16) p1, ReLU, global average pool, linear."""

    def __init__(self, num_classes: int = 2) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu2(self.conv2(self.relu1(self.conv1(x))))
        return self.fc(x.mean(dim=(2, 3)))


def two_convs() -> nn.Module:
    """A seeded :class:`TwoConvs` (``bench.memory_models:two_convs`` on the CLI)."""
    torch.manual_seed(0)
    return TwoConvs()
