"""Static checks of the deployment files in deploy/ (no Docker needed)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
MOSQUITTO_CONF = DEPLOY / "mosquitto" / "mosquitto.conf"
K8S = DEPLOY / "k8s"

REST_PORTS = {"registry": 8001, "subsidy": 8002, "dispatch": 8003, "telemetry": 8004}
EXPECTED_SERVICES = {
    "postgres",
    "mosquitto",
    "migrate",
    "registry",
    "subsidy",
    "dispatch",
    "telemetry",
    "ingest",
    "ingest-urgent",
    "emulator",
}


@pytest.fixture(scope="module")
def services() -> dict:
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(compose, dict)
    return compose["services"]


def _published_ports(service: dict) -> list[tuple[int, int]]:
    """(host, container) pairs from short ("8001:8001") or long port syntax."""
    pairs = []
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            pairs.append((int(entry["published"]), int(entry["target"])))
        else:
            host, _, container = str(entry).rpartition(":")
            container = container.split("/")[0]
            pairs.append((int(host.rpartition(":")[2] or container), int(container)))
    return pairs


def test_compose_has_every_service(services):
    assert set(services) >= EXPECTED_SERVICES


def test_every_service_with_a_port_has_a_healthcheck(services):
    with_ports = {name for name, svc in services.items() if svc.get("ports")}
    assert with_ports >= {"postgres", "mosquitto", *REST_PORTS}
    for name in with_ports:
        check = services[name].get("healthcheck")
        assert check, f"{name} publishes a port but has no healthcheck"
        assert check["test"][0] in {"CMD", "CMD-SHELL"}, name


@pytest.mark.parametrize(("name", "port"), sorted(REST_PORTS.items()))
def test_rest_service_port_healthcheck_and_order(services, name, port):
    svc = services[name]
    assert _published_ports(svc) == [(port, port)]
    test = " ".join(svc["healthcheck"]["test"])
    assert f"http://localhost:{port}/healthz" in test
    assert "curl" not in test  # the slim image has no curl
    assert svc["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert svc["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    assert f"services.{name}.app:create_app" in svc["command"]
    assert "--factory" in svc["command"]
    env = svc["environment"]
    assert env["ELDERCARE_DATABASE_URL"] == (
        "postgresql://eldercare:eldercare@postgres:5432/eldercare"
    )
    for other, other_port in REST_PORTS.items():
        assert env[f"ELDERCARE_{other.upper()}_URL"] == f"http://{other}:{other_port}"
    assert "ELDERCARE_MQTT_URL" in env
    assert "dev-only" in env["ELDERCARE_JWT_SECRET"]


def test_migrate_job_waits_for_healthy_postgres(services):
    migrate = services["migrate"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert migrate["command"] == ["eldercare", "migrate"]
    assert migrate["restart"] == "no"
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])


def test_ingest_and_emulator(services):
    ingest = services["ingest"]
    assert ingest["command"] == ["eldercare", "ingest", "--only", "bulk"]
    urgent = services["ingest-urgent"]
    assert urgent["command"][:4] == ["eldercare", "ingest", "--only", "urgent"]
    assert ingest["deploy"]["replicas"] == 2
    assert "ports" not in ingest  # replicas would clash on a published port
    emulator = services["emulator"]
    assert emulator["command"][:2] == ["eldercare", "emulate"]
    assert "--register" in emulator["command"]
    assert emulator["profiles"] == ["demo"]


def test_brokers_and_database_images(services):
    assert services["postgres"]["image"] == "postgres:16"
    assert services["mosquitto"]["image"] == "eclipse-mosquitto:2"
    targets = {str(v).split(":")[1] for v in services["mosquitto"]["volumes"]}
    assert {
        "/mosquitto/config/mosquitto.conf",
        "/mosquitto/config/passwd",
        "/mosquitto/config/acl",
    } <= targets


def test_dockerfile_runs_as_non_root_with_a_command():
    text = DOCKERFILE.read_text(encoding="utf-8")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines[0].startswith("FROM python:3.11-slim")
    assert any(ln.startswith(("CMD ", "ENTRYPOINT ")) for ln in lines)
    users = [ln.split()[1] for ln in lines if ln.startswith("USER ")]
    assert users, "Dockerfile has no USER instruction"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert re.search(r"pip install .*\.\s*$", text, re.MULTILINE)


def test_mosquitto_conf_requires_auth_and_acl():
    settings: dict[str, str] = {}
    for line in MOSQUITTO_CONF.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            settings.setdefault(key, value.strip())
    assert settings["allow_anonymous"] == "false"
    assert settings["password_file"] == "/mosquitto/config/passwd"
    assert settings["acl_file"] == "/mosquitto/config/acl"
    assert settings["listener"] == "1883"
    assert settings["set_tcp_nodelay"] == "true"


def test_k8s_manifests_parse_and_are_typed():
    files = sorted(K8S.glob("*.y*ml"))
    assert files, "no manifests under deploy/k8s"
    kinds = set()
    for path in files:
        docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
        assert docs, f"{path.name} is empty"
        for doc in docs:
            assert doc.get("apiVersion"), path.name
            assert doc.get("kind"), path.name
            kinds.add((doc["kind"], doc.get("metadata", {}).get("name")))
    for name in REST_PORTS:
        assert ("Deployment", name) in kinds
        assert ("Service", name) in kinds
    assert ("StatefulSet", "ingest") in kinds
    assert {"Namespace", "Job", "Secret"} <= {kind for kind, _ in kinds}


def test_k8s_rest_probes_and_ingest_replicas():
    for name, port in REST_PORTS.items():
        deployment, service = yaml.safe_load_all((K8S / f"{name}.yaml").read_text("utf-8"))
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["ports"][0]["containerPort"] == port
        assert service["spec"]["ports"][0]["port"] == port
    docs = {
        d["metadata"]["name"]: d
        for d in yaml.safe_load_all((K8S / "ingest.yaml").read_text("utf-8"))
        if d["kind"] == "StatefulSet"
    }
    # stable pod names = stable MQTT client ids for the persistent sessions
    assert set(docs) == {"ingest", "ingest-urgent"}
    assert docs["ingest"]["spec"]["replicas"] == 2
    env = docs["ingest"]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env[0]["name"] == "ELDERCARE_INGEST_CLIENT_ID"


def test_mosquitto_conf_matches_what_the_ingest_needs():
    conf = (DEPLOY / "mosquitto" / "mosquitto.conf").read_text()
    settings = dict(
        line.split(None, 1) for line in conf.splitlines() if line and not line.startswith("#")
    )
    assert int(settings["max_inflight_messages"]) >= 1000  # default 20 throttles ingest
    assert int(settings["max_queued_messages"]) >= 100_000
    assert settings["set_tcp_nodelay"] == "true"
    assert settings["persistence"] == "true"  # persistent sessions survive broker restarts
