#!/usr/bin/python3
"""Scale-out with the Python client (client/python's LossClient): three
loss_server processes on loopback ports, one LossClient over all three (an
ipv4: target list) with round_robin, client-side health checking and a retry
policy in its service config. While client threads send requests, one
replica is killed (SIGKILL) and later restarted on its port.

No call may fail. The spread is read from each replica's /metrics (its count
of answered Evaluate requests), exactly: whenever the clients are paused (no
call in flight), the counters' growth adds up to the calls made since the
last pause. The one stretch that cannot add up is the killed process's own:
its counter dies with it, so the calls it answered between the pause before
the kill and the kill are the remainder, which must not be negative.

  LOSS_SERVER=build/server/loss_server /usr/bin/python3 -m pytest tests/scaleout_python_test.py
"""

import atexit
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PACKAGE_DIR = os.path.join(REPO, "client", "python")
LOSS_SERVER = os.environ.get("LOSS_SERVER") or os.path.join(REPO, "build", "server", "loss_server")

REPLICAS = 3
CLIENT_THREADS = 4
PHASE_TIMEOUT_S = 30
ANSWERED = 'lossservice_requests_total{rpc="Evaluate",loss="mse",code="OK"}'

# What a client of docker/k8s's headless Service should use (README, "Running
# in production").
with open(os.path.join(REPO, "docker", "service-config.json")) as f:
  SERVICE_CONFIG = json.load(f)
