"""Liveness and readiness probes."""

from flask import current_app, jsonify
from flask.views import MethodView
from flask_smorest import Blueprint

blp = Blueprint("health", __name__, description="Process and database health for load balancers.")


@blp.route("/healthz")
class Liveness(MethodView):
    @blp.doc(security=[], responses={"200": {"description": "The process is alive"}})
    def get(self):
        """The process is alive."""
        return jsonify(status="ok")


@blp.route("/readyz")
class Readiness(MethodView):
    @blp.doc(security=[], responses={"200": {"description": "Ready"}, "503": {"description": "Database down"}})
    def get(self):
        """The database answers (200) or not (503)."""
        if current_app.extensions["fhir_iomt"].store.ping():
            return jsonify(status="ready")
        return jsonify(status="database unavailable"), 503
