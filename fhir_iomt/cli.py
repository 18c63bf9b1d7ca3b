"""Command line: serve, db init, seed, templates, clients, users, token, openapi."""

import json
import sys
from pathlib import Path

import click

from .config import load_config

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
DEMO_FILE = FIXTURES / "demo" / "resources.json"
DEVICE_FIXTURES = FIXTURES / "devices"


def _app(uri=None):
    from . import create_app

    return create_app({"MONGODB_URI": uri} if uri else None)


def _prepare(app, demo, server_url=None):
    services = app.extensions["fhir_iomt"]
    services.store.ensure_indexes()
    if demo:
        from .auth.demo import ensure_demo_access
        from .services.demo import load_resources

        items = json.loads(DEMO_FILE.read_text())
        created = load_resources(services.resources, items)
        click.echo(f"Demo data: {len(items)} resources ({created} new).")
        if services.templates.current_document() is None:
            stored = services.templates.put(_fixture_templates())
            click.echo(f"Demo templates: every device kind of {DEVICE_FIXTURES} (version {stored['version']}).")
        ensure_demo_access(services.auth, Path(app.config["DATA_DIR"]) / "demo", server_url)


def _fixture_templates():
    """The device and FHIR templates of every fixture device kind, as one templates document."""
    from .services.demo import combine_templates

    pairs = [
        (json.loads(device.read_text()), json.loads(device.with_name("fhir-template.json").read_text()))
        for device in sorted(DEVICE_FIXTURES.glob("*/device-template.json"))
    ]
    return combine_templates(pairs)


