"""A real private LLM registered in the Model Catalog as `@local-smollm2`, used by its slug.

Skipped when the gateway does not serve the Model Catalog (`sluicegate providers add …`, `@slug`
resolution). The provider is registered with the CLI before this gateway starts, so these tests do not
depend on the catalog's polling; `make demo` (tested in test_demo.py) registers into a running gateway.
"""

from __future__ import annotations

import os
import subprocess
import sys

import openai
import pytest
from portkey_ai import Portkey

from tests.e2e_real.capabilities import require_catalog
from tests.e2e_real.clients import MODEL, SHORT, user
from tests.gateway import GatewayProcess

SLUG = "local-smollm2"


@pytest.fixture(scope="module")
def catalog_gateway(tmp_path_factory, gateway, smol):
    require_catalog(gateway)
    data_dir = tmp_path_factory.mktemp("catalog-gateway")
    env = {**os.environ, "SLUICEGATE_DATA_DIR": str(data_dir)}
    subprocess.run([sys.executable, "-m", "sluicegate", "providers", "add", SLUG, "--spec", "openai",
                    "--custom-host", smol.v1, "--model", MODEL], env=env, check=True, timeout=60)
    process = GatewayProcess(data_dir).start()
    yield process
    process.stop()


def test_portkey_sdk_with_the_slug_as_provider(catalog_gateway):
    client = Portkey(base_url=catalog_gateway.v1, provider=f"@{SLUG}")
    response = client.chat.completions.create(model=MODEL, messages=user("Hello!"), max_tokens=SHORT)
    assert response.choices[0].message.content.strip()


def test_openai_sdk_with_the_slug_in_the_model_name(catalog_gateway):
    client = openai.OpenAI(api_key="no-key-needed", base_url=catalog_gateway.v1, max_retries=0)
    stream = client.chat.completions.create(model=f"@{SLUG}/{MODEL}", messages=user("Hello!"),
                                            max_tokens=SHORT, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices).strip()
