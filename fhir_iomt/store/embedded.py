"""Start and stop the embedded MongoDB wire-protocol server (nx-27017) as a child process."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from pymongo import MongoClient
from pymongo.errors import PyMongoError


def free_port(host="127.0.0.1"):
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _executable():
    found = Path(sys.executable).with_name("nx-27017")
    return str(found) if found.exists() else shutil.which("nx-27017") or "nx-27017"


class EmbeddedMongo:
    """One nx-27017 server with its data, log and pid files under `data_dir`."""

    def __init__(self, data_dir, host="127.0.0.1", port=None):
        self.data_dir = Path(data_dir).resolve()
        self.host = host
        self.port = port or free_port(host)
        self.process = None

    @property
    def uri(self):
        """The MongoDB URI of this server."""
        return f"mongodb://{self.host}:{self.port}/"

    def start(self, timeout=30.0):
        """Start the server and wait until it answers a ping."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            _executable(),
            "--data-dir", str(self.data_dir),
            "--host", self.host,
            "-p", str(self.port),
            "--log-file", str(self.data_dir / "nx.log"),
            "--pid-file", str(self.data_dir / "nx.pid"),
        ]
        output = open(self.data_dir / "nx.out", "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
        output.close()
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"nx-27017 exited with {self.process.returncode}; see {self.data_dir}/nx.out"
                )
            if self.answers():
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"nx-27017 did not answer on {self.uri} within {timeout:.0f}s")

    def answers(self):
        """True when the server answers a ping."""
        client = MongoClient(self.uri, serverSelectionTimeoutMS=300, connectTimeoutMS=300)
        try:
            client.admin.command("ping")
            return True
        except PyMongoError:
            return False
        finally:
            client.close()

    def stop(self, timeout=10.0):
        """Stop the server (SIGTERM, then SIGKILL if it lingers)."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
