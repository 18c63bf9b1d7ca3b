"""Every route under /fhir and /ingest needs a bearer token; only discovery and health are public."""

import re

import pytest

PUBLIC = {("/fhir/metadata", "GET"), ("/fhir/.well-known/smart-configuration", "GET"),
          ("/fhir/.well-known/openid-configuration", "GET")}


def _protected_routes(app):
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(("/fhir", "/ingest")):
            continue
        url = re.sub(r"<(?:[^:>]+:)?resource_type>", "Observation", rule.rule)
        url = re.sub(r"<[^>]+>", "x1", url)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if (rule.rule, method) not in PUBLIC:
                yield url, method


def test_the_app_has_protected_routes_to_check(app):
    routes = list(_protected_routes(app))
    assert ("/fhir/Observation", "GET") in routes and ("/ingest/messages", "POST") in routes
    assert len(routes) >= 15


def test_every_fhir_and_ingest_route_refuses_a_request_without_token(app, anonymous):
    for url, method in _protected_routes(app):
        response = anonymous.open(url, method=method, json={})
        assert response.status_code == 401, (method, url, response.status_code)
        assert response.headers["WWW-Authenticate"].startswith("Bearer"), (method, url)
        assert response.get_json()["resourceType"] == "OperationOutcome", (method, url)


def test_every_fhir_and_ingest_route_refuses_an_unknown_token(app):
    client = app.test_client()
    for url, method in _protected_routes(app):
        response = client.open(url, method=method, json={}, headers={"Authorization": "Bearer not-a-token"})
        assert response.status_code == 401, (method, url)
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"], (method, url)


@pytest.mark.parametrize("path", sorted(p for p, _ in PUBLIC) + ["/.well-known/smart-configuration", "/healthz"])
def test_discovery_and_health_need_no_token(anonymous, path):
    assert anonymous.get(path).status_code == 200


def test_smart_configuration_lists_the_required_fields(anonymous):
    for path in ("/.well-known/smart-configuration", "/fhir/.well-known/smart-configuration"):
        document = anonymous.get(path).get_json()
        assert document["code_challenge_methods_supported"] == ["S256"]
        assert {"authorization_code", "client_credentials"} <= set(document["grant_types_supported"])
        assert document["token_endpoint"] == "http://localhost/auth/token"
        assert document["authorization_endpoint"] == "http://localhost/auth/authorize"
        assert "private_key_jwt" in document["token_endpoint_auth_methods_supported"]
        assert {"launch-ehr", "launch-standalone", "permission-v2", "client-confidential-asymmetric"} <= set(
            document["capabilities"])
        for field in ("issuer", "jwks_uri", "introspection_endpoint", "revocation_endpoint", "scopes_supported",
                      "response_types_supported"):
            assert document[field], field


def test_capability_statement_carries_the_oauth_uris_extension(anonymous):
    security = anonymous.get("/fhir/metadata").get_json()["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    [extension] = [e for e in security["extension"]
                   if e["url"] == "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"]
    uris = {e["url"]: e["valueUri"] for e in extension["extension"]}
    assert uris["authorize"] == "http://localhost/auth/authorize"
    assert uris["token"] == "http://localhost/auth/token"


def test_openapi_marks_protected_operations(app):
    document = app.test_client().get("/openapi.json").get_json()
    assert document["security"] == [{"smart": []}]
    assert document["components"]["securitySchemes"]["smart"]["type"] == "oauth2"
    assert document["paths"]["/fhir/metadata"]["get"]["security"] == []
    assert "security" not in document["paths"]["/fhir/{resource_type}"]["get"]
