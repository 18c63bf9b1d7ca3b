"""Command line: serve, db init, seed, openapi."""

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


def _prepare(app, demo):
    services = app.extensions["fhir_iomt"]
    services.store.ensure_indexes()
    if demo:
        from .services.demo import load_resources

        items = json.loads(DEMO_FILE.read_text())
        created = load_resources(services.resources, items)
        click.echo(f"Demo data: {len(items)} resources ({created} new).")
        if services.templates.current_document() is None:
            stored = services.templates.put(_fixture_templates())
            click.echo(f"Demo templates: every device kind of {DEVICE_FIXTURES} (version {stored['version']}).")


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

    def prepare(uri, _embedded):
        app = _app(uri)
        _prepare(app, demo)
        app.extensions["fhir_iomt"].store.close()

    def announce(uri, embedded):
        where = f"embedded nx-27017 at {uri} (data in {embedded.data_dir})" if embedded else "MONGODB_URI"
        base = f"http://{host}:{port}"
        click.echo(
            f"Database: {where}\n"
            f"FHIR base:      {base}/fhir  (try: curl {base}/fhir/Patient)\n"
            f"Capabilities:   {base}/fhir/metadata\n"
            f"API docs:       {base}/docs  (OpenAPI: {base}/openapi.json)\n"
            f"Health:         {base}/healthz  {base}/readyz\n"
            f"Device ingest:  POST {base}/ingest/messages  (templates: {base}/ingest/templates)\n"
            f"Admin CLI:      MONGODB_URI={uri} {sys.argv[0]} templates load DEVICE.json FHIR.json\n"
            "Stop with Ctrl-C."
        )

    run_server(host, port, workers, threads, prepare, announce)


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


def _require_uri_app():
    if not load_config()["MONGODB_URI"]:
        raise click.UsageError("Set MONGODB_URI (the server started by `fhir-iomt serve` prints it).")
    return _app()


if __name__ == "__main__":
    main()
