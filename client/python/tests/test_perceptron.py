"""examples/perceptron.py, run briefly: the loss falls every logged epoch,
the accuracy reaches 95 %, and the PNG is written."""

import math
import os
import re
import subprocess
import sys

from conftest import BUILT_PACKAGE, REPO


def test_perceptron_trains_over_the_wire(tmp_path, address):
  png = tmp_path / "perceptron.png"
  env = dict(os.environ, PYTHONPATH=BUILT_PACKAGE, MPLBACKEND="Agg")
  out = subprocess.run(
      [sys.executable, os.path.join(REPO, "examples", "perceptron.py"), "--address", address,
       "--epochs", "40", "--out", str(png)],
      env=env, check=True, capture_output=True, text=True).stdout
  losses = [float(v) for v in re.findall(r"^epoch +\d+  loss (\S+)$", out, re.M)]
  assert len(losses) == 11, out  # epoch 1, every 4th, the last
  # w = 0, b = 0: every logit is 0 and the loss is log 2.
  assert losses[0] == round(math.log(2), 6)
  assert all(b < a for a, b in zip(losses, losses[1:])), losses
  accuracy = float(re.search(r"^accuracy (\S+)% \((\d+)/(\d+)\)$", out, re.M).group(1))
  assert accuracy >= 95.0, out
  assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  assert f"wrote {png}" in out


def test_perceptron_reports_a_failed_call(tmp_path):
  env = dict(os.environ, PYTHONPATH=BUILT_PACKAGE)
  p = subprocess.run(
      [sys.executable, os.path.join(REPO, "examples", "perceptron.py"), "--address",
       "127.0.0.1:1", "--epochs", "2"], env=env, capture_output=True, text=True)
  assert p.returncode == 1
  assert p.stderr.startswith("perceptron: UNAVAILABLE: "), p.stderr
