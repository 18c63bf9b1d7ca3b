"""The administration CLI integrators script against: clients add/list/remove, users add (real database)."""

import json
import uuid

import pytest
from click.testing import CliRunner

from fhir_iomt import create_app
from fhir_iomt.auth.secrets import digest
from fhir_iomt.cli import main
from tests.support.oauth import backend_token, bearer_client, new_key, public_jwks


@pytest.fixture()
def cli_env(mongo_server):
    """Environment pointing the CLI at a fresh database of the session's server."""
    return {"MONGODB_URI": mongo_server.uri, "FHIR_IOMT_MONGODB_DB": f"t{uuid.uuid4().hex[:12]}"}


def run(env, *args):
    """Run the CLI; returns (exit code, parsed JSON or text)."""
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    try:
        return result.exit_code, json.loads(result.output)
    except ValueError:
        return result.exit_code, result.output


def app_for(env):
    return create_app({"MONGODB_URI": env["MONGODB_URI"], "MONGODB_DB": env["FHIR_IOMT_MONGODB_DB"]})


def test_backend_client_from_a_jwks_file_gets_tokens(cli_env, tmp_path, backend_key):
    jwks = tmp_path / "public.jwks.json"
    jwks.write_text(json.dumps(public_jwks(backend_key)))
    code, created = run(cli_env, "clients", "add", "--name", "Acme scales", "--jwks", str(jwks),
                        "--scope", "ingest:write system/Device.rs")
    assert code == 0
    assert "client_secret" not in created and created["token_endpoint_auth_method"] == "private_key_jwt"
    app = app_for(cli_env)
    token = backend_token(app.test_client(), created["client_id"], backend_key, "system/Device.rs")
    assert bearer_client(app, token).get("/fhir/Device").status_code == 200
    assert bearer_client(app, token).get("/fhir/Patient").status_code == 403


def test_confidential_app_secret_is_printed_once_and_stored_only_hashed(cli_env):
    code, created = run(cli_env, "clients", "add", "--name", "Viewer", "--redirect-uri", "https://app.example/cb",
                        "--scope", "launch/patient patient/*.rs openid fhirUser")
    assert code == 0 and created["client_secret"]
    stored = app_for(cli_env).extensions["fhir_iomt"].auth.store.client(created["client_id"])
    assert created["client_secret"] not in json.dumps(stored, default=str)
    assert stored["secret"] == digest(created["client_secret"])
    code, listed = run(cli_env, "clients", "list")
    assert code == 0 and [c["client_id"] for c in listed] == [created["client_id"]]
    assert "client_secret" not in listed[0] and "secret" not in listed[0]


def test_public_app_has_no_secret(cli_env):
    code, created = run(cli_env, "clients", "add", "--name", "SPA", "--public", "--redirect-uri",
                        "http://localhost:5173/callback", "--scope", "patient/Observation.rs")
    assert code == 0 and "client_secret" not in created and created["token_endpoint_auth_method"] == "none"


@pytest.mark.parametrize("args, message", [
    (["--scope", "patient/*.rs"], "needs redirect URIs"),
    (["--redirect-uri", "http://evil.example/cb", "--scope", "patient/*.rs"], "must be https"),
    (["--redirect-uri", "https://a.example/cb#frag", "--scope", "patient/*.rs"], "without fragment"),
    (["--redirect-uri", "https://a.example/cb", "--scope", "system/*.rs"], "cannot hold system/"),
    (["--redirect-uri", "https://a.example/cb", "--scope", "patient/Observation.sr"], "not a SMART"),
    (["--redirect-uri", "https://a.example/cb", "--scope", "ingest:write"], "cannot be held"),
    (["--redirect-uri", "https://a.example/cb", "--scope", "bogus"], "not a scope"),
    (["--jwks-url", "https://k.example/jwks", "--scope", "patient/*.rs"], "cannot hold patient/"),
    (["--jwks-url", "https://k.example/jwks", "--public", "--scope", "system/*.rs"], "public client"),
])
def test_bad_registrations_are_refused_and_nothing_is_stored(cli_env, args, message):
    code, output = run(cli_env, "clients", "add", "--name", "X", *args)
    assert code != 0 and message in str(output)
    assert run(cli_env, "clients", "list") == (0, [])


