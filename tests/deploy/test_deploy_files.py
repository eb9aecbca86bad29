"""deploy/ (docker-compose, nginx, Kubernetes, Dockerfile) and `make cluster`'s settings, held to the code.

Every SLUICEGATE_* name they use is one settings.py reads (renaming a setting fails here), every port is
the gateway's, every probe path a route the app serves, every secret a reference and never a value, and
the compose services and Kubernetes objects name each other consistently.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from aiohttp.test_utils import make_mocked_request

from demo.cluster_conf import ClusterSecrets, env_file, nginx_conf, replica_env
from sluicegate.app import build_app
from sluicegate.settings import PROVIDER_URL_PREFIX, Settings, settings_from_env

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
SETTING = re.compile(r"\bSLUICEGATE_[A-Z0-9_]*[A-Z0-9]\b")
INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)(?::?[-?][^}]*)?\}")
# What must never be written into a deployment file: it comes from a Secret (or deploy/.env).
SECRET_SETTINGS = {"SLUICEGATE_MASTER_KEY", "SLUICEGATE_API_KEY_HASH_KEY", "SLUICEGATE_ADMIN_TOKEN",
                   "SLUICEGATE_DATABASE_URL", "SLUICEGATE_REDIS_URL", "SLUICEGATE_OTLP_HEADERS"}
SAMPLE_KEY = base64.b64encode(bytes(range(32))).decode()


# -- what the code reads ---------------------------------------------------------------------------------

class RecordingEnv(dict[str, str]):
    """An environment that remembers every name it was asked for."""

    def __init__(self, values: dict[str, str] | None = None) -> None:
        super().__init__(values or {})
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        self.asked.add(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self.asked.add(str(key))
        return super().__contains__(key)

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        return super().__getitem__(key)


def settings_names() -> set[str]:
    env = RecordingEnv()
    settings_from_env(env)
    return {name for name in env.asked if name.startswith("SLUICEGATE_")}


def is_setting(name: str, known: set[str]) -> bool:
    return name in known or (name.startswith(PROVIDER_URL_PREFIX) and len(name) > len(PROVIDER_URL_PREFIX))


# -- the files -------------------------------------------------------------------------------------------

def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def gateways(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in doc["services"].items()
            if "SLUICEGATE_PORT" in (svc.get("environment") or {})}


def k8s_objects() -> dict[str, dict[str, Any]]:
    """Every manifest kustomization.yaml lists, by kind (one object of each kind here)."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    objects = {}
    for resource in kustomization["resources"]:
        for doc in yaml.safe_load_all((K8S / resource).read_text()):
            assert doc["kind"] not in objects, f"two {doc['kind']} objects: the checks below assume one"
            objects[doc["kind"]] = doc
    objects["Kustomization"] = kustomization
    return objects


def container() -> dict[str, Any]:
    (only,) = k8s_objects()["Deployment"]["spec"]["template"]["spec"]["containers"]
    return only


def env_example(path: Path) -> dict[str, str]:
    pairs = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value
    return pairs


def dockerfile() -> tuple[dict[str, str], list[int]]:
    """The Dockerfile's ENV pairs (continued lines joined) and EXPOSE ports."""
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    exposed: list[int] = []
    for line in text.splitlines():
        if line.startswith("ENV "):
            env.update(pair.split("=", 1) for pair in line[4:].split())
        elif line.startswith("EXPOSE "):
            exposed += [int(port.split("/")[0]) for port in line[7:].split()]
    return env, exposed


def deploy_texts() -> Iterator[tuple[str, str]]:
    for path in sorted(DEPLOY.rglob("*")):
        if path.is_file():
            yield str(path.relative_to(ROOT)), path.read_text()
    cluster = replica_env("postgresql://u@127.0.0.1/db", "redis://127.0.0.1:6379/0", ClusterSecrets.generate())
    yield "demo/cluster_conf.py", (ROOT / "demo" / "cluster_conf.py").read_text() + env_file(cluster, "/tmp/cli")


