"""nginx configuration text for the static upstream and for the proxy_pass floor. Pure: text in, text out.

Both run one worker: the static upstream then still serves far more than any gateway hop (so it is not
the bottleneck), and the floor is one process like the single-worker gateways it is compared with.
"""

from __future__ import annotations

import json

# A realistic, small chat completion; `id` lets a pre-flight check see that the answer really came
# from this upstream (through whichever hop).
STATIC_ID = "chatcmpl-sluicegate-bench"
STATIC_BODY = {
    "id": STATIC_ID,
    "object": "chat.completion",
    "created": 1700000000,
    "model": "bench-static",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello from the bench."},
                 "logprobs": None, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14},
}
FAIL_BODY = {"error": {"message": "bench: scripted failure", "type": "server_error", "code": None}}


def _quoted(obj: object) -> str:
    """JSON as a single-quoted nginx string (the JSON itself has no single quotes or backslashes)."""
    text = json.dumps(obj, separators=(",", ":"))
    assert "'" not in text and "\\" not in text
    return "'" + text + "'"


def _main_block(prefix: str, body: str) -> str:
    # daemon off: the Supervisor owns the process group; every path stays inside the prefix.
    return f"""daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 8192; multi_accept on; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    tcp_nodelay on;
{body}
}}
"""


def static_upstream(prefix: str, port: int) -> str:
    """`return 200 '<json>'` for any POST; /fail/... answers 503 (for the fallback scenario)."""
    body = f"""    server {{
        listen 127.0.0.1:{port} backlog=4096;
        default_type application/json;
        location /fail/ {{ return 503 {_quoted(FAIL_BODY)}; }}
        location / {{ return 200 {_quoted(STATIC_BODY)}; }}
    }}"""
    return _main_block(prefix, body)


def proxy_floor(prefix: str, static_port: int, sse_port: int, listen_static: int, listen_sse: int) -> str:
    """proxy_pass with a keep-alive pool: the physical floor of one proxy hop.

    Two listeners, because nginx (unlike a gateway) has no header that picks the upstream.
    Streaming turns buffering off so chunks pass as they come.
    """
    common = ("proxy_http_version 1.1; proxy_set_header Connection \"\"; "
              "proxy_set_header Host $host;")
    body = f"""    upstream static_up {{ server 127.0.0.1:{static_port}; keepalive 256; keepalive_requests 10000000; }}
    upstream sse_up {{ server 127.0.0.1:{sse_port}; keepalive 1024; keepalive_requests 10000000; }}
    server {{
        listen 127.0.0.1:{listen_static} backlog=4096;
        location / {{ {common} proxy_pass http://static_up; }}
    }}
    server {{
        listen 127.0.0.1:{listen_sse} backlog=4096;
        location / {{ {common} proxy_buffering off; proxy_read_timeout 600s; proxy_pass http://sse_up; }}
    }}"""
    return _main_block(prefix, body)
