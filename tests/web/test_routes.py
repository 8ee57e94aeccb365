"""Every route of the explorer on the test store: status, content, escaping, and 4xx answers."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest
from PIL import Image
from starlette.applications import Starlette
from starlette.testclient import TestClient

from tests.web.demo_store import (
    COMPARED_LAYERS,
    EXPLAINED_LAYER,
    EXPLAINER_PARTS,
    HOSTILE_PART,
    PART,
    WebStore,
)

ESCAPED_PART = "&lt;script&gt;alert(&#34;part&#34;)&lt;/script&gt;"


def rows(app: Starlette, cypher: str, **params: Any) -> list[dict[str, Any]]:
    """Ask the app's own read-only handle (one handle per process for the embedded engine)."""
    return app.state.explorer.store.query(cypher, params)


def one(app: Starlette, cypher: str, **params: Any) -> Any:
    found = rows(app, cypher, **params)
    assert found, cypher
    return next(iter(found[0].values()))


@pytest.fixture(scope="module")
def used_pattern(web_app: Starlette, web_store: WebStore) -> str:
    """A pattern of a lower layer that both parts' AOGs use and that has stored firings (the
    two AOGs share their shots, not their templates: a part's radius is sized by the distance
    to the nearest other annotated part, and the hostile name's nearest is the head itself)."""
    return str(
        one(
            web_app,
            "MATCH (t:Template)-[:USES]->(p:Pattern) WHERE t.model_id = $m AND t.part = $part "
            "MATCH (h:Template)-[:USES]->(p) WHERE h.part = $hostile "
            "MATCH (p)-[:PARENT]->(:Pattern) MATCH (:Image)-[:FIRES]->(p) "
            "RETURN DISTINCT p.pattern_id AS id ORDER BY id LIMIT 1",
            m=web_store.model_a,
            part=PART,
            hostile=HOSTILE_PART,
        )
    )


@pytest.fixture(scope="module")
def matched_pattern(web_app: Starlette, web_store: WebStore) -> tuple[str, str]:
    found = rows(
        web_app,
        "MATCH (p:Pattern)-[:MATCHES]->(q:Pattern) WHERE p.model_id = $a "
        "RETURN p.pattern_id AS a, q.pattern_id AS b ORDER BY a LIMIT 1",
        a=web_store.model_a,
    )
    return found[0]["a"], found[0]["b"]


