"""A local MLflow tracking server: SQLite backend, artifacts in the experiment folder, loopback.

Started lean (no job execution, one worker): ~4 s and ~0.5 GB instead of 15 processes.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from hpsearch.errors import HpsearchError

logger = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class TrackingServer:
    """A running MLflow server process; ``stop()`` ends it."""

    process: subprocess.Popen[bytes]
    host: str
    port: int
    folder: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def is_healthy(self, timeout_s: float = 2.0) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=timeout_s) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def stop(self, timeout_s: float = 15.0) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout_s)

    def __enter__(self) -> TrackingServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_server(
    folder: str | Path,
    host: str = "127.0.0.1",
    port: int | None = None,
    timeout_s: float = 90.0,
    allowed_hosts: str | None = None,
) -> TrackingServer:
    """Start ``mlflow server`` with its store in `folder`; wait until /health answers."""
    folder = Path(folder).resolve()
    (folder / "artifacts").mkdir(parents=True, exist_ok=True)
    port = port or free_port(host)
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    command = [
        str(mlflow_bin) if mlflow_bin.exists() else "mlflow",
        "server",
        "--host", host,
        "--port", str(port),
        "--workers", "1",
        "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
        "--artifacts-destination", str(folder / "artifacts"),
        "--serve-artifacts",
    ]
    if allowed_hosts:
        command += ["--allowed-hosts", allowed_hosts]
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    log = open(folder / "server.log", "ab")  # noqa: SIM115 - the server process owns it
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    server = TrackingServer(process, host, port, folder)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise HpsearchError(
                f"the MLflow server exited with code {process.returncode}; see {folder / 'server.log'} "
                f"(is port {port} taken?)"
            )
        if server.is_healthy():
            logger.info("MLflow tracking server at %s (store %s)", server.url, folder)
            return server
        time.sleep(0.5)
    server.stop()
    raise HpsearchError(f"the MLflow server did not answer within {timeout_s:.0f} s; see {folder / 'server.log'}")
