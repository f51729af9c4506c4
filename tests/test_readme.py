"""The README's two set-up commands stay true: CI runs exactly its test command."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _bash_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)


def test_readme_starts_with_install_run_and_test_commands():
    install_run, test = _bash_blocks()[:2]
    assert "pip install" in install_run and "live run" in install_run
    assert "pip install" in test and "pytest" in test


def test_ci_runs_exactly_the_readme_test_command():
    test_command = _bash_blocks()[1].strip()
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_lines
    assert ci_lines.index("python3 -m pip install torch==2.13.0") < ci_lines.index(test_command)
