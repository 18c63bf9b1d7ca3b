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
    # SMART on FHIR authorization server.
    "ACCESS_TOKEN_SECONDS": 900,
    "BACKEND_TOKEN_SECONDS": 300,
    "REFRESH_TOKEN_SECONDS": 30 * 24 * 3600,
    "AUTH_CODE_SECONDS": 60,
    "AUTH_REQUEST_SECONDS": 600,
    "LAUNCH_SECONDS": 3600,
    "CLIENT_ASSERTION_MAX_SECONDS": 300,
    "JWKS_CACHE_SECONDS": 300,
    "LOGIN_FREE_FAILURES": 3,
    "LOGIN_MAX_DELAY_SECONDS": 900,
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
    "FHIR_IOMT_ACCESS_TOKEN_SECONDS": ("ACCESS_TOKEN_SECONDS", int),
    "FHIR_IOMT_BACKEND_TOKEN_SECONDS": ("BACKEND_TOKEN_SECONDS", int),
    "FHIR_IOMT_REFRESH_TOKEN_SECONDS": ("REFRESH_TOKEN_SECONDS", int),
    "FHIR_IOMT_JWKS_CACHE_SECONDS": ("JWKS_CACHE_SECONDS", int),
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
