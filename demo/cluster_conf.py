"""What `make cluster` runs, as text and mappings: nginx's configuration and each replica's environment.

Pure: ports, paths and secrets in, text and dicts out; demo/cluster.py does the I/O.
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# The request body bound nginx enforces before a replica sees the body: the gateway's own default
# (SLUICEGATE_MAX_BODY_BYTES, 32 MiB), so nginx never refuses what a replica would accept.
CLIENT_MAX_BODY = "32m"
DATABASE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


@dataclass(frozen=True)
class ClusterSecrets:
    """Shared by every replica, and kept with the cluster's state: the database holds credentials encrypted
    under the master key and API key digests under the hash key, so both outlive a restart."""

    master_key: str
    api_key_hash_key: str
    admin_token: str

    @classmethod
    def generate(cls) -> ClusterSecrets:
        def key() -> str:
            return base64.b64encode(secrets.token_bytes(32)).decode()

        return cls(master_key=key(), api_key_hash_key=key(), admin_token="sgadm_" + secrets.token_urlsafe(32))


def checked_database_name(name: str) -> str:
    """The database name goes into CREATE DATABASE: a plain lower-case identifier only."""
    if not DATABASE_NAME.fullmatch(name):
        raise ValueError(f"database name must be a lower-case identifier (letters, digits, _), not {name[:70]!r}")
    return name


def replica_env(database_url: str, redis_url: str, keys: ClusterSecrets) -> dict[str, str]:
    """The settings every replica shares (docs/deployment.md): one store, one Redis, one set of secrets.
    Each replica keeps a data dir of its own (SLUICEGATE_DATA_DIR: its spool while the store is down)."""
    return {
        "SLUICEGATE_DATABASE_URL": database_url,
        "SLUICEGATE_REDIS_URL": redis_url,
        "SLUICEGATE_CACHE_BACKEND": "redis",
        "SLUICEGATE_MASTER_KEY": keys.master_key,
        "SLUICEGATE_API_KEY_HASH_KEY": keys.api_key_hash_key,
        "SLUICEGATE_ADMIN_TOKEN": keys.admin_token,
    }


def nginx_conf(prefix: str, listen_port: int, replica_ports: Sequence[int]) -> str:
    """One nginx in front of the replicas, run unprivileged in the foreground with every path under prefix.

    Open-source nginx has no active health checks: a replica that refuses connections is marked down for
    fail_timeout after one failure, and a request that could not be sent to it goes to the next replica
    (for a POST only while nothing was sent: nginx never replays a request a replica may have started).
    An answer, even a 503, is relayed as is: a limit's refusal must not be retried on another replica.
    """
    servers = "\n".join(f"        server 127.0.0.1:{port} max_fails=1 fail_timeout=2s;" for port in replica_ports)
    return f"""daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    upstream sluicegate {{
{servers}
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{listen_port};
        client_max_body_size {CLIENT_MAX_BODY};
        location / {{
            proxy_pass http://sluicegate;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            # Streams pass chunk by chunk; a model may think for minutes between two of them.
            proxy_buffering off;
            proxy_read_timeout 600s;
            proxy_next_upstream error timeout;
            proxy_next_upstream_tries 3;
        }}
    }}
}}
"""


def env_file(env: Mapping[str, str], cli_data_dir: str) -> str:
    """The shared settings as a shell file (kept 0600 in the state dir), for the CLI against the cluster;
    the CLI gets a data dir of its own (it holds nothing while the store is PostgreSQL)."""
    names = ("SLUICEGATE_DATABASE_URL", "SLUICEGATE_REDIS_URL", "SLUICEGATE_MASTER_KEY",
             "SLUICEGATE_API_KEY_HASH_KEY", "SLUICEGATE_ADMIN_TOKEN")
    return "".join(f"{name}='{value}'\n" for name, value in
                   [*((name, env[name]) for name in names), ("SLUICEGATE_DATA_DIR", cli_data_dir)])


def try_it(url: str, admin_token: str, replicas: Sequence[str], health_path: str, env_path: str) -> str:
    """What `make cluster` prints once everything answers."""
    return f"""
sluicegate cluster: {url}   (nginx in front of {len(replicas)} replicas: {', '.join(replicas)})
Admin token: {admin_token}

Try it:
  curl {url}{health_path}
  curl {url}/v1/chat/completions \\
    -H 'content-type: application/json' \\
    -H 'x-portkey-provider: openai' \\
    -H 'x-portkey-custom-host: http://127.0.0.1:8000/v1' \\
    -d '{{"model": "my-model", "messages": [{{"role": "user", "content": "Hello!"}}]}}'
  curl -H 'Authorization: Bearer {admin_token}' {url}/admin/api/logs     # every replica's requests
  the dashboard: {url}/dashboard/ (sign in with the admin token)

The CLI works on the cluster with its settings; a provider made there (or through any replica) is
served by every replica:
  set -a; . {env_path}; set +a
  sluicegate providers add local --spec openai --custom-host http://127.0.0.1:8000/v1
  curl {url}/v1/chat/completions -H 'content-type: application/json' \\
    -d '{{"model": "@local/my-model", "messages": [{{"role": "user", "content": "Hi"}}]}}'

Ctrl-C stops the replicas and nginx.
"""
