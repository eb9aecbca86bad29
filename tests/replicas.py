"""N real gateway processes on one PostgreSQL database (and, when given, one Redis): a cluster on loopback.

Every replica shares the admin token, the API-key hash key and the master key (as a deployment shares its
secrets), and has a data dir of its own (its spool). ``extra`` adds environment variables to all of them.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from tests.gateway import GatewayProcess
from tests.logapi import ADMIN_TOKEN

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


class Replicas:
    def __init__(self, root: Path, pg_url: str, redis_url: str | None = None, count: int = 3,
                 **extra: str) -> None:
        env = {"SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN, "SLUICEGATE_DATABASE_URL": pg_url,
               "SLUICEGATE_API_KEY_HASH_KEY": base64.b64encode(os.urandom(32)).decode(),
               "SLUICEGATE_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(), **extra}
        if redis_url:
            env["SLUICEGATE_REDIS_URL"] = redis_url
        self.env = env
        self.gateways = [GatewayProcess(root / f"r{i}", env=env) for i in range(count)]

    def __len__(self) -> int:
        return len(self.gateways)

    def start(self) -> Replicas:
        try:
            for gateway in self.gateways:
                gateway.start(timeout=60)
        except Exception:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for gateway in self.gateways:
            gateway.stop()

    def chat_url(self, i: int) -> str:
        return f"{self.gateways[i % len(self.gateways)].v1}/chat/completions"
