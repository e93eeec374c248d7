"""Starting the MLflow server when another program holds the port: no race, nothing left behind."""

from __future__ import annotations

import logging
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hpsearch.errors import HpsearchError
from hpsearch.tracking.server import Answer, answers_as_mlflow, free_port, listener_is_ours, probe, start_server

pytestmark = pytest.mark.mlflow


class GarbageServer:
    """A listening socket that answers every connection with bytes that are not HTTP."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = int(self.sock.getsockname()[1])
        self.connections = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.sendall(b"\x00\x01\x02RAY-BINARY-PROTOCOL\xff\xfe\r\n\r\n")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def garbage() -> Iterator[GarbageServer]:
    server = GarbageServer()
    try:
        yield server
    finally:
        server.close()


def _spawned_pids(caplog: pytest.LogCaptureFixture) -> list[int]:
    return [int(m.group(1)) for r in caplog.records
            if (m := re.search(r"started MLflow server process (\d+)", r.getMessage()))]


def _alive_in_groups(pgids: list[int]) -> list[int]:
    """PIDs of live (non-zombie) processes whose process group is one of ``pgids``."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if fields[0] != "Z" and int(fields[2]) in pgids:
            alive.append(int(entry.name))
    return alive


def test_probe_calls_garbage_other_and_a_closed_port_nothing(garbage: GarbageServer) -> None:
    assert probe("127.0.0.1", garbage.port) is Answer.OTHER  # http.client.BadStatusLine inside
    assert probe("127.0.0.1", free_port()) is Answer.NOTHING
    assert garbage.connections >= 1
    assert not answers_as_mlflow(f"http://127.0.0.1:{garbage.port}")
    assert not answers_as_mlflow("http://127.0.0.1:notaport") and not answers_as_mlflow("sqlite:///x.db")


def test_explicit_taken_port_is_refused_with_a_hint(garbage: GarbageServer, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="hpsearch.tracking.server")
    with pytest.raises(HpsearchError, match=rf"port {garbage.port} .*taken.*--port"):
        start_server(tmp_path / "store", port=garbage.port)
    assert _spawned_pids(caplog) == []  # refused before starting anything


def test_lost_port_is_replaced_and_the_failed_attempt_leaves_no_process(
        garbage: GarbageServer, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The first chosen port is held by a garbage-answering socket (the race of a fresh clone)."""
    caplog.set_level(logging.DEBUG, logger="hpsearch.tracking.server")
    ports = iter([garbage.port])

    def choose(host: str) -> int:
        return next(ports, None) or free_port(host)

    server = start_server(tmp_path / "store", choose_port=choose)
    try:
        assert server.port != garbage.port
        assert server.is_healthy()
        assert listener_is_ours(server.process.pid, server.port) is True
        assert listener_is_ours(server.process.pid, garbage.port) is False  # the socket is this test's
        assert answers_as_mlflow(server.url)
        spawned = _spawned_pids(caplog)
        assert len(spawned) == 2 and spawned[-1] == server.process.pid
        assert _alive_in_groups(spawned[:1]) == []  # the failed attempt's processes are gone
    finally:
        server.stop()
    assert _alive_in_groups(spawned) == []


def test_every_port_lost_fails_cleanly(garbage: GarbageServer, tmp_path: Path,
                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="hpsearch.tracking.server")
    with pytest.raises(HpsearchError, match="could not start an MLflow server"):
        start_server(tmp_path / "store", choose_port=lambda host: garbage.port)
    spawned = _spawned_pids(caplog)
    assert len(spawned) >= 1
    assert _alive_in_groups(spawned) == []


def test_cli_ui_on_a_taken_port_says_so(garbage: GarbageServer, tmp_path: Path) -> None:
    cli = Path(sys.executable).with_name("hpsearch")
    done = subprocess.run([str(cli), "ui", "--folder", str(tmp_path / "ui"), "--port", str(garbage.port)],
                          capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert done.returncode == 2
    assert f"port {garbage.port}" in done.stderr and "--port" in done.stderr
    assert "Traceback" not in done.stderr
