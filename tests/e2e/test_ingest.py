"""Device ingestion through the running server: templates loaded by the CLI, readings posted over HTTP."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from fhirpy import SyncFHIRClient

from tests.api.ingest_helpers import templates

from .conftest import DB_URI_PATTERN

pytestmark = pytest.mark.e2e
CLI = Path(sys.executable).with_name("fhir-iomt")


def _load_templates(server, tmp_path, body, *extra):
    """Run `fhir-iomt templates load` against the running server's embedded database."""
    device, fhir = tmp_path / "device.json", tmp_path / "fhir.json"
    device.write_text(json.dumps(body["deviceTemplate"]))
    fhir.write_text(json.dumps(body["fhirTemplate"]))
    host, port = DB_URI_PATTERN.search(server.log_path.read_text()).groups()
    env = dict(os.environ, MONGODB_URI=f"mongodb://{host}:{port}/")
    return subprocess.run([str(CLI), "templates", "load", str(device), str(fhir), *extra],
                          capture_output=True, text=True, env=env, timeout=60)


def test_cli_loads_templates_and_posted_readings_become_searchable(server_process, bearer, tmp_path, tag):
    loaded = _load_templates(server_process, tmp_path, templates(), "--identity", "create")
    assert loaded.returncode == 0, loaded.stderr
    version = json.loads(loaded.stdout)["version"]
    messages = [{"deviceId": f"HR-{tag}", "patientId": f"MRN-{tag}", "heartRate": 60 + i,
                 "endDate": f"2026-11-2{i}T08:00:00+02:00"} for i in range(3)]
    response = requests.post(f"{server_process.root}/ingest/messages",
                             data="\n".join(json.dumps(m) for m in messages),
                             headers={**bearer, "Content-Type": "application/x-ndjson"}, timeout=30)
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 3 and {r["templateVersion"] for r in body["results"]} == {version}
    client = SyncFHIRClient(server_process.base, authorization=bearer["Authorization"])
    patient = client.resources("Patient").search(identifier=f"MRN-{tag}").first()
    found = client.resources("Observation").search(patient=patient.id, code="http://loinc.org|8867-4") \
        .sort("-date").fetch_all()
    assert [o["valueQuantity"]["value"] for o in found] == [62, 61, 60]
    assert found[0]["effectiveDateTime"] == "2026-11-22T08:00:00+02:00"


def test_cli_refuses_a_wrong_vital_sign_unit_and_keeps_the_active_templates(server_process, bearer, tmp_path):
    before = requests.get(f"{server_process.root}/ingest/templates", headers=bearer, timeout=10)
    assert before.status_code in (200, 404), before.text
    body = templates()
    body["fhirTemplate"]["template"][0]["template"]["value"].update(unit="count/min", code="count/min")
    result = _load_templates(server_process, tmp_path, body)
    assert result.returncode == 1
    assert "count/min" in result.stderr and "fhirTemplate" in result.stderr
    after = requests.get(f"{server_process.root}/ingest/templates", headers=bearer, timeout=10)
    assert after.status_code == before.status_code
    if before.status_code == 200:
        assert after.json()["version"] == before.json()["version"]
