"""README examples run as written (a user copies them first)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _tested_block(tag: str) -> str:
    text = README.read_text()
    match = re.search(rf"<!-- tested: {tag}\b.*?-->\s*```python\n(.*?)```", text, re.S)
    assert match, f"README has no tested block {tag!r}"
    return match.group(1)


def test_own_model_example_runs_as_written(capsys):
    exec(compile(_tested_block("own-model"), "README.md:own-model", "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["finetune", "kl_ft"]
    assert all("avg_gap" in line for line in lines)


def test_influence_example_runs_as_written(capsys):
    scope: dict = {}
    exec(compile(_tested_block("influence"), "README.md:influence", "exec"), scope)
    info = scope["patched"].unlearn_info
    assert info["reweighted"] > 0 and not info["cache_reused"]
    assert "cache_seconds" in capsys.readouterr().out
    again = scope["puma"].unlearn(scope["patched"], scope["split"])
    assert again.unlearn_info["cache_reused"]


def test_audit_example_runs_as_written(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the example writes runs/audit-digits
    scope: dict = {}
    exec(compile(_tested_block("audit"), "README.md:audit", "exec"), scope)
    lines = capsys.readouterr().out.splitlines()
    assert "models in the bank" in lines[0]
    assert [line.split()[0] for line in lines[1:]] == ["golden", "finetune"]
    assert (tmp_path / "runs" / "audit-digits" / "report.html").is_file()
