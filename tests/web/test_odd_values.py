"""Pages over stores that hold what no page expects, on the real server (``explgraph serve``):
a model id with ``/`` (``mine --model-id`` takes one) is reachable, and a stored value changed
with ``--write`` gives the page with a notice, never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.helpers.mined import MinedToy
from tests.helpers.stores import open_store
from tests.web.live import LiveExplorer, live_explorer

SLASHED_ID = "team/toy-bird"


@dataclass(frozen=True)
class OddStore:
    """The mined toy plus a model whose id holds a ``/``; one pattern's layer changed."""

    spec: str
    cache_dir: Path
    slashed_layer: str
    slashed_pattern: str
    changed_pattern: str  # its ``layer`` names no layer of its model
    changed_image: str  # an image the changed pattern fires on


@pytest.fixture(scope="module")
def odd_store(mined_toy: MinedToy, tmp_path_factory: pytest.TempPathFactory) -> OddStore:
    spec = mined_toy.copy_store(tmp_path_factory.mktemp("odd") / "store")
    mined_toy.mine_into(spec, model_id=SLASHED_ID)
    with open_store(spec) as store:
        slashed = store.query(
            "MATCH (p:Pattern) WHERE p.model_id = $m RETURN p.pattern_id AS id, "
            "p.layer AS layer ORDER BY id LIMIT 1",
            {"m": SLASHED_ID},
        )[0]
        fired = store.query(
            "MATCH (i:Image)-[:FIRES]->(p:Pattern) WHERE p.model_id = $m "
            "RETURN p.pattern_id AS pid, i.image_id AS iid ORDER BY pid, iid LIMIT 1",
            {"m": mined_toy.model_id},
        )[0]
        store.query(
            "MATCH (p:Pattern {pattern_id: $p}) SET p.layer = 'no_such_layer'",
            {"p": fired["pid"]},
            write=True,
        )
    return OddStore(
        spec, mined_toy.cache_dir, slashed["layer"], slashed["id"], fired["pid"], fired["iid"]
    )


@pytest.fixture(scope="module")
def live(odd_store: OddStore) -> Iterator[LiveExplorer]:
    with live_explorer(odd_store.spec, odd_store.cache_dir) as server:
        yield server


def test_a_model_id_with_a_slash_is_listed_and_reachable(
    live: LiveExplorer, odd_store: OddStore
) -> None:
    address = "/model/" + quote(SLASHED_ID, safe="")
    models = live.get("/")
    assert f'href="{address}"' in models.body  # linked with its / encoded
    model = live.get(address)
    assert model.status == 200, model.body[-500:]
    assert f"<h1>{SLASHED_ID} " in model.body  # the model's own page, not another's
    layer = live.get(f"{address}/layer/{quote(odd_store.slashed_layer, safe='')}")
    assert layer.status == 200, layer.body[-500:]
    assert live.get(f"{address}/layer/{odd_store.slashed_layer}/filter/0").status == 200
    assert live.get(f"{address}/parts").status == 200
    pattern = live.get("/pattern/" + quote(odd_store.slashed_pattern, safe="/"))
    assert pattern.status == 200, pattern.body[-500:]
    assert odd_store.slashed_pattern in pattern.body
    # what the router sees is still checked: an encoded / cannot climb out of /static
    assert live.get("/static/..%2Fapp.py").status == 404


def test_a_pattern_whose_layer_was_changed_renders_with_a_notice(
    live: LiveExplorer, odd_store: OddStore
) -> None:
    page = live.get("/pattern/" + quote(odd_store.changed_pattern, safe="/"))
    assert page.status == 200, page.body[-500:]
    notice = page.body.split('id="problems"', 1)[1].split("</div>", 1)[0]
    assert "its layer &#39;no_such_layer&#39; is not a layer of model" in notice
    assert odd_store.changed_pattern in page.body  # the rest of the page is drawn
    patch = live.get(
        f"/patch.png?pattern={quote(odd_store.changed_pattern, safe='')}"
        f"&image={quote(odd_store.changed_image, safe='')}"
    )
    assert patch.status == 404, patch.body[-500:]  # no picture, said in one line; not a 500
    assert "\n" not in patch.body.strip()
    assert live.get("/").status == 200
