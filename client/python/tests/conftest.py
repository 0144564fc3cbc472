"""Fixtures of the Python client's tests: the package built from this source
tree (stubs generated into a temporary directory), a live loss_server on
127.0.0.1:0, a client of it, and the examples PyTorch computed.

LOSS_SERVER and LOSS_CLIENT name the binaries (ctest sets them; the default
is the build/ tree of the repository).
"""

import atexit
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE_DIR = os.path.dirname(HERE)
REPO = os.path.dirname(os.path.dirname(PACKAGE_DIR))
EXAMPLES_JSON = os.path.join(REPO, "tests", "golden", "examples.json")


def _build_package():
  """The package as its build makes it (the sources and the stubs generated
  by setup.py's own step) in a temporary directory, first on sys.path."""
  out = tempfile.mkdtemp(prefix="lossservice_py_")
  shutil.copytree(os.path.join(PACKAGE_DIR, "lossservice"), os.path.join(out, "lossservice"),
                  ignore=shutil.ignore_patterns("__pycache__"))
  subprocess.run([sys.executable, "setup.py", "stubs", out], cwd=PACKAGE_DIR, check=True)
  sys.path.insert(0, out)
  atexit.register(shutil.rmtree, out, True)
  return out


BUILT_PACKAGE = _build_package()


def binary(env, *relative):
  path = os.environ.get(env) or os.path.join(REPO, "build", *relative)
  if not os.access(path, os.X_OK):
    pytest.exit(f"{path} is not built (set {env} or run ./dev build)", returncode=2)
  return path


class Server:
  """A loss_server on 127.0.0.1:0; .address once it listens."""

  def __init__(self, *flags):
    self.log = tempfile.NamedTemporaryFile(prefix="loss_server_", suffix=".log", delete=False)
    self.process = subprocess.Popen(
        [binary("LOSS_SERVER", "server", "loss_server"), "--address", "127.0.0.1:0", *flags],
        stdout=self.log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
      m = re.search(r"listening on 127\.0\.0\.1:(\d+)", open(self.log.name).read())
      if m:
        self.address = f"127.0.0.1:{m.group(1)}"
        return
      if self.process.poll() is not None:
        break
      time.sleep(0.05)
    self.stop()
    raise RuntimeError("loss_server did not start: " + open(self.log.name).read())

  def stop(self):
    if self.process.poll() is None:
      self.process.terminate()
      self.process.wait(10)
    os.unlink(self.log.name)


@pytest.fixture(scope="session")
def server():
  s = Server()
  yield s
  s.stop()


@pytest.fixture(scope="session")
def address(server):
  return server.address


@pytest.fixture(scope="session")
def client(address):
  import lossservice
  with lossservice.LossClient(address, timeout=30) as c:
    yield c


@pytest.fixture(scope="session")
def examples():
  with open(EXAMPLES_JSON) as f:
    return json.load(f)["cases"]
