"""Swagger UI's files served locally, so the API docs work on networks without internet access."""

from flask import Blueprint, send_from_directory
from swagger_ui_bundle import swagger_ui_path

STATIC_URL = "/docs/static/"

blp = Blueprint("docs_static", __name__)


@blp.route(f"{STATIC_URL}<path:filename>")
def swagger_static(filename):
    """A file of the Swagger UI distribution."""
    return send_from_directory(str(swagger_ui_path), filename, max_age=86400)
