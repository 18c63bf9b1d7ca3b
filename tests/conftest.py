"""Shared fixtures: one real embedded MongoDB-wire server per test session, a fresh database per test."""

import uuid

import pytest

from fhir_iomt import create_app
from fhir_iomt.store.embedded import EmbeddedMongo
from tests.support.oauth import new_key, system_client


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
    services.close()


@pytest.fixture(scope="session")
def backend_key():
    """One ES384 key for the suite's backend clients (key generation is the slow part)."""
    return new_key("ES384")


@pytest.fixture()
def client(app, backend_key):
    """Flask test client holding a real access token of a backend client with every system scope."""
    return system_client(app, backend_key)


@pytest.fixture()
def anonymous(app):
    """Flask test client without a token."""
    return app.test_client()
