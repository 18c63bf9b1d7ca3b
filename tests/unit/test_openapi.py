"""The committed OpenAPI document is the one the server serves."""

import json
from pathlib import Path

from fhir_iomt import create_app

COMMITTED = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"


def test_committed_openapi_matches_served_document():
    app = create_app({"MONGODB_URI": "mongodb://127.0.0.1:1/"})
    served = app.test_client().get("/openapi.json").get_json()
    committed = json.loads(COMMITTED.read_text())
    assert committed == served, "openapi/openapi.json is stale: run `make openapi` and commit it"


def test_openapi_documents_every_fhir_route():
    app = create_app({"MONGODB_URI": "mongodb://127.0.0.1:1/"})
    documented = set(app.test_client().get("/openapi.json").get_json()["paths"])
    routed = {
        rule.rule.replace("<", "{").replace(">", "}")
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/fhir") or rule.rule in ("/healthz", "/readyz")
    }
    assert routed <= documented
