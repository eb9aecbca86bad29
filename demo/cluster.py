"""`make cluster`: three `sluicegate serve` replicas on loopback behind nginx, sharing PostgreSQL and Redis.

    python -m demo.cluster [--replicas 3] [--port 8790] [--database sluicegate_cluster] [--fresh] [--minutes 120]

Creates the database on the machine's PostgreSQL when it is missing, keeps the secrets every replica must
share (master key, API key hash key, admin token) in the state dir (0600: the database holds what they
protect), starts the replicas on free 127.0.0.1 ports and one unprivileged nginx in front of them, waits
until every replica is ready, and prints the URL, the admin token and what to try. Ctrl-C (or SIGTERM, or
--minutes) stops every process it started; if this process is killed outright the kernel stops them
(bench/procs.py). Every commercial provider's default URL points at a dead loopback port, as in `make demo`:
the cluster answers for model servers on this machine only. Layout and failure modes: docs/deployment.md.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import shutil
import signal
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.launch import start_nginx
from bench.procs import Child, Supervisor, free_port, install_termination_handlers
from demo.cluster_conf import ClusterSecrets, checked_database_name, env_file, nginx_conf, replica_env, try_it
from demo.gateway import loopback_only_env
from demo.server import port_free

POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"  # the server; the cluster's database is --database
REDIS = "redis://127.0.0.1:6379/0"
READY_PATHS = ("/readyz", "/v1/health")  # /v1/health for a gateway without the readiness endpoint
START_TIMEOUT_S = 90.0  # three replicas migrating and starting on a busy 2-core machine


def say(text: str) -> None:
    print(text, flush=True)


# -- PostgreSQL ------------------------------------------------------------------------------------------

def database_url(server_url: str, database: str) -> str:
    from sqlalchemy.engine import make_url  # the gateway's own dependency; the demo runs on its python

    return make_url(server_url).set(database=database).render_as_string(hide_password=False)


async def _admin(server_url: str, statement: str, *args: object) -> list:
    import asyncpg

    conn = await asyncpg.connect(server_url, timeout=10)
    try:
        return list(await conn.fetch(statement, *args))
    finally:
        await conn.close()


def ensure_database(server_url: str, database: str) -> bool:
    """Create the database unless it exists; True if it existed."""
    name = checked_database_name(database)
    if asyncio.run(_admin(server_url, "SELECT 1 FROM pg_database WHERE datname = $1", name)):
        return True
    asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}"'))
    return False


def drop_database(server_url: str, database: str) -> None:
    asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{checked_database_name(database)}" WITH (FORCE)'))


# -- state -----------------------------------------------------------------------------------------------

def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def load_secrets(state: Path, database: str, existed: bool) -> ClusterSecrets:
    """The secrets of this database, made with it; a database whose secrets are lost cannot be served."""
    path = state / f"{database}.secrets.json"
    if path.exists():
        return ClusterSecrets(**json.loads(path.read_text()))
    if existed:
        raise SystemExit(f"cluster: database {database!r} exists but its keys are not in {state} (they encrypt "
                         "what it stores); start over with --fresh, or pick another --database")
    made = ClusterSecrets.generate()
    state.mkdir(parents=True, exist_ok=True)
    _write_private(path, json.dumps(asdict(made)))
    return made


# -- processes -------------------------------------------------------------------------------------------

def _get(url: str) -> int:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy
    try:
        with opener.open(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):
        return 0


def readiness_path(url: str) -> str:
    """/readyz where the gateway serves it, else /v1/health (an answer other than 404 means it exists)."""
    return next((path for path in READY_PATHS if _get(url + path) not in (0, 404)), READY_PATHS[-1])


def wait_ready(children: dict[str, Child], deadline: float) -> str:
    """Until every child at ``url`` answers 200 on the readiness path; returns that path."""
    pending = dict(children)
    path = ""
    while pending:
        for url, child in list(pending.items()):
            if not child.alive():
                raise RuntimeError(f"{child.name} exited with {child.popen.returncode}:\n{child.log_tail()}")
            if not path and _get(url + READY_PATHS[-1]) == 200:
                path = readiness_path(url)  # it answers: which readiness endpoint does this gateway have?
            if path and _get(url + path) == 200:
                del pending[url]
        if pending and time.monotonic() > deadline:
            late = list(pending.values())
            names = ", ".join(child.name for child in late)
            raise RuntimeError(f"not ready within {START_TIMEOUT_S:g} s: {names} (logs in {late[0].log_path.parent})")
        time.sleep(0.1)
    return path


@dataclass
class Running:
    url: str
    health_path: str
    replicas: dict[str, Child]  # url -> process
    nginx: Child

    def layout(self) -> dict:
        """What --ready-file holds: where each process listens and its pid (its process group's id)."""
        return {"url": self.url, "health_path": self.health_path, "nginx_pid": self.nginx.pid,
                "replicas": [{"url": url, "pid": child.pid} for url, child in self.replicas.items()]}


def start(sup: Supervisor, state: Path, env: dict[str, str], replicas: int, port: int) -> Running:
    base = {**os.environ, **loopback_only_env(), **env}
    children = {}
    for index in range(1, replicas + 1):
        replica_port = free_port()
        data_dir = state / "replicas" / str(index)
        data_dir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "sluicegate", "serve", "--host", "127.0.0.1", "--port", str(replica_port)]
        children[f"http://127.0.0.1:{replica_port}"] = sup.start(
            f"replica-{index}", argv, env={**base, "SLUICEGATE_DATA_DIR": str(data_dir)})
    deadline = time.monotonic() + START_TIMEOUT_S
    health_path = wait_ready(children, deadline)
    prefix = state / "nginx"
    ports = [int(url.rsplit(":", 1)[1]) for url in children]
    nginx = start_nginx(sup, "nginx", prefix, nginx_conf(str(prefix), port, ports))
    url = f"http://127.0.0.1:{port}"
    wait_ready({url: nginx}, deadline)
    return Running(url, health_path, children, nginx)


