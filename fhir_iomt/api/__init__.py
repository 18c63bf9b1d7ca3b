"""flask-smorest API: blueprints and the OpenAPI document."""

from flask_smorest import Api

from ..auth import protect
from ..auth import views as auth_views
from . import docs, fhir, health, ingest
from .http import register_error_handlers


def init_app(app, database_errors):
    """Register the blueprints, the OpenAPI document and OperationOutcome error handling."""
    app.config.setdefault("API_TITLE", "fhir-iomt")
    app.config.setdefault("API_VERSION", app.config["SOFTWARE_VERSION"])
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", "/")
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    app.config.setdefault("OPENAPI_SWAGGER_UI_PATH", "/docs")
    app.config.setdefault("OPENAPI_SWAGGER_UI_URL", docs.STATIC_URL)
    app.config.setdefault("API_SPEC_OPTIONS", {"security": [{"smart": []}]})
    api = Api(app)
    api.spec.components.security_scheme("smart", auth_views.SECURITY_SCHEME)
    app.register_blueprint(docs.blp)
    api.register_blueprint(health.blp)
    api.register_blueprint(fhir.blp)
    api.register_blueprint(ingest.blp)
    auth_views.register(api, app)
    protect.init_app(app)
    register_error_handlers(app, database_errors)
    return api
