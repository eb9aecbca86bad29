"""The SSRF decision: given a host (name or address), a port and the operator's allow-list, refuse or pass.

Order of the rules, the same at request time and at connection time:
  1. always-blocked (metadata endpoints, the Kubernetes API): refused, whatever the allow-list says;
  2. well-known non-HTTP service ports: refused, even for allow-listed hosts;
  3. allow-listed: passes;
  4. blocked by default (private, loopback, reserved … ranges; private zones; rebinding services);
  5. everything else passes (a name is judged again by its addresses when it is resolved).
Pure: every function raises ``InvalidCustomHost`` with a reason the user can act on, or returns.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from types import MappingProxyType

from ..errors import InvalidCustomHost
from .addresses import ALWAYS, IPAddress, classify_ip, is_loopback, parse_ip
from .allow import AllowEntry, parse_allow_entries
from .names import classify_name

# Ports whose services speak something other than HTTP, or HTTP APIs that hold secrets (Docker, etcd,
# kubelet, Vault, Consul). A request smuggled into them is the classic SSRF-to-RCE step. Every one is
# below 32768, where Linux starts handing out ephemeral ports, so a test upstream or a developer's
# tool bound to "any free port" on 127.0.0.1 never trips this rule.
BLOCKED_PORTS = MappingProxyType({
    21: "FTP", 22: "SSH", 23: "Telnet", 25: "SMTP", 53: "DNS", 110: "POP3", 111: "RPC portmapper",
    135: "MS RPC", 137: "NetBIOS", 138: "NetBIOS", 139: "NetBIOS", 143: "IMAP", 389: "LDAP",
    445: "SMB", 465: "SMTPS", 587: "SMTP submission", 636: "LDAPS", 873: "rsync", 993: "IMAPS",
    995: "POP3S", 1433: "SQL Server", 1521: "Oracle DB", 2049: "NFS", 2181: "ZooKeeper",
    2375: "Docker API", 2376: "Docker API", 2379: "etcd", 2380: "etcd", 3306: "MySQL",
    3389: "RDP", 4369: "Erlang port mapper", 5432: "PostgreSQL", 5672: "AMQP", 5984: "CouchDB",
    6379: "Redis", 6443: "Kubernetes API", 8200: "Vault", 8500: "Consul", 9042: "Cassandra",
    9092: "Kafka", 9200: "Elasticsearch", 9300: "Elasticsearch", 10250: "kubelet",
    10255: "kubelet", 11211: "memcached", 15672: "RabbitMQ management", 27017: "MongoDB",
    27018: "MongoDB", 27019: "MongoDB",
})
EPHEMERAL_PORTS_START = 32768

ALLOW_HINT = "add it to TRUSTED_CUSTOM_HOSTS to allow it"

# When the gateway itself only listens on loopback, whoever can call it can already reach loopback,
# so trusting loopback upstreams adds no reach; that is the developer default (a model on :11434).
_LOOPBACK_DEFAULTS = ("127.0.0.0/8", "::1")
_LOOPBACK_NAMES = (AllowEntry("localhost", name="localhost", wildcard=True, trusts_addresses=False),)


def listens_on_loopback(listen_host: str) -> bool:
    host = listen_host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    address = parse_ip(host)
    return address is not None and is_loopback(address)


def check_port(port: int) -> None:
    service = BLOCKED_PORTS.get(port)
    if service is not None:
        raise InvalidCustomHost(
            f"port {port} ({service}) is a well-known non-HTTP service port and is always blocked"
        )


@dataclass(frozen=True)
class GuardPolicy:
    """The operator's allow-list and listen address, fixed at start; ``extra`` is the catalog's part."""

    base: tuple[AllowEntry, ...] = ()
    extra: tuple[AllowEntry, ...] = ()
    listen_host: str = "127.0.0.1"

    @classmethod
    def from_settings(cls, settings) -> GuardPolicy:
        return cls.build(
            listen_host=settings.host,
            trusted_custom_hosts=settings.trusted_custom_hosts,
            allowed_upstreams=settings.allowed_upstreams,
        )

    @classmethod
    def build(
        cls,
        *,
        listen_host: str = "127.0.0.1",
        trusted_custom_hosts: Iterable[str] | None = None,
        allowed_upstreams: Iterable[str] = (),
    ) -> GuardPolicy:
        """``trusted_custom_hosts`` None means the default (loopback, on a loopback gateway only);
        any value, even empty, replaces that default, as Portkey's TRUSTED_CUSTOM_HOSTS does."""
        trusted: tuple[AllowEntry, ...]
        if trusted_custom_hosts is None:
            trusted = ()
            if listens_on_loopback(listen_host):
                trusted = parse_allow_entries(_LOOPBACK_DEFAULTS, "default") + _LOOPBACK_NAMES
        else:
            trusted = parse_allow_entries(trusted_custom_hosts, "TRUSTED_CUSTOM_HOSTS")
        configured = parse_allow_entries(allowed_upstreams, "allowed_upstreams")
        return cls(base=trusted + configured, listen_host=listen_host)

    def with_extra(self, entries: Iterable[str]) -> GuardPolicy:
        return replace(self, extra=parse_allow_entries(entries, "catalog allow entry"))

    @property
    def entries(self) -> tuple[AllowEntry, ...]:
        return self.base + self.extra

    def ineffective_entries(self) -> list[str]:
        """Entries that name an always-blocked target: accepted, but they can never unlock it."""
        out = []
        for entry in self.entries:
            if entry.name is not None and (verdict := classify_name(entry.name)) and verdict.kind == ALWAYS:
                out.append(entry.text)
            elif entry.network is not None and entry.network.num_addresses == 1:
                address_verdict = classify_ip(entry.network.network_address)
                if address_verdict and address_verdict.kind == ALWAYS:
                    out.append(entry.text)
        return out

    def _loopback_hint(self, address: IPAddress) -> str:
        if is_loopback(address) and not listens_on_loopback(self.listen_host):
            return f" (this gateway listens on {self.listen_host}, so loopback is not trusted by default)"
        return ""

    def ip_allowed(self, address: IPAddress, port: int) -> bool:
        return any(entry.matches_ip(address, port) for entry in self.entries)

    def name_allowed(self, name: str, port: int) -> tuple[bool, bool]:
        """(matched by some entry, some matching entry vouches for the name's addresses)."""
        matching = [entry for entry in self.entries if entry.matches_name(name, port)]
        return bool(matching), any(entry.trusts_addresses for entry in matching)

    def check_ip_literal(self, address: IPAddress, port: int, shown: str) -> None:
        """Request-time verdict on a URL whose host is an address (aiohttp never resolves those)."""
        verdict = classify_ip(address)
        if verdict is not None and verdict.kind == ALWAYS:
            raise InvalidCustomHost(f"{shown} is {verdict.label} and is always blocked")
        check_port(port)
        if verdict is None or self.ip_allowed(address, port):
            return
        raise InvalidCustomHost(f"{shown} is {verdict.label}{self._loopback_hint(address)}; {ALLOW_HINT}")

    def check_name(self, name: str, port: int) -> bool:
        """Verdict on a normalised name; True when an allow entry vouches for its addresses."""
        verdict = classify_name(name)
        if verdict is not None and verdict.kind == ALWAYS:
            raise InvalidCustomHost(f"{name} is {verdict.label} and is always blocked")
        check_port(port)
        matched, vouched = self.name_allowed(name, port)
        if matched:
            return vouched
        if verdict is not None:
            raise InvalidCustomHost(f"{name} is {verdict.label}; {ALLOW_HINT}")
        return False

    def check_resolved(self, name: str, port: int, addresses: list[IPAddress]) -> None:
        """Connection-time verdict: the name again, then EVERY address it resolved to."""
        vouched = self.check_name(name, port)
        verdicts = [(address, classify_ip(address)) for address in addresses]
        for address, verdict in verdicts:
            if verdict is not None and verdict.kind == ALWAYS:
                raise InvalidCustomHost(
                    f"{name} resolves to {address}, {verdict.label}, which is always blocked"
                )
        if vouched:
            return
        for address, verdict in verdicts:
            if verdict is not None and not self.ip_allowed(address, port):
                hint = self._loopback_hint(address)
                raise InvalidCustomHost(f"{name} resolves to {address}, {verdict.label}{hint}; {ALLOW_HINT}")