@click.group()
def main():
    """fhir-iomt: FHIR R4 server for remote patient monitoring."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to listen on.")
@click.option("--workers", default=2, show_default=True, type=int, help="gunicorn worker processes.")
@click.option("--threads", default=4, show_default=True, type=int, help="Threads per worker.")
@click.option("--demo", is_flag=True, help="Load the demo patients, devices and readings.")
def serve(host, port, workers, threads, demo):
    """Serve the FHIR API (embedded database unless MONGODB_URI is set)."""
    from .server import serve as run_server

    base = f"http://{host}:{port}"

    def prepare(uri, _embedded):
        app = _app(uri)
        _prepare(app, demo, base)
        app.extensions["fhir_iomt"].close()

    def announce(uri, embedded):
        where = f"embedded nx-27017 at {uri} (data in {embedded.data_dir})" if embedded else "MONGODB_URI"
        click.echo(
            f"Database: {where}\n"
            f"FHIR base:      {base}/fhir  (every request needs a SMART on FHIR bearer token)\n"
            f"Capabilities:   {base}/fhir/metadata\n"
            f"API docs:       {base}/docs  (OpenAPI: {base}/openapi.json)\n"
            f"Health:         {base}/healthz  {base}/readyz\n"
            f"Device ingest:  POST {base}/ingest/messages  (templates: {base}/ingest/templates)\n"
            f"SMART:          {base}/fhir/.well-known/smart-configuration\n"
            f"Admin CLI:      MONGODB_URI={uri} {sys.argv[0]} clients add|list|remove, users add, templates load\n"
            + (_demo_banner(base, sys.argv[0]) if demo else "")
            + "Stop with Ctrl-C."
        )

    run_server(host, port, workers, threads, prepare, announce)


def _demo_banner(base, program):
    from .auth.demo import DEMO_USERS

    users = ", ".join(f"{u['username']} / {u['password']}" for u in DEMO_USERS)
    return (
        f"Demo token:     export TOKEN=$({program} token)   # demo backend client, private_key_jwt\n"
        f'                curl -H "Authorization: Bearer $TOKEN" "{base}/fhir/Observation?patient=demo-patient-1"\n'
        f"Demo logins:    {users}  (for SMART apps; demo only, never expose this server)\n"
    )


@main.group()
def db():
    """Database administration."""


@db.command("init")
def db_init():
    """Create the indexes (idempotent). Needs MONGODB_URI."""
    app = _require_uri_app()
    _prepare(app, demo=False)
    click.echo("Indexes are in place.")


@main.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False), required=False)
def seed(path):
    """Load resources from a JSON array file (default: the demo data). Needs MONGODB_URI."""
    from .services.demo import load_resources

    app = _require_uri_app()
    app.extensions["fhir_iomt"].store.ensure_indexes()
    items = json.loads(Path(path or DEMO_FILE).read_text())
    created = load_resources(app.extensions["fhir_iomt"].resources, items)
    click.echo(f"{len(items)} resources, {created} new.")


@main.group()
def templates():
    """Device and FHIR mapping templates."""


@templates.command("load")
@click.argument("device_template", type=click.Path(exists=True, dir_okay=False))
@click.argument("fhir_template", type=click.Path(exists=True, dir_okay=False))
@click.option("--identity", type=click.Choice(["create", "lookup"]), default="create", show_default=True)
@click.option("--limits", type=click.Path(exists=True, dir_okay=False),
              help='JSON file of physiological limits by LOINC code, e.g. {"8867-4": [20, 300]}.')
def templates_load(device_template, fhir_template, identity, limits):
    """Validate and activate templates (a new version). Needs MONGODB_URI."""
    from .domain.errors import FhirError

    app = _require_uri_app()
    document = {
        "deviceTemplate": json.loads(Path(device_template).read_text()),
        "fhirTemplate": json.loads(Path(fhir_template).read_text()),
        "identityMode": identity,
    }
    if limits:
        document["limits"] = json.loads(Path(limits).read_text())
    try:
        stored = app.extensions["fhir_iomt"].templates.put(document)
    except FhirError as error:
        for path in getattr(error, "issues", None) or [("", error.diagnostics)]:
            click.echo(f"error: {path[0]}: {path[1]}" if path[0] else f"error: {path[1]}", err=True)
        raise SystemExit(1) from error
    click.echo(json.dumps({"version": stored["version"], "identityMode": stored["identityMode"]}))


@main.command()
@click.option("--output", "-o", type=click.Path(dir_okay=False), default="-", show_default=True)
def openapi(output):
    """Write the OpenAPI document the server serves."""
    from . import create_app

    app = create_app({"MONGODB_URI": "mongodb://127.0.0.1:1/"})
    document = app.test_client().get("/openapi.json").get_json()
    text = json.dumps(document, indent=2, sort_keys=True) + "\n"
    if output == "-":
        sys.stdout.write(text)
    else:
        Path(output).write_text(text)


@main.group()
def clients():
    """OAuth clients: SMART apps and backend services. Needs MONGODB_URI."""


@clients.command("add")
@click.option("--name", required=True, help="Display name (shown on the consent page).")
@click.option("--jwks", "jwks_file", type=click.Path(exists=True, dir_okay=False),
              help="Backend client: file with its public JWKS (private_key_jwt, RS384/ES384).")
@click.option("--jwks-url", help="Backend client: URL of its public JWKS (fetched and cached).")
@click.option("--redirect-uri", "redirect_uris", multiple=True, help="App client: an exact redirect URI (repeatable).")
@click.option("--public", is_flag=True, help="App client without a secret (PKCE only), e.g. a browser app.")
@click.option("--scope", required=True, help='Scopes the client may ever get, e.g. "patient/*.rs launch/patient".')
def clients_add(name, jwks_file, jwks_url, redirect_uris, public, scope):
    """Register a client; prints JSON with client_id (and client_secret for a confidential app, shown once)."""
    jwks = json.loads(Path(jwks_file).read_text()) if jwks_file else None
    created = _admin(lambda auth: auth.register_client(name, scope, redirect_uris, jwks, jwks_url, public))
    click.echo(json.dumps(created, indent=2))


@clients.command("list")
def clients_list():
    """List the registered clients (never their secrets)."""
    from .auth.service import public_client

    click.echo(json.dumps(_admin(lambda auth: [public_client(c) for c in auth.store.clients()]), indent=2))


@clients.command("remove")
@click.argument("client_id")
def clients_remove(client_id):
    """Remove a client; every token issued to it stops working at once."""
    if not _admin(lambda auth: auth.store.remove_client(client_id)):
        raise click.ClickException(f"No client {client_id}")
    click.echo(json.dumps({"removed": client_id}))


@main.group()
def users():
    """Users who sign in to SMART apps. Needs MONGODB_URI."""


@users.command("add")
@click.option("--username", required=True)
@click.option("--password", required=True, help="At least 8 characters; stored as a salted scrypt hash.")
@click.option("--role", required=True, type=click.Choice(["clinician", "patient"]))
@click.option("--patient", "patient_id", help="For --role patient: the id of their Patient resource.")
@click.option("--name", "display_name", help="For --role clinician: the name on their Practitioner resource.")
def users_add(username, password, role, patient_id, display_name):
    """Create a user (a clinician also gets a Practitioner resource: their fhirUser)."""
    click.echo(json.dumps(_admin(lambda auth: auth.add_user(username, password, role, patient_id, display_name))))


@main.command()
@click.option("--client-file", type=click.Path(dir_okay=False),
              help="JSON {client_id, key_file, token_url} (default: the demo client of `serve --demo`).")
@click.option("--scope", help="Scopes to ask for (default: all the client file names).")
def token(client_file, scope):
    """Print an access token for a backend client (client_credentials with a signed private_key_jwt)."""
    from .auth.demo import request_backend_token

    path = Path(client_file) if client_file else Path(load_config()["DATA_DIR"]) / "demo" / "demo-backend.json"
    if not path.exists():
        raise click.UsageError(f"{path} does not exist: start `make run` (serve --demo) first, or pass --client-file")
    try:
        click.echo(request_backend_token(json.loads(path.read_text()), scope))
    except RuntimeError as error:
        raise click.ClickException(str(error)) from error


def _admin(action):
    """Run an administration action on the auth service; a refused input is a clear CLI error."""
    from .domain.errors import FhirError

    app = _require_uri_app()
    try:
        return action(app.extensions["fhir_iomt"].auth)
    except FhirError as error:
        raise click.ClickException(error.diagnostics) from error
    finally:
        app.extensions["fhir_iomt"].close()


def _require_uri_app():
    if not load_config()["MONGODB_URI"]:
        raise click.UsageError("Set MONGODB_URI (the server started by `fhir-iomt serve` prints it).")
    return _app()


if __name__ == "__main__":
    main()