# Reconnect to a restarted replica within a fraction of a second (gRPC's
# default backoff starts at 1 s and grows to 120 s).
RECONNECT = (("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
             ("grpc.max_reconnect_backoff_ms", 500))

# MSE of [1, 2] against [1, 4] is exactly 2.
INPUT = np.array([1, 2], dtype=np.float32)
TARGET = np.array([1, 4], dtype=np.float32)


def _import_client():
  """lossservice from this source tree, its stubs generated as its build
  does, in a temporary directory."""
  out = tempfile.mkdtemp(prefix="lossservice_py_")
  shutil.copytree(os.path.join(PACKAGE_DIR, "lossservice"), os.path.join(out, "lossservice"),
                  ignore=shutil.ignore_patterns("__pycache__"))
  subprocess.run([sys.executable, "setup.py", "stubs", out], cwd=PACKAGE_DIR, check=True)
  atexit.register(shutil.rmtree, out, True)
  sys.path.insert(0, out)
  import lossservice
  return lossservice


lossservice = _import_client()


def wait_for(what, done):
  deadline = time.monotonic() + PHASE_TIMEOUT_S
  while not done():
    if time.monotonic() > deadline:
      pytest.fail(f"timed out waiting for {what}")
    time.sleep(0.02)


class Replica:
  """A loss_server process on 127.0.0.1, with /metrics on a free port."""

  def __init__(self, log_dir, index):
    self.log_path = os.path.join(log_dir, f"replica_{index}.log")
    self.process = None
    self.port = 0
    self.metrics_port = 0

  def start(self, port=0):
    with open(self.log_path, "w") as log:
      self.process = subprocess.Popen(
          [LOSS_SERVER, f"--address=127.0.0.1:{port}", "--metrics_address=127.0.0.1:0"],
          stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
      text = self.log()
      listening = re.search(r"lossservice listening on 127\.0\.0\.1:(\d+)", text)
      metrics = re.search(r"metrics listening on http://127\.0\.0\.1:(\d+)/metrics", text)
      if listening and metrics:
        self.port, self.metrics_port = int(listening.group(1)), int(metrics.group(1))
        assert port in (0, self.port), text
        return
      assert self.process.poll() is None, f"loss_server exited: {text}"
      time.sleep(0.02)
    pytest.fail(f"loss_server did not listen within 10 s: {self.log()}")

  def log(self):
    with open(self.log_path) as f:
      return f.read()

  def answered(self):
    """Its count of answered Evaluate requests, from /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
      text = r.read().decode()
    for line in text.splitlines():
      if line.startswith(ANSWERED + " "):
        return int(float(line.split()[-1]))
    return 0  # a counter that has not moved yet is not exported

  def kill(self):
    self.process.send_signal(signal.SIGKILL)
    assert self.process.wait(10) == -signal.SIGKILL

  def stop(self):
    if self.process is not None and self.process.poll() is None:
      self.process.kill()
      self.process.wait(10)


class Load:
  """Client threads calling mse_loss on one LossClient until stopped; pause()
  holds every thread between two calls."""

  def __init__(self, client):
    self.client = client
    self.cond = threading.Condition()
    self.paused = self.stopped = False
    self.parked = 0
    self.answered = 0
    self.failures = []
    self.threads = [threading.Thread(target=self._run) for _ in range(CLIENT_THREADS)]
    for t in self.threads:
      t.start()

  def _run(self):
    while True:
      with self.cond:
        if self.paused and not self.stopped:
          self.parked += 1
          self.cond.notify_all()
          self.cond.wait_for(lambda: not self.paused or self.stopped)
          self.parked -= 1
        if self.stopped:
          return
      try:
        loss = self.client.mse_loss(INPUT, TARGET, timeout=10)
        failure = None if loss.shape == () and float(loss) == 2.0 else f"wrong loss {loss!r}"
      except lossservice.LossServiceError as e:
        failure = str(e)
      with self.cond:
        if failure is None:
          self.answered += 1
        else:
          self.failures.append(failure)

  def pause(self):
    """Returns the calls answered so far, once no call is in flight."""
    with self.cond:
      self.paused = True
      assert self.cond.wait_for(lambda: self.parked == CLIENT_THREADS, PHASE_TIMEOUT_S), \
          "the client threads did not pause"
      return self.answered

  def resume(self):
    with self.cond:
      self.paused = False
      self.cond.notify_all()

  def stop(self):
    with self.cond:
      self.stopped = True
      self.cond.notify_all()
    for t in self.threads:
      t.join()


@pytest.fixture
def replicas(tmp_path):
  rs = [Replica(str(tmp_path), i) for i in range(REPLICAS)]
  try:
    for r in rs:
      r.start()
    yield rs
  finally:
    for r in rs:
      r.stop()


def test_killed_replica_is_retried_around_and_takes_calls_again_on_its_port(replicas):
  target = "ipv4:" + ",".join(f"127.0.0.1:{r.port}" for r in replicas)
  client = lossservice.LossClient(target, service_config=SERVICE_CONFIG, options=RECONNECT)
  load = Load(client)
  victim, survivors = replicas[1], [replicas[0], replicas[2]]
  try:
    # Every replica takes calls; then, all connected, evenly; the counters
    # add up.
    wait_for("50 calls on every replica", lambda: all(r.answered() >= 50 for r in replicas))
    warm_calls = load.pause()
    warm = [r.answered() for r in replicas]
    assert sum(warm) == warm_calls, warm
    load.resume()
    wait_for("100 more calls on every replica",
             lambda: all(r.answered() >= n + 100 for r, n in zip(replicas, warm)))
    calls = load.pause()
    spread = [r.answered() for r in replicas]
    assert sum(spread) == calls, spread
    share = [n - w for n, w in zip(spread, warm)]
    assert all(n * 100 >= (calls - warm_calls) * 25 for n in share), f"uneven: {share}"
    print(f"spread over {REPLICAS} replicas by /metrics: {share} (of {calls - warm_calls} calls "
          f"after {warm_calls} to warm up)")
    load.resume()

    # SIGKILL one while the calls go on: the other two take them all.
    victim.kill()
    at_kill = [r.answered() for r in survivors]
    wait_for("200 more calls on each other replica",
             lambda: all(r.answered() >= n + 200 for r, n in zip(survivors, at_kill)))
    calls_down = load.pause()
    down = [r.answered() for r in survivors]
    # What the killed one answered between the pause and its death.
    before_death = (calls_down - calls) - sum(d - s for d, s in zip(down, [spread[0], spread[2]]))
    assert before_death >= 0, (calls, calls_down, spread, down)
    print(f"replica {victim.port} killed: the others answered {down}; "
          f"{before_death} answered by it before it died")
    load.resume()

    # Restarted on its port, it takes calls again; the counters add up.
    victim.start(victim.port)
    wait_for("a /metrics count of 100 on the restarted replica", lambda: victim.answered() >= 100)
    calls_up = load.pause()
    up = [replicas[0].answered(), victim.answered(), replicas[2].answered()]
    assert up[1] >= 100
    assert (up[0] - down[0]) + up[1] + (up[2] - down[1]) == calls_up - calls_down, (down, up)
    print(f"restarted on {victim.port}: by /metrics {up} ({calls_up} calls in all)")
    load.resume()
  finally:
    load.stop()
    client.close()
  assert load.failures == [], f"{len(load.failures)} calls failed, the first: {load.failures[0]}"
