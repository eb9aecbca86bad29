"""Malformed settings and arguments: one line naming the setting, exit 2, never a traceback.

The table runs in-process (every variable, fast); the processes below check that the command line turns each
kind of refusal into that one line, for `serve` and for a management command alike.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sluicegate.settings import SettingsError, settings_from_env

S = "SLUICEGATE_"

REFUSED = [
    # (variable, value, the message's start)
    ("PORT", "abc", "SLUICEGATE_PORT must be a whole number from 1 to 65535, not 'abc'"),
    ("PORT", "70000", "SLUICEGATE_PORT must be a whole number from 1 to 65535"),  # was bound as 4464
    ("PORT", "0", "SLUICEGATE_PORT must be a whole number from 1 to 65535"),
    ("PORT", "--5", "SLUICEGATE_PORT must be a whole number from 1 to 65535, not '--5'"),  # int()'s own words
    ("IDLE_TIMEOUT", "\u0663", "SLUICEGATE_IDLE_TIMEOUT must be a positive number"),  # float() read it as 3
    ("DRAIN_DELAY", "1_0", "SLUICEGATE_DRAIN_DELAY must be a number of seconds, 0 or more"),  # and this as 10
    ("WORKERS", "0", "SLUICEGATE_WORKERS must be a whole number from 1 to 1024"),
    ("WORKERS", "-3", "SLUICEGATE_WORKERS must be a whole number from 1 to 1024"),
    ("HOST", "   ", "SLUICEGATE_HOST must be an IP address or a host name"),
    ("HOST", "127.0.0.1:8080", "SLUICEGATE_HOST must be an IP address or a host name, without a scheme or a port"),
    ("HOST", "http://127.0.0.1", "SLUICEGATE_HOST must be an IP address or a host name"),
    ("DATA_DIR", "   ", "SLUICEGATE_DATA_DIR must name a directory"),
    ("MAX_BODY_BYTES", "0", "SLUICEGATE_MAX_BODY_BYTES must be a positive whole number"),  # every POST was a 413
    ("MAX_BODY_BYTES", "abc", "SLUICEGATE_MAX_BODY_BYTES must be a positive whole number, not 'abc'"),
    ("UPSTREAM_POOL_SIZE", "-1", "SLUICEGATE_UPSTREAM_POOL_SIZE must be a whole number from 0 to 1000000"),  # hung
    ("UPSTREAM_CONNECT_TIMEOUT", "nan", "SLUICEGATE_UPSTREAM_CONNECT_TIMEOUT must be a positive number"),  # a 500
    ("UPSTREAM_READ_TIMEOUT", "-1", "SLUICEGATE_UPSTREAM_READ_TIMEOUT must be a positive number"),
    ("UPSTREAM_READ_TIMEOUT", "1e400", "SLUICEGATE_UPSTREAM_READ_TIMEOUT must be a positive number"),
    ("UPSTREAM_READ_TIMEOUT", "1e7", "SLUICEGATE_UPSTREAM_READ_TIMEOUT must be a positive number (at most 1000000 s)"),
    ("DRAIN_DELAY", "1e300", "SLUICEGATE_DRAIN_DELAY must be a number of seconds, 0 or more (at most"),
    ("RETRY_BACKOFF_SCALE", "nan", "SLUICEGATE_RETRY_BACKOFF_SCALE must be a number from 0 to 1000"),
    ("RETRY_BACKOFF_SCALE", "inf", "SLUICEGATE_RETRY_BACKOFF_SCALE must be a number from 0 to 1000"),
    ("RETRY_BACKOFF_SCALE", "-1", "SLUICEGATE_RETRY_BACKOFF_SCALE must be a number from 0 to 1000"),
    ("CONFIG_CACHE_SIZE", "1.5", "SLUICEGATE_CONFIG_CACHE_SIZE must be a positive whole number"),
    # Positive numbers both: "must be a positive number" misled.
    ("LOG_QUEUE_MAX", "5.0", "SLUICEGATE_LOG_QUEUE_MAX must be a positive whole number, not '5.0'"),
    ("MAX_BODY_BYTES", "9" * 26, "SLUICEGATE_MAX_BODY_BYTES must be a positive whole number (at most 9007199254740991)"),
    ("LOG_BODY_MAX_BYTES", "-1", "SLUICEGATE_LOG_BODY_MAX_BYTES must be a whole number from 0 to"),  # cut a byte
    ("LOG_RETENTION_DAYS", "99999999999999999999", "SLUICEGATE_LOG_RETENTION_DAYS must be a whole number from 1"),
    ("LOG_BODIES", "ture", "SLUICEGATE_LOG_BODIES must be on or off, not 'ture'"),  # read as off
    ("ACCESS_LOG", "2", "SLUICEGATE_ACCESS_LOG must be on or off"),
    ("LIMITS_FAIL_OPEN", "enabled", "SLUICEGATE_LIMITS_FAIL_OPEN must be on or off"),
    ("AUTH", "disabled", "SLUICEGATE_AUTH must be one of auto, required, off, not 'disabled'"),
    ("UPSTREAM_CLIENT", "curl", "SLUICEGATE_UPSTREAM_CLIENT must be one of h1, reqwest, aiohttp"),
    ("CACHE_BACKEND", "abc", "SLUICEGATE_CACHE_BACKEND must be one of memory, store, redis, off"),
    ("CACHE_EMBEDDER", "@", "SLUICEGATE_CACHE_EMBEDDER must be minilm, off, or @provider-slug/model"),
    ("CACHE_EMBEDDER", "@slug", "SLUICEGATE_CACHE_EMBEDDER must be minilm, off, or @provider-slug/model"),
    ("CACHE_EMBEDDER", "bert", "SLUICEGATE_CACHE_EMBEDDER must be minilm, off"),
    ("CACHE_SEMANTIC_THRESHOLD", "1.5", "SLUICEGATE_CACHE_SEMANTIC_THRESHOLD must be a number above 0 to 1"),
    ("REDIS_URL", "abc", "SLUICEGATE_REDIS_URL must be a redis://, rediss:// or unix:// URL with a host"),
    ("REDIS_URL", "redis://127.0.0.1:6379/abc", "SLUICEGATE_REDIS_URL names no database"),  # was database 0
    ("REDIS_URL", "redis://127.0.0.1:99999/0", "SLUICEGATE_REDIS_URL is not a URL"),
    ("CACHE_REDIS_URL", "redis://[::1", "SLUICEGATE_CACHE_REDIS_URL is not a URL"),
    ("OTLP_ENDPOINT", "http://[::1", "SLUICEGATE_OTLP_ENDPOINT is not a URL"),  # spans were silently dropped
    ("OTLP_ENDPOINT", "ftp://collector", "SLUICEGATE_OTLP_ENDPOINT must be an http:// or https:// URL"),
    ("OTLP_HEADERS", "a b=c", "SLUICEGATE_OTLP_HEADERS expected name=value pairs"),  # sent as "a b: c"
    ("PROVIDER_URL_OPENAI", "abc", "SLUICEGATE_PROVIDER_URL_OPENAI must be an http:// or https:// URL"),
    ("PROVIDER_URL_", "http://127.0.0.1:9/v1", "SLUICEGATE_PROVIDER_URL_ names no provider"),
]


@pytest.mark.parametrize(("variable", "value", "message"), REFUSED)
def test_a_malformed_setting_is_refused_naming_it(variable: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        settings_from_env({S + variable: value})
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(("variable", "value"), [
    ("REDIS_URL", "redis://:hunter2-secret@127.0.0.1:6379/abc"),
    ("CACHE_REDIS_URL", "rediss://user:hunter2-secret@[::1"),
    ("OTLP_HEADERS", "authorization hunter2-secret"),
    ("OTLP_ENDPOINT", "http://user:hunter2-secret@[::1"),
])
def test_a_refused_secret_is_never_shown(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        settings_from_env({S + variable: value})
    assert "hunter2" not in str(caught.value) and str(caught.value).startswith(S + variable)


@pytest.mark.parametrize(("variable", "value", "name", "expected"), [
    ("HOST", "[::1]", "host", "::1"),
    ("PORT", " 8080 ", "port", 8080),
    ("UPSTREAM_POOL_SIZE", "0", "upstream_pool_size", 0),
    ("RETRY_BACKOFF_SCALE", "0", "retry_backoff_scale", 0.0),
    ("LOG_BODIES", "Off", "log_bodies", False),
    ("LIMITS_FAIL_OPEN", "1", "limits_fail_open", True),
    ("CACHE_EMBEDDER", "MiniLM", "cache_embedder", "minilm"),
    ("CACHE_EMBEDDER", "@gpu-box/bge-small", "cache_embedder", "@gpu-box/bge-small"),
    ("CACHE_SEMANTIC_THRESHOLD", "1", "cache_semantic_threshold", 1.0),
    ("REDIS_URL", "redis://:pw@127.0.0.1:6379/2", "redis_url", "redis://:pw@127.0.0.1:6379/2"),
    ("REDIS_URL", "unix:///run/redis.sock", "redis_url", "unix:///run/redis.sock"),
])
def test_what_the_checks_still_take(variable: str, value: str, name: str, expected: object) -> None:
    assert getattr(settings_from_env({S + variable: value}), name) == expected


# -- through the command line, as a process -----------------------------------------------------------------


def _sluicegate(*argv: str | bytes, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    full = {**{k: v for k, v in os.environ.items() if not k.startswith(S)}, **env}
    return subprocess.run([sys.executable, "-m", "sluicegate", *argv], capture_output=True, text=True,
                          errors="replace", env=full, timeout=timeout)


@pytest.mark.parametrize(("env", "message"), [
    ({"SLUICEGATE_IDLE_TIMEOUT": "0"}, "SLUICEGATE_IDLE_TIMEOUT must be a positive number, not '0'"),
    ({"SLUICEGATE_PORT": "abc"}, "SLUICEGATE_PORT must be a whole number from 1 to 65535, not 'abc'"),
    ({"SLUICEGATE_LOG_JOURNAL": "ture"}, "SLUICEGATE_LOG_JOURNAL must be on or off"),
    # An entry no Host could match; "*." switched the check off as "*" does.
    ({"SLUICEGATE_ALLOWED_HOSTS": "gw.example.test, *."}, "SLUICEGATE_ALLOWED_HOSTS: '*.' is not a host name"),
    ({"SLUICEGATE_ALLOWED_HOSTS": "gw.*.example.test"},
     "SLUICEGATE_ALLOWED_HOSTS: 'gw.*.example.test' is not a host name"),
    ({"SLUICEGATE_DATABASE_URL": "sqlite://"}, "SLUICEGATE_DATABASE_URL names an in-memory SQLite database"),
    # Set-up fails after the store and the request log started: they are closed before the line is printed.
    ({"SLUICEGATE_CACHE_BACKEND": "redis"}, "SLUICEGATE_CACHE_BACKEND=redis needs SLUICEGATE_CACHE_REDIS_URL"),
    # Each started a server no client could sign in to: a bearer token is one run of visible ASCII.
    ({"SLUICEGATE_ADMIN_TOKEN": "abcdefghijklmnopqrst\n"}, "SLUICEGATE_ADMIN_TOKEN must be visible ASCII"),
    ({"SLUICEGATE_ADMIN_TOKEN": "abcdefghijklmnopqrst "}, "SLUICEGATE_ADMIN_TOKEN must be visible ASCII"),
    ({"SLUICEGATE_ADMIN_TOKEN": "abcdefghij klmnopqrst"}, "SLUICEGATE_ADMIN_TOKEN must be visible ASCII"),
    ({"SLUICEGATE_ADMIN_TOKEN": "abcdefghijklmnopqrst\x01"}, "SLUICEGATE_ADMIN_TOKEN must be visible ASCII"),
])
def test_serve_refuses_in_one_line(tmp_path: Path, env: dict[str, str], message: str) -> None:
    done = _sluicegate("serve", "--host", "127.0.0.1", "--port", "9", "--data-dir", str(tmp_path / "data"),
                       env=env)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(f"sluicegate: cannot start: {message}")


@pytest.mark.parametrize(("argv", "message"), [
    (["--port", "70000"], "argument --port: must be a whole number from 1 to 65535, not '70000'"),
    (["--workers", "0"], "argument --workers: must be a whole number from 1 to 1024, not '0'"),
    (["--host", ""], "argument --host: must be an IP address or a host name"),  # listened on every address
    (["--data-dir", ""], "argument --data-dir: must name a directory"),
])
def test_serve_s_flags_take_the_same_checks(argv: list[str], message: str) -> None:
    done = _sluicegate("serve", *argv, env={})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert message in done.stderr


def test_a_management_command_refuses_a_setting_in_one_line(tmp_path: Path) -> None:
    done = _sluicegate("providers", "list", "--data-dir", str(tmp_path), env={"SLUICEGATE_AUTH": "bogus"})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == "sluicegate: error: SLUICEGATE_AUTH must be one of auto, required, off, not 'bogus'"


def test_an_empty_data_dir_argument_is_not_the_current_directory(tmp_path: Path) -> None:
    (tmp_path / "here").mkdir(mode=0o755)
    done = subprocess.run([sys.executable, "-m", "sluicegate", "providers", "list", "--data-dir", ""],
                          cwd=tmp_path / "here", capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in os.environ.items() if not k.startswith(S)})
    assert done.returncode == 2 and "must name a directory" in done.stderr
    assert list((tmp_path / "here").iterdir()) == []  # no master.key, no database, and its mode unchanged
    assert (tmp_path / "here").stat().st_mode & 0o777 == 0o755


def test_a_data_dir_that_is_a_file_is_refused_naming_it(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    done = _sluicegate("serve", "--port", "9", env={"SLUICEGATE_DATA_DIR": str(tmp_path / "a-file")})
    # It said "cannot start: [Errno 17] File exists".
    assert done.returncode == 2 and "SLUICEGATE_DATA_DIR names a file, not a directory" in done.stderr, done.stderr
    flag = _sluicegate("keys", "list", "--data-dir", str(tmp_path / "a-file"), env={})
    assert flag.returncode == 2 and "names a file, not a directory" in flag.stderr, flag.stderr


@pytest.mark.parametrize(("argv", "variable"), [
    (["keys", "list"], "SLUICEGATE_DATA_DIR"),  # a traceback (the store's file URI could not be made)
    (["serve", "--port", "9"], "SLUICEGATE_DATA_DIR"),  # "'utf-8' codec can't encode character '\udcfe'"
    (["keys", "list"], "SLUICEGATE_DATABASE_URL"),
])
def test_a_setting_that_is_not_utf8_is_refused_in_one_line(tmp_path: Path, argv: list[str], variable: str) -> None:
    value = os.fsencode(str(tmp_path)) + b"/dd\xfe" if variable.endswith("DIR") else b"sqlite:////tmp/x\xfe.db"
    env = {**{k: v for k, v in os.environb.items() if not k.startswith(b"SLUICEGATE_")}, variable.encode(): value}
    done = subprocess.run([sys.executable, "-m", "sluicegate", *argv], capture_output=True, text=True, env=env,
                          timeout=60, errors="replace")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines()[-1].endswith(f"{variable} is not valid UTF-8")


def test_a_header_from_an_environment_variable_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    env = {**{k: v for k, v in os.environb.items() if not k.startswith(b"SLUICEGATE_")},
           b"ENVB": b"\xff\xfe-secret-value"}
    done = subprocess.run([sys.executable, "-m", "sluicegate", "providers", "add", "p", "--custom-host",
                           "http://127.0.0.1:8000/v1", "--header-env", "X-A=ENVB", "--data-dir", str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=60, errors="replace")
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip() == "sluicegate: error: --header-env: ENVB is not valid UTF-8"


def test_an_argument_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "sluicegate", "workspaces", "create", b"\xff\xfeteam",
                           "--data-dir", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == "sluicegate: error: argument 3 is not valid UTF-8"


@pytest.mark.parametrize("price", ["m:1:2:1e400", "m:nan:1", "m:1:inf"])
def test_a_price_that_is_not_a_finite_number_is_refused(tmp_path: Path, price: str) -> None:
    done = _sluicegate("limits", "set", "provider", "p1", "--price", price, "--data-dir", str(tmp_path), env={})
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "is not a number" in done.stderr


def test_ctrl_c_ends_a_followed_tail_quietly(tmp_path: Path) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(S)}, "SLUICEGATE_DATA_DIR": str(tmp_path)}
    follower = subprocess.Popen([sys.executable, "-m", "sluicegate", "logs", "tail", "-f"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "sluicegate.db").exists() and time.monotonic() < deadline:
            time.sleep(0.1)  # following: its store is open
        time.sleep(0.5)
        follower.send_signal(signal.SIGINT)
        _, stderr = follower.communicate(timeout=30)
    finally:
        if follower.poll() is None:
            follower.kill()
    assert follower.returncode == 130
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr


def test_resetting_usage_in_an_unreachable_redis_is_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as closed:  # a loopback port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    made = _sluicegate("providers", "add", "p1", "--custom-host", "http://127.0.0.1:9/v1", "--data-dir", str(tmp_path),
                       env={})
    assert made.returncode == 0, made.stderr
    done = _sluicegate("limits", "reset-usage", "provider", "p1", "--data-dir", str(tmp_path),
                       env={"SLUICEGATE_REDIS_URL": f"redis://:hunter2-secret@127.0.0.1:{port}/0"})
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert "usage not reset: the limits store (Redis) is unreachable" in done.stderr
    assert "hunter2" not in done.stderr


@pytest.mark.parametrize("settle", ["inf", "nan", "-1", "1e400"])
def test_vault_rotate_s_settle_is_a_bounded_number_of_seconds(tmp_path: Path, settle: str) -> None:
    done = _sluicegate("vault", "rotate", "--settle", settle, "--data-dir", str(tmp_path), env={}, timeout=30)
    assert done.returncode == 2 and "argument --settle: must be a number from 0 to 60" in done.stderr


def test_a_provider_url_for_no_known_provider_is_cannot_start(tmp_path: Path) -> None:
    """A typo sent that provider's requests to its public URL, past the egress proxy meant for them."""
    done = _sluicegate("serve", "--host", "127.0.0.1", "--port", "9", "--data-dir", str(tmp_path / "data"),
                       env={"SLUICEGATE_PROVIDER_URL_OPENAPI": "http://127.0.0.1:9/v1"})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("sluicegate: cannot start: SLUICEGATE_PROVIDER_URL_OPENAPI: no such provider (known: openai")


def test_a_provider_url_with_a_dash_in_its_id_is_known() -> None:
    from sluicegate.app import refuse_unknown_provider_urls

    refuse_unknown_provider_urls(settings_from_env({"SLUICEGATE_PROVIDER_URL_TOGETHER_AI": "http://127.0.0.1:9/v1"}))
