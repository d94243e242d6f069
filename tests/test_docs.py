"""The plain-xarray session in docs/store.md runs as written (without importing pipeline)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from pipeline import FeatureConfig, extract

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_store_doc_session_runs(corpus: Path, tmp_path: Path) -> None:
    store = tmp_path / "demo" / "features.zarr"
    extract([corpus], str(store), FeatureConfig(), scheduler="synchronous", label_from="parent", progress=False)
    text = (DOCS / "store.md").read_text()
    (code,) = re.findall(r"## A session with plain xarray\n.*?```python\n(.*?)```", text, flags=re.S)
    code = code.replace('"demo/features.zarr"', repr(str(store)))
    code = "\n".join(line for line in code.splitlines() if ".plot(" not in line)  # matplotlib is optional
    code += "\nimport sys\nassert 'pipeline' not in sys.modules\nprint(len(table), sorted(set(table['label'])))\n"
    proc = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, cwd=tmp_path, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "['noise', 'tones']" in proc.stdout
