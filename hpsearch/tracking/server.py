"""A local MLflow tracking server: SQLite backend, artifacts in the experiment folder, loopback.

Started lean (no job execution, one worker): ~4 s and ~0.5 GB instead of 15 processes.

Choosing a free port and then starting a server on it races with every other process that binds
ports (a Ray on the same machine can take it in between). So a start only counts when the
answer on the port is MLflow's *and* our process is still alive; an answer that is not MLflow's
(another program, binary garbage) or a server process that exits means the port went elsewhere:
the process group is stopped and, when the port was ours to choose, another port is tried. A
port the user named is checked first and refused with a message when taken. A failed or
interrupted start never leaves a server process behind.
"""

from __future__ import annotations

import enum
import errno
import http.client
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hpsearch.errors import HpsearchError

logger = logging.getLogger(__name__)

#: How many ports a start with no port given tries before giving up.
PORT_ATTEMPTS = 4


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (another process may take it at any moment)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_taken(host: str, port: int) -> bool:
    """True when another process holds ``port`` on ``host`` (binding it fails with EADDRINUSE)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT leftovers are not "taken"
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise HpsearchError(f"cannot bind {host}:{port} ({exc}): check --host") from exc
    return False


class Answer(enum.Enum):
    """What a port answered to ``GET /health``."""

    MLFLOW = "mlflow"  # HTTP 200 with MLflow's body "OK"
    NOTHING = "nothing"  # connection refused or timed out: nobody listens (yet)
    OTHER = "other"  # something else listens: another HTTP server, or not HTTP at all


def probe(host: str, port: int, timeout_s: float = 2.0) -> Answer:
    """Ask ``http://host:port/health`` and classify the answer; never raises."""
    connection = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        connection.request("GET", "/health")
        response = connection.getresponse()
        body = response.read(64)
    except (ConnectionRefusedError, socket.timeout, TimeoutError):
        return Answer.NOTHING
    except (http.client.HTTPException, OSError, ValueError, UnicodeError):
        # BadStatusLine, RemoteDisconnected, a reset: a process that does not speak MLflow's HTTP
        return Answer.OTHER
    finally:
        connection.close()
    return Answer.MLFLOW if response.status == 200 and body.strip() == b"OK" else Answer.OTHER


@dataclass
class TrackingServer:
    """A running MLflow server process (leader of its own process group); ``stop()`` ends it."""

    process: subprocess.Popen[bytes]
    host: str
    port: int
    folder: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def ui_url(self, experiment_id: str | None = None) -> str:
        """Link to the UI's runs table (of one experiment), not MLflow's GenAI overview."""
        if experiment_id is None:
            return self.url
        return experiment_runs_url(self.url, experiment_id)

    def is_healthy(self, timeout_s: float = 2.0) -> bool:
        """True when our process is alive and the port answers as MLflow does."""
        return self.process.poll() is None and probe(self.host, self.port, timeout_s) is Answer.MLFLOW

    def stop(self, timeout_s: float = 15.0) -> None:
        """End the whole process group (also workers left by a leader that already exited)."""
        stop_process_group(self.process, timeout_s)

    def __enter__(self) -> TrackingServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def experiment_runs_url(base_url: str, experiment_id: str, comparison: bool = False) -> str:
    """The UI link that opens an experiment's runs table (MLflow 3 opens a GenAI page otherwise);
    ``comparison``: on hpsearch's saved comparison view (see :mod:`hpsearch.tracking.views`)."""
    link = f"{base_url.rstrip('/')}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
    if comparison:
        from hpsearch.tracking.views import view_link_suffix

        link += view_link_suffix()
    return link


