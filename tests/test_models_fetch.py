"""`live models`: registry, resumable verified downloads from a misbehaving local server, import, verify."""

import hashlib
from pathlib import Path

import pytest
import yaml

from live.cli import main
from live.model_store import ModelStore, ModelStoreError
from models import download as dl
from models.download import DownloadError, direct_url, gdrive_file_id
from models.registry import ModelEntry, RegistryError, load_registry
from tests.conftest import FIXTURES, needs_shared
from tests.http_server import MisbehavingServer


@pytest.fixture(scope="module")
def server():
    s = MisbehavingServer()
    if (FIXTURES / "face128.pt").is_file():
        s.serve("face128.pt", FIXTURES / "face128.pt")
        s.serve("A.pt", FIXTURES / "paper_a_matrix_format.pt")
    s.files["notamodel.pt"] = b"PK\x03\x04" + bytes(200_000)
    yield s
    s.close()


@pytest.fixture(scope="module")
def face128_sha():
    return hashlib.sha256((FIXTURES / "face128.pt").read_bytes()).hexdigest() if (FIXTURES / "face128.pt").is_file() else ""


def _entry(url, name="face", sha256=None, size=None, kind="generator", fmt="reference", file="face128.pt", **kw):
    return ModelEntry(name=name, kind=kind, description="test model", file=file, format=fmt, urls=(url,),
                      sha256=sha256, size=size, **kw)


def _store(tmp_path, *entries):
    return ModelStore(root=tmp_path / "cache", registry={e.name: e for e in entries})


def test_shipped_registry_is_valid():
    reg = load_registry()
    assert {"vox256", "vox256-e4e", "vox256-directions", "ffhq1024", "ffhq256-ada"} <= set(reg)
    assert reg["vox256"].resolution == 256 and reg["vox256"].channel_multiplier == 1
    assert all(e.urls for e in reg.values())


def test_user_registry_errors_name_the_entry(tmp_path):
    bad = tmp_path / "registry.yaml"
    bad.write_text(yaml.safe_dump({"mine": {"kind": "generator", "description": "x", "file": "m.pt",
                                            "format": "reference", "resolutoin": 256}}))
    with pytest.raises(RegistryError, match="'mine'.*resolutoin"):
        load_registry(bad)
    bad.write_text(yaml.safe_dump({"mine": {"kind": "generator", "description": "x", "file": "../m.pt",
                                            "format": "reference"}}))
    with pytest.raises(RegistryError, match="plain file name"):
        load_registry(bad)


def test_google_drive_links():
    assert gdrive_file_id("https://drive.google.com/file/d/1cBwIFwq6cYIA5iR8tEvj6BIL7Ji7azIH/view?usp=sharing") \
        == "1cBwIFwq6cYIA5iR8tEvj6BIL7Ji7azIH"
    assert gdrive_file_id("https://drive.google.com/uc?export=download&id=abc-_1") == "abc-_1"
    assert direct_url("https://drive.google.com/file/d/XYZ/view") == \
        "https://drive.usercontent.google.com/download?id=XYZ&export=download"
    assert direct_url("https://example.org/a.pkl") == "https://example.org/a.pkl"


@needs_shared
def test_fetch_verifies_and_indexes(server, tmp_path, face128_sha):
    store = _store(tmp_path, _entry(server.url("ok", "face128.pt"), sha256=face128_sha,
                                    size=(FIXTURES / "face128.pt").stat().st_size, resolution=128))
    m = store.fetch("face", progress=False)
    assert Path(m.path).read_bytes() == (FIXTURES / "face128.pt").read_bytes()
    assert m.sha256 == face128_sha and "128 px" in m.summary
    assert store.path("face") == Path(m.path)
    assert not list((tmp_path / "cache").glob("*.part"))
    # A second fetch is a no-op.
    n = len(server.requests)
    store.fetch("face", progress=False)
    assert len(server.requests) == n


@needs_shared
def test_dropped_connection_resumes_with_range(server, tmp_path, face128_sha):
    store = _store(tmp_path, _entry(server.url("drop", "face128.pt"), sha256=face128_sha))
    m = store.fetch("face", progress=False)
    assert m.sha256 == face128_sha
    ranges = [r for p, r in server.requests if p.startswith("/drop/")]
    assert ranges[0] is None and ranges[1] == f"bytes={len(server.files['face128.pt']) // 2}-"


@needs_shared
def test_stalled_server_times_out_and_resumes(server, tmp_path, face128_sha, monkeypatch):
    monkeypatch.setattr(dl, "TIMEOUT_S", 0.5)
    store = _store(tmp_path, _entry(server.url("stall", "face128.pt"), sha256=face128_sha))
    assert store.fetch("face", progress=False).sha256 == face128_sha


@needs_shared
def test_server_ignoring_range_restarts_cleanly(server, tmp_path, face128_sha):
    store = _store(tmp_path, _entry(server.url("norange", "face128.pt"), sha256=face128_sha))
    part = tmp_path / "cache" / "face128.pt.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(server.files["face128.pt"][:1000])  # an earlier, interrupted attempt
    m = store.fetch("face", progress=False)
    assert m.sha256 == face128_sha and m.size == len(server.files["face128.pt"])


