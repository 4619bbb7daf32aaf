"""Static checks of the deployment files in deploy/ (no Docker needed): the compose file is
built as compose would (anchors, merge keys, ``${VAR…}`` interpolation from an env file), every
container's command names a module and factory that exist, and the secrets every replica must
share come from one place."""

from __future__ import annotations

import importlib
import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.config import MissingSecret, Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
MOSQUITTO_CONF = DEPLOY / "mosquitto" / "mosquitto.conf"
K8S = DEPLOY / "k8s"

ENV_EXAMPLE = DEPLOY / ".env.example"
ALL_REST_PORTS = {"registry": 8001, "subsidy": 8002, "dispatch": 8003, "telemetry": 8004}


def _built(name: str) -> bool:
    try:
        return importlib.util.find_spec(f"services.{name}.app") is not None
    except ModuleNotFoundError:
        return False


# The REST services that exist (have an app): deploy/ must start exactly these — none that is
# not there, and (once subsidy or dispatch lands) not forget the new one either.
REST_PORTS = {name: port for name, port in ALL_REST_PORTS.items() if _built(name)}
NOT_BUILT = set(ALL_REST_PORTS) - set(REST_PORTS)
EXPECTED_SERVICES = {
    "postgres",
    "mosquitto",
    "migrate",
    "ingest",
    "ingest-2",
    "ingest-urgent",
    "emulator",
}
EXPECTED_SERVICES |= set(REST_PORTS)
SHARED_SECRETS = ("ELDERCARE_JWT_SECRET", "ELDERCARE_PII_KEY", "ELDERCARE_PII_HASH_KEY")

_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


class Unset(Exception):
    pass


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?err}``,
    ``${VAR?err}`` and ``$$``, applied to every string of the document."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group(1), m.group(2), m.group(3)
        present = name in env and (env[name] != "" or not (op or "").startswith(":"))
        if present:
            return env[name]
        if op in (":?", "?"):
            raise Unset(f"{name}: {arg}")
        return (arg or "") if op in (":-", "-") else ""

    return _VAR.sub(one, value)


def read_env_file(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


def compose_config(env: dict[str, str]) -> dict:
    """The compose model after YAML anchors/merge keys and interpolation."""
    raw = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(raw, dict)
    return interpolate(raw, env)


@pytest.fixture(scope="module")
def services() -> dict:
    return compose_config(read_env_file(ENV_EXAMPLE))["services"]


def our_image(service: dict) -> bool:
    return service.get("image", "").startswith("eldercare") or "build" in service


def assert_command_exists(command: list[str], where: str) -> None:
    """The module and factory a uvicorn command names import; an `eldercare` command parses
    (sub-command and options) with the real CLI parser."""
    if command[0] == "uvicorn":
        assert "--factory" in command, where
        module, _, attr = command[command.index("--factory") + 1].partition(":")
        try:
            factory = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise AssertionError(f"{where}: {module}:{attr} does not exist ({exc})") from exc
        assert callable(factory), where
    elif command[0] == "eldercare":
        from services.cli import build_parser

        try:
            build_parser().parse_args(command[1:])
        except SystemExit as exc:
            raise AssertionError(f"{where}: `{' '.join(command)}` does not parse") from exc
    else:
        raise AssertionError(f"{where}: unknown command {command}")


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
    assert not NOT_BUILT & set(services)  # no container for a module that is not there
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
        "postgresql://eldercare:CHANGE_ME@postgres:5432/eldercare"  # from the env file
    )
    for other, other_port in ALL_REST_PORTS.items():
        assert env[f"ELDERCARE_{other.upper()}_URL"] == f"http://{other}:{other_port}"
    assert "ELDERCARE_MQTT_URL" in env
    assert env["ELDERCARE_ENV"] == "production"


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
    assert "ports" not in ingest  # replicas would clash on a published port
    # Every ingest has its own stable MQTT client id (persistent sessions; a changing id
    # would leave dormant members in the shared group), and none is scaled by replicas.
    ids = [
        svc["environment"]["ELDERCARE_INGEST_CLIENT_ID"]
        for svc in services.values()
        if svc.get("command", [None, None])[:2] == ["eldercare", "ingest"]
    ]
    assert len(ids) == 3 and len(set(ids)) == 3
    for svc in services.values():
        if svc.get("command", [None, None])[:2] == ["eldercare", "ingest"]:
            assert svc.get("deploy", {}).get("replicas", 1) == 1
            assert svc["stop_grace_period"]  # time for the graceful leave
    emulator = services["emulator"]
    assert emulator["command"][:2] == ["eldercare", "emulate"]
    assert "--register" in emulator["command"]
    assert "--speed" not in emulator["command"]  # real time: readings stamped now
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


