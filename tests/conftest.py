"""Shared fixtures: one real embedded MongoDB-wire server per test session, a fresh database per test."""

import uuid

import pytest

from fhir_iomt import create_app
from fhir_iomt.store.embedded import EmbeddedMongo


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory):
    """An nx-27017 server on a free port, stopped at the end of the session."""
    server = EmbeddedMongo(tmp_path_factory.mktemp("nx-data")).start()
    yield server
    server.stop()


@pytest.fixture()
def app(mongo_server):
    """An app over a database of its own (one SQLite file per database name)."""
    application = create_app(
        {"MONGODB_URI": mongo_server.uri, "MONGODB_DB": f"t{uuid.uuid4().hex[:12]}", "TESTING": True}
    )
    services = application.extensions["fhir_iomt"]
    services.store.ensure_indexes()
    yield application
    services.store.close()


@pytest.fixture()
def client(app):
    """Flask test client."""
    return app.test_client()
