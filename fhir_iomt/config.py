"""Configuration: defaults, then environment, then an explicit dict (tests)."""

import os

DEFAULTS = {
    "MONGODB_URI": None,
    "MONGODB_DB": "fhir_iomt",
    "FHIR_BASE_PATH": "/fhir",
    "PUBLIC_BASE_URL": None,
    "SEARCH_DEFAULT_COUNT": 50,
    "SEARCH_MAX_COUNT": 1000,
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    "DATA_DIR": "./var",
    "INGEST_MAX_CONTENT_LENGTH": 10 * 1024 * 1024,
    "INGEST_FUTURE_TOLERANCE_SECONDS": 300,
}

# Environment variable -> config key, with the parser applied to the raw string.
ENVIRONMENT = {
    "MONGODB_URI": ("MONGODB_URI", str),
    "FHIR_IOMT_MONGODB_DB": ("MONGODB_DB", str),
    "FHIR_IOMT_PUBLIC_BASE_URL": ("PUBLIC_BASE_URL", str),
    "FHIR_IOMT_SEARCH_DEFAULT_COUNT": ("SEARCH_DEFAULT_COUNT", int),
    "FHIR_IOMT_SEARCH_MAX_COUNT": ("SEARCH_MAX_COUNT", int),
    "FHIR_IOMT_MAX_CONTENT_LENGTH": ("MAX_CONTENT_LENGTH", int),
    "FHIR_IOMT_DATA_DIR": ("DATA_DIR", str),
    "FHIR_IOMT_INGEST_MAX_CONTENT_LENGTH": ("INGEST_MAX_CONTENT_LENGTH", int),
    "FHIR_IOMT_INGEST_FUTURE_TOLERANCE_SECONDS": ("INGEST_FUTURE_TOLERANCE_SECONDS", int),
}


def load_config(overrides=None, environ=None):
    """Return the settings: defaults, then environment, then `overrides`."""
    environ = os.environ if environ is None else environ
    config = dict(DEFAULTS)
    for variable, (key, parse) in ENVIRONMENT.items():
        if environ.get(variable):
            config[key] = parse(environ[variable])
    config.update(overrides or {})
    return config
