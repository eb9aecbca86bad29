"""cryptography (~8 MB of a gateway's memory) is loaded with the first credential sealed or opened, not at
start: a gateway without catalog credentials never needs it."""

from __future__ import annotations

import subprocess
import sys


def test_the_server_starts_without_cryptography_and_the_vault_loads_it_when_used(tmp_path) -> None:
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "import sluicegate.cli.main\n"
        "from sluicegate.settings import Settings\n"
        "from sluicegate.vault import Vault\n"
        f"vault = Vault.load(Settings(data_dir=Path({str(tmp_path)!r})))\n"
        "print('cryptography' in sys.modules)\n"
        "sealed = vault.encrypt('sk-secret', b'row')\n"
        "print('cryptography' in sys.modules, vault.decrypt(sealed, b'row'))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["False", "True sk-secret"]
