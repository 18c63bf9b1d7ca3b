"""fhir-iomt: a FHIR R4 server for remote patient monitoring."""

from dataclasses import dataclass

from flask import Flask

from .config import load_config
from .fhir.dates import instant_now

__version__ = "0.1.0"


@dataclass
class Services:
    """The use cases wired to one store; kept in app.extensions['fhir_iomt']."""

    store: object
    search: object
    resources: object


def create_app(config=None, store=None):
    """Application factory: settings from defaults, environment, then `config`."""
    from .api import init_app as init_api
    from .services.resources import ResourceService
    from .services.search import SearchService
    from .store.mongo import DATABASE_ERRORS, MongoStore

    app = Flask(__name__)
    app.config.update(load_config(config))
    app.config["SOFTWARE_VERSION"] = __version__
    app.config["STARTED_AT"] = instant_now()
    if store is None:
        if not app.config["MONGODB_URI"]:
            raise RuntimeError("MONGODB_URI is not set (`fhir-iomt serve` starts an embedded database)")
        store = MongoStore(app.config["MONGODB_URI"], app.config["MONGODB_DB"])
    public = app.config["PUBLIC_BASE_URL"]
    local_bases = (public.rstrip("/") + app.config["FHIR_BASE_PATH"],) if public else ()
    config = app.config
    search = SearchService(store, config["SEARCH_DEFAULT_COUNT"], config["SEARCH_MAX_COUNT"], local_bases)
    app.extensions["fhir_iomt"] = Services(store, search, ResourceService(store, search, local_bases))
    init_api(app, DATABASE_ERRORS)
    return app
