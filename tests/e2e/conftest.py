"""End-to-end fixtures: the real `fhir-iomt serve` process, started as a user starts it.

The server runs its own embedded nx-27017 database (MONGODB_URI is removed from
its environment) with data under a pytest temporary directory. Stopping sends
SIGTERM to the server process only, as `kill PID`, systemd or a container runtime
would, and checks that gunicorn and the embedded database are both gone.
"""

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
EXECUTABLE = Path(sys.executable).with_name("fhir-iomt")
DB_URI_PATTERN = re.compile(r"embedded nx-27017 at mongodb://([\d.]+):(\d+)/")


def free_port():
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_open(port, host="127.0.0.1"):
    """True when something accepts TCP connections on the port."""
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


def start_time(pid):
    """Kernel start time of a live (non-zombie) process, or None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    state, start = fields[0], fields[19]
    return None if state in ("Z", "X") else start


def descendants(pid):
    """{pid: start time} of every live descendant of a process (read from /proc)."""
    children = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = {}, [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            start = start_time(child)
            if start is not None:
                found[child] = start
                todo.append(child)
    return found


def alive(pid, start):
    """True when the process `pid` started at `start` still runs (pid reuse is not a false alarm)."""
    return start_time(pid) == start


class ServerProcess:
    """One `fhir-iomt serve` process over a data directory."""

    def __init__(self, data_dir, port=None, extra_args=()):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self.process = None
        self.known = {}  # {pid: start time} of every process seen under this server
        self.log_path = self.data_dir / f"serve-{self.port}-{uuid.uuid4().hex[:6]}.log"

    @property
    def root(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def base(self):
        """The FHIR base URL."""
        return f"{self.root}/fhir"

    @property
    def db_pid_file(self):
        return self.data_dir / "db" / "nx.pid"

    def output(self):
        """What the server printed, plus the tail of the embedded database's own output."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        for name in ("nx.out", "nx.log"):
            path = self.data_dir / "db" / name
            if path.exists():
                tail = path.read_text(errors="replace")[-3000:]
                text += f"\n--- {path} (tail) ---\n{tail}"
        return text

    def launch(self):
        """Start `fhir-iomt serve` in its own session, its output going to a log file; no waiting."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.pop("MONGODB_URI", None)
        env["FHIR_IOMT_DATA_DIR"] = str(self.data_dir)
        env["PYTHONUNBUFFERED"] = "1"
        command = [str(EXECUTABLE), "serve", "--port", str(self.port), *self.extra_args]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=env, cwd=self.data_dir, start_new_session=True,
            )
        return self

    def start(self, timeout=READY_TIMEOUT):
        """Start the server and wait until /readyz answers 200; pytest.fail with its output if not."""
        self.launch()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"fhir-iomt serve exited with {self.process.returncode} before it was ready:\n"
                            f"{self.output()}")
            try:
                if requests.get(f"{self.root}/readyz", timeout=2).status_code == 200:
                    self.snapshot()
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.kill()
        pytest.fail(f"fhir-iomt serve was not ready within {timeout:.0f}s:\n{self.output()}")

    def db_port(self):
        """Port of the embedded database, read from the URL the server printed."""
        match = DB_URI_PATTERN.search(self.log_path.read_text())
        return int(match.group(2)) if match else None

    def db_pid(self):
        text = self.db_pid_file.read_text().strip() if self.db_pid_file.exists() else ""
        return int(text) if text.isdigit() else None

    def snapshot(self):
        """The live descendants of the server now, remembered for a last-resort cleanup."""
        tree = descendants(self.process.pid) if self.process.poll() is None else {}
        self.known.update(tree)
        return tree

    def stop(self, timeout=STOP_TIMEOUT, signal_number=signal.SIGTERM, group=False):
        """SIGTERM the server process and return a report of what was left behind.

        `group=True` signals the whole process group instead, as Ctrl-C in a terminal does.

        The report is a dict: returncode (None if it did not exit in time), leftover
        (descendant pids still running), db_pid_alive, db_pid_file_exists,
        http_port_open, db_port_open. The caller asserts; `kill` cleans up after.
        """
        if self.process is None:
            return None
        tree = self.snapshot()
        db_pid = self.db_pid()
        db_start = start_time(db_pid) if db_pid else None
        db_port = self.db_port()
        if group:
            os.killpg(self.process.pid, signal_number)
        else:
            self.process.send_signal(signal_number)
        try:
            returncode = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            returncode = None
        # Children are reaped by their parent (or init) shortly after it exits.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(alive(p, s) for p, s in tree.items()):
            time.sleep(0.1)
        return {
            "returncode": returncode,
            "tree": sorted(tree),
            "leftover": sorted(p for p, s in tree.items() if alive(p, s)),
            "db_pid": db_pid,
            "db_pid_alive": bool(db_pid and db_start and alive(db_pid, db_start)),
            "db_pid_file_exists": self.db_pid_file.exists(),
            "http_port_open": port_open(self.port),
            "db_port_open": bool(db_port and port_open(db_port)),
        }

    def kill(self):
        """Last-resort cleanup of this server's own processes (by their ids) after a failure."""
        if self.process is None:
            return
        self.snapshot()
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        for pid, start in self.known.items():
            if alive(pid, start):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def assert_clean_stop(server, report):
    """A SIGTERM stopped the server, its gunicorn workers and its embedded database."""
    details = f"{report}\n--- server output ---\n{server.output()}"
    assert report["returncode"] == 0, f"fhir-iomt serve did not exit 0 after SIGTERM: {details}"
    assert report["leftover"] == [], f"processes left running after SIGTERM: {details}"
    assert report["db_pid"] is not None, f"no pid in {server.db_pid_file} while running: {details}"
    assert not report["db_pid_alive"], f"nx-27017 (pid {report['db_pid']}) still runs: {details}"
    assert not report["db_pid_file_exists"], f"{server.db_pid_file} left behind: {details}"
    assert not report["http_port_open"], f"HTTP port {server.port} still open: {details}"
    assert not report["db_port_open"], f"database port still open: {details}"


@pytest.fixture(scope="session")
def server_process(tmp_path_factory):
    """The session's `fhir-iomt serve` process, checked for a clean stop at teardown."""
    server = ServerProcess(tmp_path_factory.mktemp("fhir-iomt-data"))
    server.start()
    try:
        yield server
        report = server.stop()
        assert_clean_stop(server, report)
    finally:
        server.kill()


@pytest.fixture(scope="session")
def server_auth(server_process):
    """Registrations in the session server's own database, and real tokens from its token endpoint."""
    from .oauth_helpers import ServerAuth  # imports this module: not at the top

    admin = ServerAuth(server_process)
    try:
        yield admin
    finally:
        admin.close()


@pytest.fixture()
def bearer(server_auth):
    """{"Authorization": "Bearer ..."}: a fresh token of a backend client holding every system scope."""
    return server_auth.headers()


@pytest.fixture(scope="session")
def fhir_base(server_process):
    """FHIR base URL of the session's server, e.g. http://127.0.0.1:PORT/fhir."""
    return server_process.base


@pytest.fixture()
def start_server(tmp_path):
    """Factory for extra servers a test starts and stops itself (restart, SIGTERM tests)."""
    started = []

    def start(data_dir=None, wait=True, **kwargs):
        server = ServerProcess(data_dir or tmp_path / "data", **kwargs)
        started.append(server)
        return server.start() if wait else server.launch()

    yield start
    for server in started:
        server.kill()


@pytest.fixture()
def tag():
    """A short unique marker for the data of one test (shared server, no cross-test leaks)."""
    return uuid.uuid4().hex[:10]