@needs_shared
def test_wrong_bytes_are_rejected_and_removed(server, tmp_path, face128_sha):
    store = _store(tmp_path, _entry(server.url("wrong", "face128.pt"), sha256=face128_sha))
    with pytest.raises(DownloadError, match="sha256 .* does not match"):
        store.fetch("face", progress=False)
    assert not list((tmp_path / "cache").glob("face128.pt*"))
    with pytest.raises(ModelStoreError, match="live models fetch face"):
        store.path("face")


@needs_shared
def test_wrong_bytes_without_a_registry_hash_fail_the_load_check(server, tmp_path):
    store = _store(tmp_path, _entry(server.url("ok", "notamodel.pt"), file="n.pt"))
    with pytest.raises(DownloadError, match="does not load as face"):
        store.fetch("face", progress=False)
    assert not list((tmp_path / "cache").glob("n.pt*"))


@needs_shared
def test_google_drive_confirmation_is_followed(server, tmp_path, face128_sha):
    store = _store(tmp_path, _entry(server.url("drive", "face128.pt"), sha256=face128_sha))
    assert store.fetch("face", progress=False).sha256 == face128_sha
    assert any(p.startswith("/confirmed/face128.pt?") and "confirm=t" in p for p, _ in server.requests)


@pytest.mark.parametrize("mode, message", [
    ("quota", "quota for this file is used up"),
    ("html", "sent a web page \\('Sign in'\\)"),
    ("404", "not found \\(HTTP 404\\).*live models import PATH --name face"),
    ("403", "access denied \\(HTTP 403\\)"),
])
def test_http_failures_say_what_to_do(server, tmp_path, mode, message):
    server.files.setdefault("face128.pt", b"x" * 10)
    store = _store(tmp_path, _entry(server.url(mode, "face128.pt")))
    with pytest.raises(DownloadError, match=message):
        store.fetch("face", progress=False)
    assert not list((tmp_path / "cache").glob("face128.pt"))


def test_no_network(tmp_path):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    store = _store(tmp_path, _entry(f"http://127.0.0.1:{port}/face128.pt"))
    with pytest.raises(DownloadError, match="cannot reach 127.0.0.1.*HTTPS_PROXY"):
        store.fetch("face", progress=False)


def test_disk_full_is_reported_before_downloading(server, tmp_path, monkeypatch):
    server.files.setdefault("face128.pt", b"x" * 10)
    monkeypatch.setattr(dl.shutil, "disk_usage", lambda p: type("U", (), {"free": 10_000_000})())
    store = _store(tmp_path, _entry(server.url("ok", "face128.pt"), size=900_000_000))
    with pytest.raises(DownloadError, match="not enough disk space.*900 MB needed.*LIVE_HOME"):
        store.fetch("face", progress=False)


@needs_shared
def test_import_verify_and_broken_files(tmp_path, fixture_path):
    store = _store(tmp_path)
    m = store.import_file(fixture_path, name="mine")
    assert m.kind == "generator" and store.path("mine") == fixture_path.resolve()
    d = store.import_file(FIXTURES / "paper_a_matrix_format.pt", name="paperA")
    assert d.kind == "directions"
    assert [ok for _, ok, _ in store.verify()] == [True, True]
    with pytest.raises(ModelStoreError, match="does not load as a generator"):
        store.import_file(FIXTURES / "face128_golden.npz", name="bad", kind="generator")
    # A cached file that changes on disk fails verification and leaves the index.
    copy = tmp_path / "cache" / "copy.pt"
    copy.write_bytes(fixture_path.read_bytes())
    store.import_file(copy, name="copy")
    with open(copy, "r+b") as f:
        f.seek(5_000_000)
        f.write(b"\0" * 64)
    results = dict((n, (ok, msg)) for n, ok, msg in store.verify(["copy"]))
    assert results["copy"][0] is False and "sha256" in results["copy"][1]
    assert (tmp_path / "cache" / "copy.pt.invalid").is_file() and not copy.exists()
    with pytest.raises(ModelStoreError):
        store.path("copy")


@needs_shared
def test_cli_models_commands(server, tmp_path, face128_sha, capsys, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("LIVE_HOME", str(home))
    (home / "config").mkdir(parents=True)
    (home / "config" / "registry.yaml").write_text(yaml.safe_dump({
        "tiny": {"kind": "generator", "description": "the test fixture", "file": "tiny.pt", "format": "reference",
                 "resolution": 128, "urls": [server.url("drop", "face128.pt")], "sha256": face128_sha}}))
    server.dropped.discard("face128.pt")
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "tiny" in out and "vox256" in out and "not fetched" in out
    assert main(["models", "path", "tiny"]) == 2
    assert main(["models", "fetch", "tiny"]) == 0
    capsys.readouterr()
    assert main(["models", "path", "tiny"]) == 0
    assert capsys.readouterr().out.strip() == str(home / "cache" / "models" / "tiny.pt")
    assert main(["models", "verify"]) == 0
    assert main(["models", "info", str(home / "cache" / "models" / "tiny.pt")]) == 0
    # A cached model name works wherever a generator path does.
    assert main(["generate", "-g", "tiny", "--seeds", "0", "-o", str(tmp_path / "g.png")]) == 0
    assert (tmp_path / "g.png").is_file()
    assert main(["models", "fetch", "nosuch"]) == 2
