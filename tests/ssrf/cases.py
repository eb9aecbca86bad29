"""A case = one request through one entry point, and what the running gateway must do with it.

Either refused (400, the guard's reason, no trap hit, one ``ssrf_blocked`` log line of the expected
stage) or accepted (the answer of the trap at the expected address, exactly one hit there).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from yarl import URL

from tests.ssrf.entry import EntryPoint

INVALID_HOST = "Invalid custom host: "


@dataclass(frozen=True)
class Case:
    id: str
    entry: EntryPoint
    url: str
    refused: str | None = None  # substring of the refusal reason; None: the request must go through
    stage: str = "request"  # where a refusal happens: "request" (check_url) or "connect" (resolver)
    reach: tuple[str, ...] = ()  # accepted: the address the trap must see (one of them)
    port: int = 8000  # accepted: the port the trap must see
    request: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "request", {"id": self.id, **self.entry.request(self.url)})


def refused(entry: EntryPoint, url: str, reason: str, *, tag: str = "", stage: str = "request") -> Case:
    return Case(f"{entry.name}:{tag or ascii(url)[1:-1]}", entry, url, refused=reason, stage=stage)


def accepted(entry: EntryPoint, url: str, *reach: str, port: int = 8000, tag: str = "") -> Case:
    """``reach``: the address the connection must arrive at (a name with several: any one of them)."""
    return Case(f"{entry.name}:{tag or ascii(url)[1:-1]}", entry, url, reach=reach, port=port)


def refusal_text(case: Case, body: Any) -> str:
    """The reason text the gateway gave, in the form the entry point answers with."""
    assert isinstance(body, dict) and body.get("status") == "failure", body
    # A config is refused while it is validated, in Portkey's schema-error form, naming the key; a URL
    # from the header, or one refused at connection time, in the plain form.
    if case.entry.config is not None and case.stage == "request":
        assert body["message"] == "Invalid config passed", body
        prefix = f"path: {case.entry.config_path}, message: {INVALID_HOST}"
        matching = [error for error in body.get("errors", []) if error.startswith(prefix)]
        assert len(matching) == 1, body
        return matching[0][len(prefix):]
    assert body["message"].startswith(INVALID_HOST), body
    return body["message"][len(INVALID_HOST):]


def check(case: Case, result: dict) -> None:
    """Assert that the scenario's ``result`` for ``case`` is what the case expects."""
    if case.refused is not None:
        assert result["status"] == 400, result
        assert case.refused in refusal_text(case, result["body"]), result["body"]
        assert result["hits"] == [], f"refused, yet the gateway connected: {result['hits']}"
        assert result["stages"] == [case.stage], result["security_log"]
        return
    assert result["status"] == 200, result
    assert result["stages"] == [], result["security_log"]
    assert len(result["hits"]) == 1, result
    assert (result["hits"][0]["address"], result["hits"][0]["port"]) in {(a, case.port) for a in case.reach}
    assert result["body"]["object"] == "trap" and result["body"]["address"] == result["hits"][0]["address"]
    path = URL(case.url).path.rstrip("/") + case.entry.path[len("/v1"):]
    assert result["hits"][0]["request_line"] == f"{case.entry.method} {path} HTTP/1.1", result
