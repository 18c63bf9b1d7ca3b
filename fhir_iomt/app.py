"""The composition root: the Flask application factory and the wiring of services."""

from dataclasses import dataclass

from flask import Flask

from . import __version__
from .config import load_config
from .fhir.dates import instant_now


@dataclass
class Services:
    """The use cases wired to one store; kept in app.extensions['fhir_iomt']."""

    store: object
    search: object
    resources: object
    templates: object
    ingest: object
    dead_letters: object
    auth: object
    audit: object

    def close(self):
        """Store the queued audit events, then close the database connection."""
        self.audit.close()
        self.store.close()


def build_services(config, store):
    """Wire the services over a store (also used by the CLI outside a request)."""
    from .auth.service import AuthService
    from .services.audit import AuditService
    from .services.ingest import DeadLetterService, IngestService
    from .services.ingest_templates import TemplateService
    from .services.people import People
    from .services.resources import ResourceService
    from .services.search import SearchService
    from .store.auth import MongoAuthStore
    from .store.mongo import MongoIngestStore

    public = config["PUBLIC_BASE_URL"]
    local_bases = (public.rstrip("/") + config["FHIR_BASE_PATH"],) if public else ()
    default_count, max_count = config["SEARCH_DEFAULT_COUNT"], config["SEARCH_MAX_COUNT"]
    search = SearchService(store, default_count, max_count, local_bases)
    resources = ResourceService(store, search, local_bases)
    ingest_store = MongoIngestStore(store)
    templates = TemplateService(ingest_store)
    ingest = IngestService(store, ingest_store, resources, templates,
                           config["INGEST_FUTURE_TOLERANCE_SECONDS"], config.get("CLOCK"))
    dead_letters = DeadLetterService(ingest_store, default_count, max_count)
    auth = AuthService(MongoAuthStore(store), config, People(resources), config.get("CLOCK"))
    audit = AuditService(store, local_bases)
    return Services(store, search, resources, templates, ingest, dead_letters, auth, audit)


def create_app(config=None, store=None):
    """Application factory: settings from defaults, environment, then `config`."""
    from .api import init_app as init_api
    from .store.mongo import DATABASE_ERRORS, MongoStore

    app = Flask(__name__)
    app.config.update(load_config(config))
    app.config["SOFTWARE_VERSION"] = __version__
    app.config["STARTED_AT"] = instant_now()
    if store is None:
        if not app.config["MONGODB_URI"]:
            raise RuntimeError("MONGODB_URI is not set (`fhir-iomt serve` starts an embedded database)")
        store = MongoStore(app.config["MONGODB_URI"], app.config["MONGODB_DB"])
    app.extensions["fhir_iomt"] = build_services(app.config, store)
    init_api(app, DATABASE_ERRORS)
    return app