def stop_process_group(process: subprocess.Popen[bytes], timeout_s: float = 15.0) -> None:
    """SIGTERM the process group led by ``process``, SIGKILL after ``timeout_s``; idempotent."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break  # no member of the group is left
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            continue
        if not _group_alive(process.pid):
            break
        time.sleep(0.2)
    if process.poll() is None:  # pragma: no cover - only if SIGKILL itself failed
        process.wait(timeout_s)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover
        return True
    return True


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2:].split()  # after "pid (comm) "; fields[2] is the pgrp
            if len(fields) > 2 and int(fields[2]) == pgid:
                members.append(int(entry.name))
    return members


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        pass
    return inodes


def listener_is_ours(pgid: int, port: int) -> bool | None:
    """Whether the socket listening on ``port`` belongs to process group ``pgid`` (None: unknown).

    Reads Linux's /proc; elsewhere (or without permission) the answer is None.
    """
    listeners = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                listeners.add(fields[9])
    if not listeners:
        return None
    ours = set().union(*(_socket_inodes(pid) for pid in _group_members(pgid))) if Path("/proc").is_dir() else set()
    return bool(listeners & ours)


def _command(folder: Path, host: str, port: int, allowed_hosts: str | None) -> list[str]:
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
    return command


class _PortLost(Exception):
    """The port went to another process (it answered, or our server could not bind it)."""


def _spawn_and_wait(folder: Path, host: str, port: int, timeout_s: float, allowed_hosts: str | None) -> TrackingServer:
    """Start one server on ``port``; wait for MLflow's answer. Stops the process on any failure."""
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    with open(folder / "server.log", "ab") as log:
        process = subprocess.Popen(  # noqa: S603 - our own mlflow executable, no shell
            _command(folder, host, port, allowed_hosts),
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
    logger.debug("started MLflow server process %d on %s:%d", process.pid, host, port)
    server = TrackingServer(process, host, port, folder)
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            answer = probe(host, port)
            if process.poll() is not None:
                raise _PortLost(f"the MLflow server on port {port} exited with code {process.returncode}")
            if answer is Answer.MLFLOW:
                if listener_is_ours(process.pid, port) is False:
                    raise _PortLost(f"port {port} answers as MLflow, but from another program's server")
                return server
            if answer is Answer.OTHER:
                raise _PortLost(f"port {port} answers, but not as MLflow: another program holds it")
            time.sleep(0.5)
        raise HpsearchError(
            f"the MLflow server did not answer within {timeout_s:.0f} s; see {folder / 'server.log'}"
        )
    except BaseException:
        server.stop()
        raise


def start_server(
    folder: str | Path,
    host: str = "127.0.0.1",
    port: int | None = None,
    timeout_s: float = 90.0,
    allowed_hosts: str | None = None,
    choose_port: Callable[[str], int] = free_port,
) -> TrackingServer:
    """Start ``mlflow server`` with its store in `folder`; return once it answers as MLflow.

    ``port`` None (or 0): ``choose_port(host)`` picks one, and a port lost to another process is
    replaced by a new one, up to :data:`PORT_ATTEMPTS` times. A port given explicitly is refused
    with a message when taken. Example::

        with start_server("results/mlruns") as server:
            print(server.url)
    """
    folder = Path(folder).resolve()
    (folder / "artifacts").mkdir(parents=True, exist_ok=True)
    if port:
        if port_is_taken(host, port):
            raise HpsearchError(
                f"port {port} on {host} is taken by another program: choose another one with "
                f"--port (e.g. --port {free_port(host)})"
            )
        try:
            server = _spawn_and_wait(folder, host, port, timeout_s, allowed_hosts)
        except _PortLost as exc:
            raise HpsearchError(f"{exc}; choose another port with --port; server log: {folder / 'server.log'}") from exc
    else:
        server = _start_on_any_port(folder, host, timeout_s, allowed_hosts, choose_port)
    logger.info("MLflow tracking server at %s (store %s)", server.url, folder)
    return server


def _start_on_any_port(folder: Path, host: str, timeout_s: float, allowed_hosts: str | None,
                       choose_port: Callable[[str], int]) -> TrackingServer:
    reasons: list[str] = []
    for _ in range(PORT_ATTEMPTS):
        candidate = choose_port(host)
        try:
            return _spawn_and_wait(folder, host, candidate, timeout_s, allowed_hosts)
        except _PortLost as exc:
            logger.info("%s; trying another port", exc)
            reasons.append(str(exc))
    raise HpsearchError(
        f"could not start an MLflow server after {PORT_ATTEMPTS} ports: {'; '.join(reasons)}; "
        f"see {folder / 'server.log'}"
    )


def answers_as_mlflow(url: str, timeout_s: float = 2.0) -> bool:
    """True when ``http://host:port`` answers /health as MLflow does (never raises, also not on
    a non-HTTP answer such as http.client.BadStatusLine)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname is None:
        return False
    try:
        port = parts.port or 80
    except ValueError:
        return False
    return probe(parts.hostname, port, timeout_s) is Answer.MLFLOW


def runs_table_link(server_url: str, experiment_name: str) -> str:
    """The UI link to the runs table of ``experiment_name`` on ``server_url`` (the bare URL when
    the experiment cannot be looked up)."""
    try:
        from mlflow.tracking import MlflowClient

        found = MlflowClient(server_url).get_experiment_by_name(experiment_name)
    except Exception as exc:  # noqa: BLE001 - a link is a convenience: never fail over it
        logger.debug("no experiment id for %r on %s: %s", experiment_name, server_url, exc)
        return server_url
    if found is None:
        return server_url
    from hpsearch.tracking.views import save_comparison_view

    save_comparison_view(MlflowClient(server_url), found.experiment_id)  # experiments made before views
    return experiment_runs_url(server_url, found.experiment_id, comparison=True)
