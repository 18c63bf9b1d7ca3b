"""The interactive API docs are served with their assets from this server (no CDN)."""

import re


def test_docs_page_and_its_assets_are_served_locally(client):
    page = client.get("/docs")
    assert page.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.get_data(as_text=True))
    local = [a for a in assets if a.startswith("/docs/static/")]
    assert {a.rsplit("/", 1)[-1] for a in local} >= {"swagger-ui.css", "swagger-ui-bundle.js"}
    assert all(not a.startswith("http") for a in assets)
    for asset in local:
        assert client.get(asset).status_code == 200


def test_docs_static_does_not_escape_its_directory(client):
    assert client.get("/docs/static/../../__init__.py").status_code == 404


def test_openapi_document_is_served(client):
    document = client.get("/openapi.json").get_json()
    assert "/fhir/{resource_type}" in document["paths"]
