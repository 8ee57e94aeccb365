"""The web explain page speaks as the CLI does (issue 23): the same firing rule and wording,
the frame it read, and the domain check's one warning for an image outside the mining domain."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from miner.data.folder import load_dataset
from tests.helpers.photos import natural_photo
from tests.web.test_routes import _finish, page

if TYPE_CHECKING:
    from pathlib import Path

    from starlette.testclient import TestClient

    from tests.web.demo_store import WebStore


def _explained(client: TestClient, model: str, image: Path) -> str:
    response = client.post(
        "/explain",
        data={"model": model},
        files={"image": (image.name, image.read_bytes(), "image/png")},
        follow_redirects=False,
    )
    assert response.status_code == 303
    location = response.headers["location"]
    assert _finish(client, location)["state"] == "done"
    return page(client, location)


@pytest.mark.slow
def test_explain_page_uses_the_cli_rule_and_warns_on_a_photo_only(
    client: TestClient, web_store: WebStore
) -> None:
    bird = next(iter(load_dataset(web_store.data_dir).select(split="test", label="bird").records))
    shown = _explained(client, web_store.model_a, bird.path)
    assert "mean training score" not in shown
    assert re.search(
        r'id="fired-line">fired: \d+ patterns \(score &gt;= 1 x the pattern&#39;s reference, '
        r"the 0.9 quantile of its mining-image scores\)",
        shown,
    ), shown
    assert "no box: the whole image" in shown
    assert 'id="domain"' in shown and 'id="domain-warning"' not in shown
    photo = _explained(client, web_store.model_a, natural_photo("chelsea.png"))
    assert photo.count('id="domain-warning"') == 1
    assert "warning: this image is outside what the graph has seen" in photo