def page(client: TestClient, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, (url, response.text[:500])
    if response.headers["content-type"].startswith("text/html"):
        assert "<script>alert" not in response.text  # the hostile part name is always escaped
        assert "Traceback" not in response.text
    return response.text


def links(html: str, prefix: str) -> list[str]:
    return re.findall(rf'href="({re.escape(prefix)}[^"]*)"', html)


def test_models_page_lists_models_layers_and_explained_share(
    client: TestClient, web_app: Starlette, web_store: WebStore
) -> None:
    html = page(client, "/")
    for model in (web_store.model_a, web_store.model_b):
        assert f'href="/model/{model}"' in html
    names = [
        r["name"]
        for r in rows(
            web_app,
            "MATCH (l:Layer) WHERE l.model_id = $m RETURN l.name AS name",
            m=web_store.model_a,
        )
    ]
    for name in names:
        assert f'href="/model/{web_store.model_a}/layer/{name}"' in html
    share = one(
        web_app,
        "MATCH (l:Layer) WHERE l.model_id = $m AND l.name = $n RETURN l.explained_share AS s",
        m=web_store.model_a,
        n=names[0],
    )
    assert f"{100 * share:.1f}%" in html
    assert "complete" in html


def test_model_page_shows_layers_parts_and_comparisons(
    client: TestClient, web_store: WebStore
) -> None:
    html = page(client, f"/model/{web_store.model_a}")
    assert "block3_conv1" in html and "block4_conv2" in html
    assert ESCAPED_PART in html and PART in html
    assert f'href="/compare/{web_store.model_a}/{web_store.model_b}"' in html


def _explainer_rows(html: str) -> list[tuple[str, list[str]]]:
    """The rows of the model page's explainer table: (track, its cells without markup)."""
    table = html.split('<table id="explainers">', 1)[1].split("</table>", 1)[0]
    found = re.findall(r'<tr class="explainer-(\w+)">(.*?)</tr>', table, re.S)
    return [
        (kind, [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", cell)).strip() for cell in cells])
        for kind, row in found
        for cells in [re.findall(r"<td>(.*?)</td>", row, re.S)]
    ]


def test_model_page_shows_its_explainer_and_the_control(
    client: TestClient, web_store: WebStore
) -> None:
    html = page(client, f"/model/{web_store.model_a}")
    assert f'href="/model/{web_store.model_a}/layer/{EXPLAINED_LAYER}"' in html
    purity = [value for _, value in EXPLAINER_PARTS]
    got = _explainer_rows(html)
    assert [kind for kind, _ in got] == ["interpretable", "control"]
    (_, mine), (_, control) = got
    # tests.helpers.explainers: the control's p is 0.7, its filters' purity halved
    assert mine[:6] == [EXPLAINED_LAYER, "interpretable", "0.8", "0.8", "0.05", "99.0%"]
    assert mine[6:9] == ["90.0% → 87.5%", f"{np.mean(purity):.3g}", "0.25"]
    assert control[:6] == ["", "control", "0.7", "0.7", "0.075", "97.5%"]
    assert control[7] == f"{np.mean(purity) / 2:.3g}"
    # parts: most filters first, 'none' left out, the hostile name escaped
    assert mine[9] == f"{PART} : f0, f2 · purity 0.7 {ESCAPED_PART} : f1 · purity 0.6"
    assert control[9] == f"{PART} : f0, f2 · purity 0.35 {ESCAPED_PART} : f1 · purity 0.3"


def test_a_model_without_explainers_says_so(client: TestClient, web_store: WebStore) -> None:
    html = page(client, f"/model/{web_store.model_b}")
    assert '<table id="explainers">' not in html
    assert "No explainer network" in html


def _filter_rows(html: str) -> list[tuple[int, int, float]]:
    body = html.split('<table id="filters">', 1)[1]
    found = re.findall(r">f(\d+)</a></td>\s*<td>(\d+)</td><td>([^<]+)</td>", body)
    return [(int(f), int(n), float(best)) for f, n, best in found]


def _patterns_per_filter(
    app: Starlette, model: str, layer: str, also: str | None = None
) -> dict[int, int]:
    """Filter index -> its number of patterns (those matching ``also``), from the store."""
    where = " AND ".join(["p.model_id = $m", "p.layer = $l", *([also] if also else [])])
    cypher = f"MATCH (p:Pattern) WHERE {where} RETURN p.filter AS f, count(p) AS n"
    return {r["f"]: r["n"] for r in rows(app, cypher, m=model, l=layer)}


def test_layer_page_sorts_filters(
    client: TestClient, web_app: Starlette, web_store: WebStore
) -> None:
    url = f"/model/{web_store.model_a}/layer/block3_conv1"
    by_count = _filter_rows(page(client, url + "?sort=patterns"))
    counts = _patterns_per_filter(web_app, web_store.model_a, "block3_conv1")
    assert {f: n for f, n, _ in by_count} == counts
    assert [n for _, n, _ in by_count] == sorted(counts.values(), reverse=True)
    by_score = _filter_rows(page(client, url + "?sort=score"))
    assert [b for _, _, b in by_score] == sorted((b for _, _, b in by_score), reverse=True)
    by_index = _filter_rows(page(client, url + "?sort=filter"))
    assert [f for f, _, _ in by_index] == sorted(counts)
    flagged = _patterns_per_filter(
        web_app, web_store.model_a, "block3_conv1", also="p.diagnosis <> 'ok'"
    )
    assert flagged, "the test store's diagnosis flags some patterns"
    by_flags = re.findall(
        r">f(\d+)</a></td>\s*<td>\d+</td><td>[^<]+</td><td>[^<]+</td><td>(\d+)</td>",
        page(client, url + "?sort=diagnosis"),
    )
    assert [int(n) for _, n in by_flags] == sorted(
        (flagged.get(f, 0) for f in counts), reverse=True
    )
    assert {int(f): int(n) for f, n in by_flags if int(n)} == flagged


def test_filter_page_lists_its_patterns(client: TestClient, web_store: WebStore) -> None:
    html = page(client, f"/model/{web_store.model_a}/layer/block3_conv1/filter/3")
    assert links(html, f"/pattern/{web_store.model_a}/block3_conv1/f3/p")


def test_pattern_page(client: TestClient, web_app: Starlette, used_pattern: str) -> None:
    html = page(client, "/pattern/" + used_pattern)
    parents = rows(
        web_app,
        "MATCH (p:Pattern {pattern_id: $id})-[r:PARENT]->(o:Pattern) "
        "RETURN o.pattern_id AS id ORDER BY r.weight DESC",
        id=used_pattern,
    )
    assert parents
    # the neighbourhood view links to the strongest parents, the tables to all of them (<= 50)
    view = html.split('id="neighbourhood"', 1)[1].split("</svg>", 1)[0]
    assert f'href="/pattern/{parents[0]["id"]}"' in view
    table = html.split('id="parents"', 1)[1].split("</table>", 1)[0]
    assert len(links(table, "/pattern/")) == min(len(parents), 50)
    patches = re.findall(r'src="(/patch\.png\?[^"]+)"', html)
    assert 0 < len(patches) <= 12
    assert ESCAPED_PART in html  # the parts that use it, escaped
    assert "prior position" in html


def test_patch_is_a_receptive_field_crop(client: TestClient, used_pattern: str) -> None:
    html = page(client, "/pattern/" + used_pattern)
    first = re.findall(r'src="(/patch\.png\?[^"]+)"', html)[0].replace("&amp;", "&")
    response = client.get(first)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    tile = np.asarray(Image.open(io.BytesIO(response.content)))
    assert tile.shape[:2] == (96, 96)
    assert tile.std() > 1.0  # real pixels, not a blank tile


def test_pattern_matches_link_both_ways(
    client: TestClient, matched_pattern: tuple[str, str]
) -> None:
    a, b = matched_pattern
    assert f'href="/pattern/{b}"' in page(client, "/pattern/" + a)
    assert f'href="/pattern/{a}"' in page(client, "/pattern/" + b)


def test_image_page_and_png(client: TestClient, web_app: Starlette, used_pattern: str) -> None:
    image_id = one(
        web_app,
        "MATCH (i:Image)-[f:FIRES]->(p:Pattern {pattern_id: $id}) "
        "RETURN i.image_id AS id ORDER BY f.score DESC LIMIT 1",
        id=used_pattern,
    )
    html = page(client, f"/image/{image_id}")
    assert f'href="/pattern/{used_pattern}"' in html or links(html, "/pattern/")
    assert f'name="image_id" value="{image_id}"' in html
    picture = client.get(f"/img/{image_id}.png")
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
    width = one(web_app, "MATCH (i:Image {image_id: $id}) RETURN i.width AS w", id=image_id)
    assert Image.open(io.BytesIO(picture.content)).width == width


def test_parts_page_shows_every_aog_escaped(
    client: TestClient, web_app: Starlette, web_store: WebStore
) -> None:
    html = page(client, f"/model/{web_store.model_a}/parts")
    names = re.findall(r'<h2 class="part-name">(.*?)</h2>', html)
    assert names == sorted([ESCAPED_PART, PART])  # '<' sorts before 'h'
    uses = rows(
        web_app,
        "MATCH (t:Template)-[:USES]->(p:Pattern) WHERE t.model_id = $m "
        "AND t.part = $p AND t.idx = 0 RETURN p.pattern_id AS id",
        m=web_store.model_a,
        p=PART,
    )
    section = html.split(f'<h2 class="part-name">{PART}</h2>', 1)[1].split("<h3>Template 1", 1)[0]
    assert len(links(section, "/pattern/")) == min(len(uses), 60)
    assert len(re.findall(r'src="/img/[0-9a-f]+\.png"', html)) == 6  # 3 shots x 2 AOGs


def test_compare_matrix_counts_the_stored_matches(
    client: TestClient, web_app: Starlette, web_store: WebStore
) -> None:
    a, b = web_store.model_a, web_store.model_b
    assert f'href="/compare/{a}/{b}"' in page(client, "/compare")
    layer = COMPARED_LAYERS[0]
    html = page(client, f"/compare/{a}/{b}?la={layer}&lb={layer}&unmatched={layer}")
    count = one(
        web_app,
        "MATCH (p:Pattern)-[m:MATCHES]->(q:Pattern) WHERE p.model_id = $a "
        "AND p.layer = $l AND q.model_id = $b AND q.layer = $l RETURN count(m) AS c",
        a=a,
        b=b,
        l=layer,
    )
    assert f'?la={layer}&amp;lb={layer}">{count}</a>' in html
    listed = html.split('id="pair-matches"', 1)[1].split("</table>", 1)[0]
    assert len(re.findall(r"<tr><td>", listed)) == count
    assert "without a counterpart" in html
    page(client, f"/compare/{a}/nope", 404)


def test_cypher_console_reads_and_links(client: TestClient, web_store: WebStore) -> None:
    cypher = "MATCH (p:Pattern) WHERE p.model_id = $m RETURN p.pattern_id AS pattern_id LIMIT 4"
    params = json.dumps({"m": web_store.model_a})
    html = page(client, f"/query?cypher={quote(cypher)}&params={quote(params)}")
    assert "4 row(s)" in html
    assert len(links(html.split('id="results"', 1)[1], "/pattern/")) == 4


@pytest.mark.parametrize(
    ("cypher", "params", "status", "message"),
    [
        ("CREATE (m:Model {model_id: 'x'}) RETURN m.model_id", "", 403, "pass --write"),
        ("MATCH (m:Model) DETACH DELETE m", "", 403, "pass --write"),
        ("MATCH (m:Model) SET m.status = 'mining' RETURN m.model_id", "", 403, "pass --write"),
        ("MATCH (n RETURN n", "", 400, "check the Cypher"),
        ("MATCH (m:Model) RETURN m.model_id", "{bad json", 400, "not valid JSON"),
        ("MATCH (m:Model) RETURN m.model_id", "[1, 2]", 400, "JSON object"),
    ],
)
def test_cypher_console_refuses(
    client: TestClient, web_app: Starlette, cypher: str, params: str, status: int, message: str
) -> None:
    before = rows(web_app, "MATCH (m:Model) RETURN m.model_id AS id, m.status AS s ORDER BY id")
    html = page(client, f"/query?cypher={quote(cypher)}&params={quote(params)}", status)
    assert message in html
    assert (
        rows(web_app, "MATCH (m:Model) RETURN m.model_id AS id, m.status AS s ORDER BY id")
        == before
    )


@pytest.mark.parametrize(
    "cypher",
    [
        "COPY (MATCH (m:Model) RETURN m.model_id) TO '{out}/leak.csv'",
        "EXPORT DATABASE '{out}/dump'",
        "LOAD FROM '{out}/secret.csv' RETURN *",
        "load  csv FROM 'file://{out}/secret.csv' AS row RETURN row",
        "MATCH (m:Model) RETURN m.model_id // harmless\nCOPY Model TO '{out}/x.csv'",
        "USE other MATCH (m:Model) RETURN m.model_id",
        "CALL apoc.export.csv.all('{out}/x.csv', {{}})",
        "CHECKPOINT",
    ],
)
def test_cypher_console_refuses_file_clauses(
    client: TestClient, cypher: str, tmp_path: Path
) -> None:
    """LadybugDB runs COPY TO / EXPORT DATABASE (file writes) and LOAD FROM (file reads) even
    on a read-only handle; the console refuses them before the engine sees them."""
    (tmp_path / "secret.csv").write_text("a,b\nsecret,2\n")
    statement = cypher.format(out=tmp_path)
    html = page(client, f"/query?cypher={quote(statement)}", 403)
    assert "does not run" in html and "secret" not in html.split("<textarea", 1)[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret.csv"]


@pytest.mark.parametrize("line_break", ["\r", "\u2028", "\u0085"])
def test_cypher_console_comments_ended_by_other_line_breaks_read_nothing(
    client: TestClient, tmp_path: Path, line_break: str
) -> None:
    """Issue 22: ``//c<CR>LOAD CSV FROM 'file:///etc/passwd'`` returned the file in the
    console on the Bolt peer (ArcadeDB ends comments at more line breaks than the classifier
    did). Refused before the engine sees it, the file never shown."""
    (tmp_path / "secret.csv").write_text("a,b\ncanary-7f3a,2\n")
    for statement in (
        f"//c{line_break}LOAD FROM '{tmp_path}/secret.csv' RETURN *",
        f"//c{line_break}LOAD CSV FROM 'file://{tmp_path}/secret.csv' AS row RETURN row",
    ):
        response = client.get(f"/query?cypher={quote(statement)}")
        assert response.status_code == 403, response.text[-500:]
        assert "does not run LOAD" in response.text
        assert "canary-7f3a" not in response.text


def test_cypher_console_keywords_in_strings_are_fine(client: TestClient) -> None:
    html = page(client, "/query?cypher=" + quote("RETURN 'copy, load and export' AS words"))
    assert "copy, load and export" in html.split('id="results"', 1)[1]


def test_cypher_console_unbindable_parameters_are_400(client: TestClient) -> None:
    url = "/query?cypher=" + quote("RETURN $x AS x") + "&params=" + quote('{"x": [1, "a"]}')
    page(client, url, 400)


def test_other_sites_cannot_run_cypher_or_start_explanations(
    client: TestClient, web_store: WebStore
) -> None:
    url = "/query?cypher=" + quote("MATCH (m:Model) RETURN m.model_id AS id")
    assert client.get(url, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert client.get(url, headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200
    assert client.get("/", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 200  # reading
    null_origin = {
        "Origin": "null",
        "Sec-Fetch-Site": "same-origin",
    }  # what a no-referrer page sends
    assert client.get(url, headers=null_origin).status_code == 200
    assert client.get(url, headers={"Origin": "null"}).status_code == 403
    posted = client.post(
        "/explain",
        data={"model": web_store.model_a, "image_id": "x"},
        headers={"Origin": "http://attacker.example"},
    )
    assert posted.status_code == 403


def test_canned_queries(client: TestClient, web_store: WebStore) -> None:
    html = page(client, "/query")
    assert 'href="/query/filter-patterns"' in html
    form = page(client, "/query/filter-patterns")
    assert 'name="layer"' in form and "run" in form
    html = page(
        client,
        f"/query/filter-patterns?run=1&model={web_store.model_a}&layer=block4_conv2&filter=3",
    )
    assert links(html.split('id="results"', 1)[1], f"/pattern/{web_store.model_a}/block4_conv2/f3/")
    html = page(
        client, f"/query/part-patterns?run=1&model={web_store.model_a}&part={quote(HOSTILE_PART)}"
    )
    assert links(html.split('id="results"', 1)[1], "/pattern/")
    assert ESCAPED_PART in html  # the form echoes the value, escaped
    page(client, "/query/filter-patterns?run=1&model=x", 400)  # required parameters missing
    page(client, "/query/no-such-query", 404)


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/model/nope", 404),
        ("/model/nope/layer/block3_conv1", 404),
        ("/model/nope/parts", 404),
        ("/model/toy_vgg-bird/layer/nope", 404),
        ("/model/toy_vgg-bird/layer/block3_conv1/filter/999", 404),
        ("/model/toy_vgg-bird/layer/block3_conv1/filter/abc", 404),
        ("/model/toy_vgg-bird/layer/block3_conv1?sort=%3Cb%3E", 400),
        ("/pattern/nope", 404),
        ("/pattern/" + "x" * 400, 400),
        ("/patch.png", 400),
        ("/patch.png?pattern=toy_vgg-bird/block3_conv1/f0/p0&image=nope", 404),
        ("/image/nope", 404),
        ("/img/nope.png", 404),
        ("/img/..%2F..%2F..%2Fetc%2Fpasswd.png", 404),
        ("/explain?model=nope", 404),
        ("/explain/0123456789abcdef", 404),
        ("/explain/..%2Fetc/status", 404),
        ("/explain/0123456789abcdef/heatmap.png", 404),
        ("/static/..%2Fapp.py", 404),
        ("/nowhere", 404),
    ],
)
def test_malformed_requests_are_4xx(client: TestClient, url: str, status: int) -> None:
    response = client.get(url)
    assert response.status_code == status, (url, response.text[:300])
    assert "Traceback" not in response.text
    assert "<b>" not in response.text


def test_security_headers_and_host_check(client: TestClient) -> None:
    response = client.get("/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["server-timing"].startswith("app;dur=")
    assert client.get("/", headers={"Host": "attacker.example"}).status_code == 400


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (120, 30, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_uploads_are_checked(web_store: WebStore, client: TestClient, web_app: Starlette) -> None:
    def post(files: Any = None, **form: str) -> int:
        form.setdefault("model", web_store.model_a)
        return client.post("/explain", data=form, files=files, follow_redirects=False).status_code

    ok = ("a.png", _png(32, 32), "image/png")
    assert post({"image": ("a.txt", b"not an image", "text/plain")}) == 400
    assert post({"image": ok}, model="nope") == 404
    assert post({"image": ok}, box="1,2,3") == 400
    assert post({"image": ok}, box="10,10,5,5") == 400
    assert post() == 400  # neither a file nor a stored image
    assert post(image_id="nope") == 404
    explorer = web_app.state.explorer
    limits = explorer.max_upload_bytes, explorer.max_upload_pixels
    try:
        explorer.max_upload_bytes = 2000
        assert post({"image": ("big.png", b"\0" * 5000, "image/png")}) == 413
        explorer.max_upload_bytes, explorer.max_upload_pixels = limits[0], 1000
        assert post({"image": ("wide.png", _png(50, 50), "image/png")}) == 400
    finally:
        explorer.max_upload_bytes, explorer.max_upload_pixels = limits
    assert explorer.explainer.get("0" * 16) is None


def _finish(client: TestClient, location: str) -> dict[str, Any]:
    import time

    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        status = client.get(location + "/status").json()
        if status["state"] in ("done", "failed"):
            return status
        time.sleep(0.5)
    raise AssertionError(f"{location} did not finish")


@pytest.mark.slow
def test_explaining_an_upload_and_a_stored_image(
    client: TestClient, web_app: Starlette, web_store: WebStore
) -> None:
    from miner.data.folder import load_dataset

    bird = next(iter(load_dataset(web_store.data_dir).select(split="test", label="bird").records))
    response = client.post(
        "/explain",
        data={"model": web_store.model_a},
        files={"image": ("<img src=x onerror=alert(1)>.png", bird.path.read_bytes(), "image/png")},
        follow_redirects=False,
    )
    assert response.status_code == 303
    location = response.headers["location"]
    assert re.fullmatch(r"/explain/[0-9a-f]{16}", location)
    progress = page(client, location)  # while it runs (or already done)
    assert "<img src=x" not in progress
    status = _finish(client, location)
    assert status["state"] == "done", status
    html = page(client, location)
    assert re.search(r'<ol id="prediction"><li>\w+ · [\d.]+%</li>', html)
    assert "&lt;img src=x onerror=alert(1)&gt;.png" in html
    assert "patterns fired" in html and links(html, "/pattern/")
    heat = client.get(location + "/heatmap.png")
    with Image.open(bird.path) as original:
        assert Image.open(io.BytesIO(heat.content)).size == original.size
    assert ESCAPED_PART in html.split('id="parts"', 1)[1]  # the located parts, escaped

    image_id = one(
        web_app,
        "MATCH (i:Image) WHERE i.split = 'train' RETURN i.image_id AS id ORDER BY id LIMIT 1",
    )
    stored = client.post(
        "/explain", data={"model": web_store.model_a, "image_id": image_id}, follow_redirects=False
    )
    assert stored.status_code == 303
    assert _finish(client, stored.headers["location"])["state"] == "done"
    assert f'href="/image/{image_id}"' in page(client, stored.headers["location"])
