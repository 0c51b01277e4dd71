"""Panorama's paths mapped onto the node's folders."""

import io
import logging
import logging.handlers
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

import panoramasdk
from panoramasdk import _paths
from conftest import SDK_ROOT


@pytest.fixture
def mapped(vantage_env):
    _paths.uninstall()
    assert _paths.install() is True
    yield vantage_env
    _paths.uninstall()


def test_rotating_file_handler_rolls_over_in_vantage_logs(mapped):
    logger = logging.getLogger("panorama-app-test")
    logger.propagate = False
    handler = logging.handlers.RotatingFileHandler(
        "/opt/aws/panorama/logs/app.log", maxBytes=200, backupCount=2)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    try:
        for i in range(40):
            logger.warning("line %03d of the application's log", i)
    finally:
        logger.removeHandler(handler)
        handler.close()
    logs = mapped["logs"]
    assert sorted(os.listdir(str(logs))) == ["app.log", "app.log.1", "app.log.2"]
    assert "line 039" in (logs / "app.log").read_text()
    assert all(os.path.getsize(str(logs / name)) <= 200 for name in ("app.log", "app.log.1", "app.log.2"))


def test_makedirs_and_pathlib_in_storage(mapped):
    os.makedirs("/opt/aws/panorama/storage/x/y", exist_ok=True)
    os.makedirs("/opt/aws/panorama/storage/x/y", exist_ok=True)
    assert (mapped["storage"] / "x" / "y").is_dir()
    p = pathlib.Path("/opt/aws/panorama/storage/a.txt")
    p.write_text("counted 3")
    assert (mapped["storage"] / "a.txt").read_text() == "counted 3"
    assert p.read_text() == "counted 3" and p.exists() and p.stat().st_size == 9
    assert sorted(os.listdir("/opt/aws/panorama/storage")) == ["a.txt", "x"]
    assert sorted(e.name for e in os.scandir("/opt/aws/panorama/storage")) == ["a.txt", "x"]
    assert sorted(q.name for q in pathlib.Path("/opt/aws/panorama/storage").iterdir()) == ["a.txt", "x"]
    os.rename("/opt/aws/panorama/storage/a.txt", "/opt/aws/panorama/storage/x/b.txt")
    assert (mapped["storage"] / "x" / "b.txt").exists()
    shutil.copy("/opt/aws/panorama/storage/x/b.txt", "/opt/aws/panorama/storage/c.txt")
    os.remove("/opt/aws/panorama/storage/c.txt")
    shutil.rmtree("/opt/aws/panorama/storage/x")
    assert os.listdir(str(mapped["storage"])) == []


def test_panorama_source_reads_from_vantage_source(mapped):
    (mapped["source"] / "labels.txt").write_text("background\nperson\n")
    with open("/panorama/labels.txt") as f:
        assert f.read().splitlines() == ["background", "person"]
    with io.open(b"/panorama/labels.txt", "rb") as f:
        assert f.read().startswith(b"background")
    assert os.path.isfile(pathlib.Path("/panorama") / "labels.txt")
    assert os.access("/panorama/labels.txt", os.R_OK)


def test_other_paths_are_untouched(mapped, tmp_path):
    assert _paths.real_path("/panoramax/a") == "/panoramax/a"
    assert _paths.real_path("/opt/aws/panorama/storagex") == "/opt/aws/panorama/storagex"
    assert _paths.real_path("panorama/a") == "panorama/a"
    own = tmp_path / "own.txt"
    with open(str(own), "w") as f:
        f.write("x")
    assert own.read_text() == "x"
    with pytest.raises(FileNotFoundError):
        open("/panoramax/nothing")


def test_real_path_for_c_extensions(mapped):
    storage = str(mapped["storage"])
    assert panoramasdk.real_path("/opt/aws/panorama/storage/snap.jpg") == os.path.join(storage, "snap.jpg")
    assert panoramasdk.real_path("/opt/aws/panorama/storage") == storage
    assert panoramasdk.real_path(pathlib.Path("/opt/aws/panorama/logs/x")) == os.path.join(str(mapped["logs"]), "x")
    assert panoramasdk.real_path(b"/panorama/m.onnx") == os.fsencode(os.path.join(str(mapped["source"]), "m.onnx"))


def test_install_twice_wraps_once(mapped):
    before = os.stat
    assert _paths.install() is True
    assert os.stat is before
    assert os.stat.__wrapped__ is not None and not hasattr(os.stat.__wrapped__, "__wrapped__")
    with open("/opt/aws/panorama/storage/once", "w") as f:
        f.write("1")
    assert (mapped["storage"] / "once").exists()


def test_uninstall_restores(vantage_env):
    original = os.stat
    _paths.install()
    assert os.stat is not original
    _paths.uninstall()
    assert os.stat is original and builtins_open_is_plain()


def builtins_open_is_plain():
    import builtins
    return builtins.open is io.open and not hasattr(builtins.open, "__wrapped__")


def test_sitecustomize_maps_paths_before_the_app_runs(vantage_env, tmp_path):
    # A fresh interpreter as the runtime starts it: the SDK and vantage_boot on PYTHONPATH, VANTAGE_SOCKET set.
    # The mapping is in place before the application imports anything, and numpy is not loaded for it.
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([SDK_ROOT, os.path.join(SDK_ROOT, "vantage_boot")])
    env["VANTAGE_SOCKET"] = str(tmp_path / "unused.sock")
    code = (
        "import sys, logging.handlers\n"
        "assert 'numpy' not in sys.modules, 'numpy loaded at start-up'\n"
        "h = logging.handlers.RotatingFileHandler('/opt/aws/panorama/logs/app.log', maxBytes=30, backupCount=1)\n"
        "r = logging.LogRecord('a', 30, 'x', 1, 'hello from the app %d', (1,), None)\n"
        "h.emit(r); h.emit(r); h.close()\n"
        "print(open('/panorama/labels.txt').read())\n"
    )
    (vantage_env["source"] / "labels.txt").write_text("person")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=str(tmp_path), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "person"
    assert sorted(os.listdir(str(vantage_env["logs"]))) == ["app.log", "app.log.1"]
    assert out.stderr == ""