def kustomized() -> list[dict]:
    """The documents `kubectl apply -k deploy/k8s` applies."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    docs = []
    for resource in kustomization["resources"]:
        docs += [d for d in yaml.safe_load_all((K8S / resource).read_text("utf-8")) if d]
    return docs


def workloads(docs: list[dict]) -> list[tuple[str, dict]]:
    """(name, pod spec) of every Deployment, StatefulSet and Job."""
    return [
        (d["metadata"]["name"], d["spec"]["template"]["spec"])
        for d in docs
        if d["kind"] in {"Deployment", "StatefulSet", "Job"}
    ]


def test_every_container_runs_a_module_that_exists(services):
    for name, svc in services.items():
        if our_image(svc):
            assert "command" in svc, f"compose {name} relies on the image's default"
            assert_command_exists(svc["command"], f"compose {name}")
    for name, pod in workloads(kustomized()):
        for container in pod["containers"]:
            assert_command_exists(container["command"], f"k8s {name}/{container['name']}")
    cmd = re.search(r"^CMD (\[.*\])$", DOCKERFILE.read_text(encoding="utf-8"), re.MULTILINE)
    assert cmd, "Dockerfile has no exec-form CMD"
    assert_command_exists(yaml.safe_load(cmd.group(1)), "Dockerfile CMD")


def test_the_module_check_catches_a_module_that_is_not_there():
    with pytest.raises(AssertionError, match="does not exist"):
        assert_command_exists(["uvicorn", "--factory", "services.nowhere.app:create_app"], "probe")
    with pytest.raises(AssertionError, match="does not exist"):
        assert_command_exists(
            ["uvicorn", "--factory", "services.registry.app:no_such_factory"], "probe"
        )
    with pytest.raises(AssertionError, match="does not parse"):
        assert_command_exists(["eldercare", "ingest", "--no-such-flag"], "probe")


def test_compose_secrets_come_from_one_env_file_with_no_defaults(services):
    env_file = read_env_file(ENV_EXAMPLE)
    apps = {name: svc for name, svc in services.items() if our_image(svc)}
    assert set(apps) >= {"migrate", "registry", "telemetry", "ingest", "ingest-urgent"}
    for secret in SHARED_SECRETS:
        values = {svc["environment"][secret] for svc in apps.values()}
        assert values == {env_file[secret]}, secret  # every container the same, from .env
    # without the env file compose refuses to start: no secret has a default to fall back on
    for missing in (*SHARED_SECRETS, "ELDERCARE_POSTGRES_PASSWORD"):
        partial = {k: v for k, v in env_file.items() if k != missing}
        with pytest.raises(Unset, match=missing):
            compose_config(partial)
    # and every variable the file requires is in the template
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", COMPOSE.read_text(encoding="utf-8")))
    assert required <= set(env_file)
    assert required >= set(SHARED_SECRETS)


def test_the_template_values_are_refused_and_generated_ones_accepted(services):
    """The shipped .env.example holds placeholders: a service given them refuses to start;
    `eldercare secrets` gives values it accepts."""
    env = services["registry"]["environment"]
    with pytest.raises(MissingSecret, match="placeholder"):
        settings_from(env).check_secrets()
    out = subprocess.run(
        [sys.executable, "-m", "services.cli", "secrets"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    generated = dict(line.split("=", 1) for line in out.split())
    assert set(generated) == set(SHARED_SECRETS)
    settings_from({**env, **generated}).check_secrets()


def settings_from(env: dict[str, str]) -> Settings:
    prefix = "ELDERCARE_"
    values = {k[len(prefix) :].lower(): v for k, v in env.items() if k.startswith(prefix)}
    return Settings(**{k: v for k, v in values.items() if k in Settings.model_fields})


def test_k8s_pods_share_one_secret_and_run_as_production():
    docs = kustomized()
    for name, pod in workloads(docs):
        for container in pod["containers"]:
            sources = container.get("envFrom", [])
            assert {"secretRef": {"name": "eldercare-secrets"}} in sources, name
            assert {"configMapRef": {"name": "eldercare-config"}} in sources, name
            literal = {e["name"] for e in container.get("env", []) if "value" in e}
            assert not literal & set(SHARED_SECRETS), f"{name} sets a secret inline"
    (config,) = [d for d in docs if d["kind"] == "ConfigMap"]
    assert config["data"]["ELDERCARE_ENV"] == "production"
    assert not set(config["data"]) & set(SHARED_SECRETS)
    template = yaml.safe_load((K8S / "secret.example.yaml").read_text(encoding="utf-8"))
    assert set(SHARED_SECRETS) <= set(template["stringData"])
    assert (
        "secret.example.yaml"
        not in yaml.safe_load((K8S / "kustomization.yaml").read_text("utf-8"))["resources"]
    )  # a template is never applied


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
    applied = {(d["kind"], d["metadata"]["name"]) for d in kustomized()}
    assert not {("Deployment", name) for name in NOT_BUILT} & applied
    assert {("Deployment", name) for name in REST_PORTS} <= applied


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
