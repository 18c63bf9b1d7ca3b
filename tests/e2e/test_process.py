"""The server process itself: data survives a restart, SIGTERM stops gunicorn and the database."""

import signal
import socket
import subprocess
import time

import pytest
import requests

from .builders import BODY_WEIGHT, hours_after_start, patient, vital_sign
from .conftest import alive, assert_clean_stop, start_time
from .oauth_helpers import ServerAuth

pytestmark = pytest.mark.e2e

FHIR_JSON = {"Accept": "application/fhir+json", "Content-Type": "application/fhir+json"}


def _bearer(server):
    """Authorization header with a real token of a backend client registered in this server's database."""
    admin = ServerAuth(server)
    try:
        return admin.headers()
    finally:
        admin.close()


def _post(base, resource, bearer):
    url = f"{base}/{resource['resourceType']}"
    response = requests.post(url, json=resource, headers={**FHIR_JSON, **bearer}, timeout=30)
    assert response.status_code == 201, response.text
    return response.json()


def test_data_survives_a_restart(start_server, tmp_path, tag):
    data_dir = tmp_path / "data"
    first = start_server(data_dir)
    bearer = _bearer(first)
    stored = _post(first.base, patient(tag), bearer)
    reading = _post(first.base, vital_sign(BODY_WEIGHT, stored["id"], hours_after_start(0), 71.3), bearer)
    assert_clean_stop(first, first.stop())

    second = start_server(data_dir)
    bearer = _bearer(second)
    response = requests.get(f"{second.base}/Patient/{stored['id']}", headers={**FHIR_JSON, **bearer}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json() == stored
    found = requests.get(f"{second.base}/Observation", params={"patient": stored["id"]},
                         headers={**FHIR_JSON, **bearer}, timeout=30).json()
    assert [e["resource"]["id"] for e in found["entry"]] == [reading["id"]]
    assert_clean_stop(second, second.stop())


def test_sigterm_stops_gunicorn_and_the_embedded_database(start_server):
    server = start_server()
    # gunicorn reports ready before it has forked every worker: on a busy machine, give them a moment.
    deadline = time.monotonic() + 20
    while len(tree := server.snapshot()) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    db_pid = server.db_pid()
    assert db_pid in tree, f"nx-27017 (pid {db_pid}) is not a child of the server: {tree}"
    assert len(tree) >= 3, f"expected the database and 2 gunicorn workers under the server: {tree}"
    assert requests.get(f"{server.root}/readyz", timeout=10).status_code == 200
    report = server.stop()
    assert_clean_stop(server, report)
    assert db_pid in report["tree"]


def test_ctrl_c_stops_gunicorn_and_the_embedded_database(start_server):
    """Ctrl-C in a terminal sends SIGINT to the foreground process group (master and workers)."""
    server = start_server()
    tree = server.snapshot()
    report = server.stop(signal_number=signal.SIGINT, group=True)
    assert_clean_stop(server, report)
    assert sorted(tree) == report["tree"]


def test_port_in_use_fails_and_leaves_no_database_behind(start_server, tmp_path):
    """When gunicorn cannot bind, serve exits non-zero and stops the database it started."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = start_server(tmp_path / "busy", wait=False, port=port)
        deadline = time.monotonic() + 10
        db_pid = db_start = None
        while time.monotonic() < deadline and server.process.poll() is None and db_start is None:
            db_pid = server.db_pid()
            db_start = start_time(db_pid) if db_pid else None
            time.sleep(0.05)
        try:
            returncode = server.process.wait(60)  # gunicorn retries the bind for about 5 s
        except subprocess.TimeoutExpired:
            pytest.fail(f"serve kept running although port {port} is taken:\n{server.output()}")
    output = server.output()
    assert returncode != 0, output
    assert str(port) in output and "in use" in output, output
    assert db_start is not None, f"the embedded database never started:\n{output}"
    assert not alive(db_pid, db_start), f"nx-27017 (pid {db_pid}) outlived the failed server:\n{output}"
    assert not server.db_pid_file.exists()
