"""What the benchmarks share: the server process, timing and statistics, where the code and results are.

Imported by bench/search_bench.py and bench/ingest_bench.py (run as scripts: bench/ is on sys.path).
"""

import contextlib
import importlib.metadata
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from fhir_iomt.store.embedded import free_port

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"


def env_int(name, default):
    """An integer from the environment (unset or empty: the default)."""
    return int(os.environ.get(name) or default)


# Timing and statistics -----------------------------------------------------------


def timed(call):
    """(milliseconds, value) of one call."""
    started = time.perf_counter_ns()
    value = call()
    return (time.perf_counter_ns() - started) / 1e6, value


def percentile(values, fraction):
    ordered = sorted(values)
    if not ordered:
        return None
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(samples):
    return {
        "n": len(samples),
        "p50": percentile(samples, 0.50),
        "p90": percentile(samples, 0.90),
        "p99": percentile(samples, 0.99),
        "mean": sum(samples) / len(samples) if samples else None,
        "min": min(samples, default=None),
        "max": max(samples, default=None),
    }


# Processes ------------------------------------------------------------------------


def start_server(uri, database, log_path):
    """`fhir-iomt serve` as `make run` starts it (no --demo), on MONGODB_URI/`database`; waits for /readyz.

    Returns (process, base URL). The server creates the indexes before it listens.
    """
    port = free_port()
    # Long runs: one token for the whole benchmark (the default backend token lives 5 minutes).
    environment = dict(os.environ, MONGODB_URI=uri, FHIR_IOMT_MONGODB_DB=database,
                       FHIR_IOMT_BACKEND_TOKEN_SECONDS="86400")
    environment.pop("FHIR_IOMT_PUBLIC_BASE_URL", None)
    executable = Path(sys.executable).with_name("fhir-iomt")
    log = open(log_path, "ab")  # noqa: SIM115 - owned by the child
    process = subprocess.Popen(
        [str(executable), "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    log.close()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}: {Path(log_path).read_text()}")
        try:
            if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                return process, base
        except requests.RequestException:
            pass
        time.sleep(0.2)
    stop_server(process)
    raise RuntimeError(f"the server was not ready within 120 s: {Path(log_path).read_text()}")


def bench_token(uri, database, base, scope, folder):
    """A real access token: a backend client registered with a new key, then client_credentials at `base`."""
    import json

    from joserfc.jwk import ECKey

    from fhir_iomt import create_app
    from fhir_iomt.auth.demo import request_backend_token

    key = ECKey.generate_key("P-384", auto_kid=True)
    app = create_app({"MONGODB_URI": uri, "MONGODB_DB": database})
    auth = app.extensions["fhir_iomt"].auth
    client_id = auth.register_client("benchmark", scope, jwks={"keys": [key.as_dict(private=False)]})["client_id"]
    app.extensions["fhir_iomt"].close()
    key_file = Path(folder) / "bench-key.jwk.json"
    key_file.write_text(json.dumps(key.as_dict(private=True)))
    return request_backend_token({"client_id": client_id, "key_file": str(key_file),
                                  "token_url": f"{base}/auth/token", "scope": scope})


def stop_server(process):
    """SIGTERM to the gunicorn arbiter (it stops its workers); SIGKILL the group if it lingers."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _rss_kib(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid):
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            found += [int(child) for child in task.read_text().split()]
    return found


def process_tree_rss(pid):
    """RSS in MiB of a process and its descendants, per pid."""
    pids, pending = [], [pid]
    while pending:
        current = pending.pop()
        pids.append(current)
        pending += _children(current)
    return {str(each): round(_rss_kib(each) / 1024, 1) for each in pids}


# What ran ---------------------------------------------------------------------------


def machine():
    """Python, CPUs and nx-27017 version, for the results file."""
    return {"python": platform.python_version(), "cpus": os.cpu_count(),
            "nx_27017": importlib.metadata.version("nx-27017")}


def code_version():
    """The commit, and whether the fhir_iomt package that runs differs from it."""
    import fhir_iomt

    package = Path(fhir_iomt.__file__).resolve().parent
    version = {"fhir_iomt": str(package), "commit": None, "uncommitted_changes": None}
    try:
        version["commit"] = _git("rev-parse", "HEAD")
        if package.is_relative_to(ROOT):
            version["uncommitted_changes"] = bool(_git("status", "--porcelain", "--", str(package)))
    except (OSError, subprocess.CalledProcessError):
        pass
    return version


def describe_code(code):
    return (f"code: {code['fhir_iomt']} at {code['commit']}"
            f"{' with uncommitted changes' if code['uncommitted_changes'] else ''}")


def _git(*arguments):
    return subprocess.run(["git", *arguments], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()
