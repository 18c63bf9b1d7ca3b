"""fhir-iomt: a FHIR R4 server for remote patient monitoring.

Importing the package loads nothing heavy: `domain/` and `mapping/` stay free of
flask and pymongo; the application factory lives in `fhir_iomt.app`.
"""

__version__ = "0.1.0"


def create_app(config=None, store=None):
    """Application factory (see fhir_iomt.app.create_app)."""
    from .app import create_app as factory

    return factory(config, store)