def test_a_jwks_with_a_private_key_is_refused(cli_env, tmp_path):
    key = new_key("ES384")
    leaked = tmp_path / "private.json"
    leaked.write_text(json.dumps({"keys": [key.as_dict(private=True)]}))
    code, output = run(cli_env, "clients", "add", "--name", "X", "--jwks", str(leaked), "--scope", "system/*.rs")
    assert code != 0 and "private key" in output


def test_removing_a_client_revokes_its_tokens_at_once(cli_env, backend_key):
    app = app_for(cli_env)
    client_id = app.extensions["fhir_iomt"].auth.register_client(
        "gone soon", "system/*.rs", jwks=public_jwks(backend_key))["client_id"]
    client = bearer_client(app, backend_token(app.test_client(), client_id, backend_key, "system/*.rs"))
    assert client.get("/fhir/Patient").status_code == 200
    assert run(cli_env, "clients", "remove", client_id)[0] == 0
    assert client.get("/fhir/Patient").status_code == 401
    assert run(cli_env, "clients", "remove", client_id)[0] != 0


def test_users_add_hashes_the_password_and_links_patients(cli_env):
    app = app_for(cli_env)
    app.extensions["fhir_iomt"].resources.update("Patient", "p-cli", {"resourceType": "Patient", "id": "p-cli"})
    code, created = run(cli_env, "users", "add", "--username", "jane", "--password", "correct horse",
                        "--role", "patient", "--patient", "p-cli")
    assert code == 0 and created == {"username": "jane", "role": "patient", "patient": "p-cli",
                                     "fhirUser": "Patient/p-cli"}
    stored = app.extensions["fhir_iomt"].auth.store.user("jane")
    assert stored["password"].startswith("scrypt$") and "correct horse" not in stored["password"]


@pytest.mark.parametrize("args, message", [
    (["--username", "bob", "--password", "short", "--role", "clinician"], "at least 8"),
    (["--username", "bad name", "--password", "long enough", "--role", "clinician"], "Usernames"),
    (["--username", "pat", "--password", "long enough", "--role", "patient"], "existing Patient"),
    (["--username", "pat", "--password", "long enough", "--role", "patient", "--patient", "nobody"],
     "existing Patient"),
    (["--username", "doc", "--password", "long enough", "--role", "clinician", "--patient", "x"], "Only patient"),
])
def test_bad_users_are_refused(cli_env, args, message):
    code, output = run(cli_env, "users", "add", *args)
    assert code != 0 and message in output


def test_a_username_is_taken_once(cli_env):
    args = ["users", "add", "--username", "dr.lee", "--password", "long enough", "--role", "clinician"]
    assert run(cli_env, *args)[0] == 0
    code, output = run(cli_env, *args)
    assert code != 0 and "exists already" in output


def test_admin_commands_need_a_database(monkeypatch):
    monkeypatch.delenv("MONGODB_URI", raising=False)
    result = CliRunner().invoke(main, ["clients", "list"], env={"MONGODB_URI": ""})
    assert result.exit_code != 0 and "MONGODB_URI" in result.output


def test_a_clinician_gets_a_practitioner_as_fhir_user(cli_env, backend_key):
    code, created = run(cli_env, "users", "add", "--username", "dr.lee", "--password", "long enough",
                        "--role", "clinician", "--name", "Dr Ann Lee")
    assert code == 0 and created["fhirUser"].startswith("Practitioner/")
    app = app_for(cli_env)
    client = bearer_client(app, backend_token(app.test_client(), register_backend_for(app, backend_key), backend_key,
                                              "system/Practitioner.rs"))
    practitioner = client.get(f"/fhir/{created['fhirUser']}").get_json()
    assert practitioner["name"] == [{"text": "Dr Ann Lee"}]
    assert practitioner["identifier"] == [{"system": "urn:fhir-iomt:username", "value": "dr.lee"}]
    found = client.get("/fhir/Practitioner?identifier=urn:fhir-iomt:username|dr.lee").get_json()
    assert [e["resource"]["id"] for e in found["entry"]] == [practitioner["id"]]


def register_backend_for(app, key):
    return app.extensions["fhir_iomt"].auth.register_client("reader", "system/Practitioner.rs",
                                                            jwks=public_jwks(key))["client_id"]