def interpolated(value: str, values: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:?message}, ${VAR:-default} with ``values`` (a default when absent)."""
    def one(match: re.Match[str]) -> str:
        name, rest = match.group(1), match.group(0)[len(match.group(1)) + 2:-1]
        return values.get(name, rest[2:] if rest.startswith(":-") else "")
    return INTERPOLATION.sub(one, value)


SAMPLE_SECRETS = {"SLUICEGATE_MASTER_KEY": SAMPLE_KEY, "SLUICEGATE_API_KEY_HASH_KEY": SAMPLE_KEY,
                  "SLUICEGATE_ADMIN_TOKEN": "sgadm_" + "t" * 40, "POSTGRES_PASSWORD": "pgpass",
                  "REDIS_PASSWORD": "redispass",
                  "SLUICEGATE_DATABASE_URL": "postgresql://u:p@db:5432/sluicegate",
                  "SLUICEGATE_REDIS_URL": "redis://:p@redis:6379/0"}


# -- names -----------------------------------------------------------------------------------------------

def test_the_recorder_sees_what_settings_py_reads() -> None:
    """The check below can fail: the recorder knows the real names and nothing else."""
    known = settings_names()
    assert {"SLUICEGATE_PORT", "SLUICEGATE_MASTER_KEY", "SLUICEGATE_DRAIN_TIMEOUT", "SLUICEGATE_REDIS_URL"} <= known
    assert "SLUICEGATE_DRAIN_TIMEOUT_S" not in known and not is_setting("SLUICEGATE_PROVIDER_URL_", known)
    assert len(known) > 30


def test_every_setting_named_in_deploy_files_is_one_settings_py_reads() -> None:
    known = settings_names()
    unknown = sorted({f"{where}: {name}" for where, text in deploy_texts() for name in SETTING.findall(text)
                      if not is_setting(name, known)})
    assert unknown == []


def test_the_gateway_env_of_each_file_parses_into_the_intended_settings() -> None:
    """The non-secret values are valid for settings.py (a typo in a number fails at start-up, so here)."""
    doc = compose()
    envs = {f"compose {name}": {k: interpolated(str(v), SAMPLE_SECRETS) for k, v in svc["environment"].items()}
            for name, svc in gateways(doc).items()}
    secrets = {ref["name"]: SAMPLE_SECRETS[ref["name"]] for ref in container()["env"]}
    envs["k8s"] = {**k8s_objects()["ConfigMap"]["data"], **secrets}
    envs["Dockerfile"] = {**dockerfile()[0], **SAMPLE_SECRETS}
    for where, env in envs.items():
        settings = settings_from_env(env)
        assert (settings.host, settings.port) == ("0.0.0.0", Settings().port), where
        assert settings.master_key and settings.admin_token, where
        if where != "Dockerfile":
            assert settings.database_url and settings.database_url.startswith("postgresql://"), where
            assert settings.redis_url and settings.cache_backend == "redis", where
            assert settings.auth_mode == "required", where


# -- ports -----------------------------------------------------------------------------------------------

def test_every_port_is_the_gateways() -> None:
    port = Settings().port
    env, exposed = dockerfile()
    assert exposed == [port] and env["SLUICEGATE_PORT"] == str(port)
    doc = compose()
    for name, svc in gateways(doc).items():
        assert svc["environment"]["SLUICEGATE_PORT"] == str(port), name
        assert f"127.0.0.1:{port}/" in " ".join(svc["healthcheck"]["test"]), name
    upstream_ports = {int(p) for p in re.findall(r"server\s+[\w.-]+:(\d+)", (DEPLOY / "nginx.conf").read_text())}
    assert upstream_ports == {port}
    objects = k8s_objects()
    assert objects["ConfigMap"]["data"]["SLUICEGATE_PORT"] == str(port)
    ports = {p["name"]: p["containerPort"] for p in container()["ports"]}
    assert ports == {"http": port}
    assert [p["targetPort"] for p in objects["Service"]["spec"]["ports"]] == ["http"]
    probes = [container()[probe]["httpGet"]["port"] for probe in ("startupProbe", "livenessProbe", "readinessProbe")]
    assert probes == ["http"] * 3


# -- probe paths -----------------------------------------------------------------------------------------

def probe_paths() -> dict[str, str]:
    paths = {probe: container()[probe]["httpGet"]["path"]
             for probe in ("startupProbe", "livenessProbe", "readinessProbe")}
    for name, svc in gateways(compose()).items():
        (url,) = re.findall(r"http://127\.0\.0\.1:\d+(/[\w/]*)", " ".join(svc["healthcheck"]["test"]))
        paths[f"compose {name}"] = url
    return paths


def test_probes_use_the_liveness_and_readiness_endpoints() -> None:
    paths = probe_paths()
    assert paths["livenessProbe"] == paths["startupProbe"] == "/livez"
    assert paths["readinessProbe"] == "/readyz"
    assert {path for where, path in paths.items() if where.startswith("compose")} == {"/readyz"}


async def test_every_probe_path_is_a_route_the_app_serves(tmp_path: Path) -> None:
    app = build_app(Settings(data_dir=tmp_path))

    async def served(path: str) -> bool:
        match = await app.router.resolve(make_mocked_request("GET", path, app=app))
        return match.http_exception is None

    assert await served("/v1/health") and not await served("/no-such-probe")  # the check can tell
    if not (await served("/livez") or await served("/readyz")):
        pytest.skip("this gateway has no /livez or /readyz yet (the scale-out runtime brings them)")
    missing = {where: path for where, path in probe_paths().items() if not await served(path)}
    assert missing == {}


# -- secrets ---------------------------------------------------------------------------------------------

def test_kubernetes_secrets_come_from_the_generated_secret_only() -> None:
    objects = k8s_objects()
    (generator,) = objects["Kustomization"]["secretGenerator"]
    assert generator["envs"] == ["secrets.env"]
    example = env_example(K8S / "secrets.env.example")
    assert set(example) == SECRET_SETTINGS - {"SLUICEGATE_OTLP_HEADERS"} and set(example.values()) == {""}
    assert not SECRET_SETTINGS & set(objects["ConfigMap"]["data"])
    refs = {}
    for entry in container()["env"]:
        assert set(entry) == {"name", "valueFrom"}, f"{entry['name']} is written in clear"
        ref = entry["valueFrom"]["secretKeyRef"]
        assert ref["name"] == generator["name"]
        refs[entry["name"]] = ref["key"]
    assert refs == {name: name for name in example}
    assert container()["envFrom"] == [{"configMapRef": {"name": objects["ConfigMap"]["metadata"]["name"]}}]


def test_compose_secrets_are_required_interpolations() -> None:
    """A secret is `${VAR:?…}` (compose refuses to start without it), or a URL whose password is one."""
    for name, svc in gateways(compose()).items():
        env = svc["environment"]
        for setting in SECRET_SETTINGS & set(env):
            value = str(env[setting])
            if setting.endswith("_URL"):
                marked = INTERPOLATION.sub(lambda m: f"required.{m[1]}" if ":?" in m[0] else m[0], value)
                password = urlsplit(marked).password or ""
                assert password.startswith("required."), f"{name} {setting}: its password is not from .env"
            else:
                assert re.fullmatch(r"\$\{[A-Z0-9_]+:\?[^}]*\}", value), f"{name} {setting} is not a required ${{}}"
    assert set(env_example(DEPLOY / "env.example").values()) == {""}


def test_no_secret_is_written_in_clear() -> None:
    patterns = {
        "an admin token": re.compile(r"sgadm_[A-Za-z0-9_-]{16,}"),
        "a 32-byte base64 key": re.compile(r"[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]="),
        "a password in a URL": re.compile(r"://[^:/\s'\"]*:(?!\$\{|PASSWORD@)[^@\s'\"]+@"),
    }
    found = [f"{where}: {what}" for where, text in deploy_texts() if where.startswith("deploy")
             for what, pattern in patterns.items() if pattern.search(text)]
    assert found == []
    assert patterns["an admin token"].search(ClusterSecrets.generate().admin_token)  # the patterns can tell
    assert patterns["a 32-byte base64 key"].search(SAMPLE_KEY)


def test_the_files_that_hold_secret_values_are_never_committed() -> None:
    paths = ["deploy/.env", "deploy/k8s/secrets.env", ".sluicegate-cluster/x.secrets.json"]
    ignored = subprocess.run(["git", "check-ignore", *paths], cwd=ROOT, capture_output=True, text=True)
    assert ignored.stdout.split() == paths


# -- compose: services name each other -------------------------------------------------------------------

def test_compose_services_reference_each_other() -> None:
    doc = compose()
    services = doc["services"]
    for name, svc in services.items():
        assert set(svc.get("depends_on") or {}) <= set(services), name
    backends = set(re.findall(r"server\s+([\w.-]+):\d+", (DEPLOY / "nginx.conf").read_text()))
    assert backends == set(gateways(doc)) and len(backends) >= 2
    assert set(services["nginx"]["depends_on"]) == backends
    (mount,) = services["nginx"]["volumes"]
    assert (DEPLOY / mount.split(":")[0]).resolve() == DEPLOY / "nginx.conf"
    pg = services["postgres"]["environment"]
    redis_password = services["redis"]["environment"]["REDIS_PASSWORD"]
    for name, svc in gateways(doc).items():
        assert (DEPLOY / svc["build"]["context"] / svc["build"]["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
        assert set(svc["depends_on"]) == {"postgres", "redis"}, name
        db = urlsplit(interpolated(svc["environment"]["SLUICEGATE_DATABASE_URL"], SAMPLE_SECRETS))
        assert (db.hostname, db.username, db.path.lstrip("/")) == ("postgres", pg["POSTGRES_USER"], pg["POSTGRES_DB"])
        assert db.password == interpolated(pg["POSTGRES_PASSWORD"], SAMPLE_SECRETS)
        cache = urlsplit(interpolated(svc["environment"]["SLUICEGATE_REDIS_URL"], SAMPLE_SECRETS))
        assert (cache.hostname, cache.password) == ("redis", interpolated(redis_password, SAMPLE_SECRETS))


def _seconds(text: str) -> float:
    return float(text.removesuffix("s"))


def test_replicas_get_the_drain_bound_and_a_margin_before_they_are_killed() -> None:
    default = Settings().drain_timeout_s
    for name, svc in gateways(compose()).items():
        drain = settings_from_env({k: str(v) for k, v in svc["environment"].items()
                                   if "$" not in str(v)}).drain_timeout_s
        assert _seconds(svc["stop_grace_period"]) >= drain + 5, name
    spec = k8s_objects()["Deployment"]["spec"]["template"]["spec"]
    drain = settings_from_env(k8s_objects()["ConfigMap"]["data"]).drain_timeout_s
    assert drain == default
    (sleep,) = [float(arg) for arg in container()["lifecycle"]["preStop"]["exec"]["command"][1:]]
    assert spec["terminationGracePeriodSeconds"] >= sleep + drain + 5


def test_each_replica_keeps_its_data_dir_across_restarts() -> None:
    """The request log's journal and spool live in the data dir: a replica restarted after a crash replays
    them only if it finds the same dir. Compose: a named volume per replica (never shared: one replica's
    live segments are its own); Kubernetes: an emptyDir, which outlives the container's restarts in its pod."""
    doc = compose()
    mounts = {}
    for name, svc in gateways(doc).items():
        data_dir = svc["environment"]["SLUICEGATE_DATA_DIR"]
        (mount,) = [m for m in svc.get("volumes") or () if m.split(":")[1] == data_dir]
        mounts[name] = mount.split(":")[0]
    assert len(set(mounts.values())) == len(mounts)  # one volume each
    assert set(mounts.values()) <= set(doc["volumes"])  # named volumes, kept across container re-creation
    pod = k8s_objects()["Deployment"]["spec"]["template"]["spec"]
    data_dir = k8s_objects()["ConfigMap"]["data"]["SLUICEGATE_DATA_DIR"]
    (mount,) = [m for m in container()["volumeMounts"] if m["mountPath"] == data_dir]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert "emptyDir" in volume