def stop(sup: Supervisor) -> None:
    """SIGTERM every group at once (each replica drains in parallel), then the Supervisor's ordered stop."""
    for child in sup.children:
        try:
            os.killpg(child.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
    sup.stop_all()


def _wait(running: Running, minutes: float) -> str:
    deadline = time.monotonic() + minutes * 60
    while time.monotonic() < deadline:
        for child in [running.nginx, *running.replicas.values()]:
            if not child.alive():
                return f"{child.name} exited on its own; its log: {child.log_path}"
        time.sleep(0.5)
    return f"stopping after {minutes:g} minutes (--minutes)"


def hold_lock(state: Path, database: str) -> int:
    """One cluster per database and state dir: a second one would drop or share what the first serves.
    The lock goes with the process (even killed), so a stale file never blocks."""
    state.mkdir(parents=True, exist_ok=True)
    fd = os.open(state / f"{database}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RuntimeError(f"another cluster on database {database!r} is running from {state}") from None
    return fd


def run(args: argparse.Namespace) -> int:
    if not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()):
        raise RuntimeError("nginx is not installed: `bash bench/ensure_tools.sh` (or apt-get install nginx)")
    state = args.state_dir.resolve()
    database = checked_database_name(args.database)
    hold_lock(state, database)  # released when this process exits
    if args.fresh:
        drop_database(args.postgres, database)
        (state / f"{database}.secrets.json").unlink(missing_ok=True)
    existed = ensure_database(args.postgres, database)
    keys = load_secrets(state, database, existed)
    env = replica_env(database_url(args.postgres, database), args.redis, keys)
    env_path = state / f"{database}.env"
    (state / "cli").mkdir(parents=True, exist_ok=True)
    _write_private(env_path, env_file(env, str(state / "cli")))
    port = args.port if args.port and port_free(args.port) else free_port()
    if args.port and port != args.port:
        say(f"  port {args.port} is busy: nginx takes {port} instead")
    say(f"→ {args.replicas} replicas on PostgreSQL database {database!r} and Redis {args.redis}, nginx on {port}")
    with Supervisor(state / "logs") as sup:
        try:
            running = start(sup, state, env, args.replicas, port)
            if args.ready_file:  # whole or absent: whoever waits for it may read it the moment it appears
                partial = args.ready_file.with_name(args.ready_file.name + ".partial")
                partial.write_text(json.dumps(running.layout()))
                partial.replace(args.ready_file)
            say(try_it(running.url, keys.admin_token, list(running.replicas), running.health_path, str(env_path)))
            say(_wait(running, args.minutes))
        except KeyboardInterrupt:
            say("\n→ stopping the replicas and nginx")
        finally:
            # A second Ctrl-C must not cut the clean-up short and leave servers behind.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            stop(sup)
            if args.drop_on_exit:
                drop_database(args.postgres, database)
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m demo.cluster", description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=3, choices=range(1, 9), metavar="N",
                        help="sluicegate serve processes (default 3)")
    parser.add_argument("--port", type=int, default=8790, help="nginx's port (default 8790; 0 or busy: a free one)")
    parser.add_argument("--database", default="sluicegate_cluster", help="the cluster's own database")
    parser.add_argument("--postgres", default=POSTGRES, help=f"the PostgreSQL server (default {POSTGRES})")
    parser.add_argument("--redis", default=REDIS, help=f"SLUICEGATE_REDIS_URL of every replica (default {REDIS})")
    parser.add_argument("--state-dir", type=Path, default=Path(".sluicegate-cluster"),
                        help="secrets, logs, nginx's files, the replicas' data dirs (default ./.sluicegate-cluster)")
    parser.add_argument("--fresh", action="store_true", help="drop the database and its secrets first")
    parser.add_argument("--drop-on-exit", action="store_true", help="drop the database when stopping")
    parser.add_argument("--minutes", type=float, default=120, help="stop by itself after this long")
    parser.add_argument("--ready-file", type=Path, help="write the URLs and pids here once ready (JSON)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    install_termination_handlers()  # SIGTERM/SIGHUP unwind like Ctrl-C
    try:
        return run(args)
    except (RuntimeError, ValueError, OSError) as exc:
        say(f"cluster: {exc}")
        return 1
    except SystemExit as exc:  # SIGTERM before the Supervisor existed, or a refusal from load_secrets
        if isinstance(exc.code, str):
            say(exc.code)
            return 1
        return 0


if __name__ == "__main__":
    sys.exit(main())
