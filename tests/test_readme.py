"""The README's two set-up commands stay true: CI runs exactly its test command."""

import re
from pathlib import Path

import pytest

from tests.conftest import needs_shared

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


def _python_example() -> str:
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)[0]


@needs_shared
@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_the_python_example_runs_with_every_tensor_on_one_device(tmp_path, monkeypatch, fixture_path, quick_avatar,
                                                                 small_directions, device):
    """The README's Python example, run as written (files G.pt, me.pt, A.pt in the working folder). On `meta`,
    which stands in for CUDA, a tensor left on the host fails as it would on a GPU: the example once mixed a
    CUDA generator with the avatar's code and A on the host."""
    import shutil

    import torch

    from models import checkpoint
    code = _python_example()
    line = 'device = "cuda" if torch.cuda.is_available() else "cpu"'
    assert line in code
    for name, src in (("G.pt", fixture_path), ("me.pt", quick_avatar), ("A.pt", small_directions)):
        shutil.copy(src, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    if device == "meta":    # a meta tensor has no bytes to hash: the avatar's generator check gets the real hash
        real_hash = checkpoint.weights_hash(checkpoint.load_generator(fixture_path))
        monkeypatch.setattr(checkpoint, "weights_hash", lambda G: real_hash)
    scope: dict = {}
    exec(compile(code.replace(line, f"device = {device!r}"), "README.md", "exec"), scope)
    assert scope["image"].device.type == device and tuple(scope["image"].shape) == (1, 3, 128, 128)
    assert tuple(scope["dw"].shape) == (1, 8, 512) and scope["frame"].shape[-1] == 128
    if device == "cpu":
        assert torch.isfinite(scope["image"]).all() and scope["image"].std() > 0.1