# -- kubernetes: objects name each other -----------------------------------------------------------------

def test_kubernetes_objects_select_the_deployments_pods() -> None:
    objects = k8s_objects()
    listed = set(objects["Kustomization"]["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    deployment = objects["Deployment"]["spec"]
    labels = deployment["template"]["metadata"]["labels"]
    assert deployment["selector"]["matchLabels"].items() <= labels.items()
    assert objects["Service"]["spec"]["selector"].items() <= labels.items()
    assert objects["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert deployment["replicas"] >= 2 and objects["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 1
    assert objects["Kustomization"]["namespace"] == objects["Namespace"]["metadata"]["name"]
    resources = container()["resources"]
    assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}


# -- nginx, here and in make cluster ---------------------------------------------------------------------

@pytest.mark.parametrize("where", ["deploy/nginx.conf", "make cluster"])
def test_nginx_passes_what_the_gateway_accepts_and_streams(where: str) -> None:
    text = (DEPLOY / "nginx.conf").read_text() if where.startswith("deploy") else nginx_conf("/p", 1, [2, 3])
    settings = Settings()
    (size,) = re.findall(r"client_max_body_size (\d+)m;", text)
    assert int(size) * 2**20 >= settings.max_body_bytes
    (read,) = re.findall(r"proxy_read_timeout (\d+)s;", text)
    assert int(read) >= settings.upstream_read_timeout_s
    assert "proxy_buffering off;" in text and "proxy_http_version 1.1;" in text
    assert "non_idempotent" not in text and "http_503" not in text  # never replay a request a replica took


def test_deploy_nginx_conf_is_valid_for_nginx(tmp_path: Path) -> None:
    """`nginx -t` on deploy/nginx.conf, the compose service names swapped for loopback (nginx resolves them)."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.skip("nginx is not installed (bash bench/ensure_tools.sh)")
    text = re.sub(r"server\s+[\w.-]+:(\d+)", r"server 127.0.0.1:\1", (DEPLOY / "nginx.conf").read_text())
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"pid {tmp_path}/nginx.pid;\n{text}")
    checked = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(conf)],
                             capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
