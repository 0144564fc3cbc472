#!/usr/bin/python3
"""The deployment files against the binaries they configure.

Every loss_server and loss_client invocation in docker/Dockerfile,
docker/compose.yaml, docker/k8s and docker/k8s-tls (arguments, commands,
health checks, LOSS_SERVER_* variables) uses flags that `--helpfull` of the
built binary lists, and the binary accepts the whole configuration, values
included (run with --version, which exits once the flags are parsed). The
shutdown timings fit: the kubelet's SIGKILL comes after the preStop pause
plus --shutdown_grace_s, Compose's after the grace, and the container test
waits for the real default.

  LOSS_SERVER=build/server/loss_server LOSS_CLIENT=build/client/loss_client \\
    /usr/bin/python3 -m pytest tests/deploy_files_test.py
"""

import glob
import json
import math
import os
import re
import shlex
import subprocess

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
DOCKER = os.path.join(os.path.dirname(HERE), "docker")
BINARIES = {
    "loss_server": os.environ.get("LOSS_SERVER") or os.path.join(HERE, "..", "build", "server",
                                                                  "loss_server"),
    "loss_client": os.environ.get("LOSS_CLIENT") or os.path.join(HERE, "..", "build", "client",
                                                                  "loss_client"),
}
ENV_PREFIX = "LOSS_SERVER_"
K8S_FILES = sorted(f for d in ("k8s", "k8s-tls") for f in glob.glob(os.path.join(DOCKER, d, "*.yaml"))
                   if os.path.basename(f) != "kustomization.yaml")


def helpfull(binary):
  """Every flag `binary --helpfull` lists, with its default as printed."""
  out = subprocess.run([BINARIES[binary], "--helpfull"], capture_output=True, text=True,
                       timeout=30).stdout
  flags = dict(re.findall(r"^\s+--([a-z0-9_]+) \(.*?\);\s+default: (.*?);$", out, re.M | re.S))
  assert "address" in flags, f"{binary} --helpfull lists no --address:\n{out}"
  return flags


FLAGS = {b: helpfull(b) for b in BINARIES}


class Invocation:
  """One run of a binary as a file configures it."""

  def __init__(self, where, binary, args, env=None):
    self.where, self.binary, self.args, self.env = where, binary, list(args), dict(env or {})

  def flag(self, name):
    """The value of --name: the last argument, else the variable, else None."""
    for a in reversed(self.args):
      if a.startswith(f"--{name}="):
        return a.split("=", 1)[1]
    return self.env.get(ENV_PREFIX + name.upper())

  def __repr__(self):
    return f"{self.where}: {self.binary} {' '.join(self.args)}"


def shell_invocations(where, script):
  """The loss_server / loss_client commands of a shell command line."""
  found, current = [], None
  for token in shlex.split(script):
    if token in BINARIES:
      current = Invocation(where, token, [])
      found.append(current)
    elif token in ("&&", "||", ";", "|") or token.startswith(">"):
      current = None
    elif current is not None:
      current.args.append(token)
  return found


def command_invocations(where, command, image_args=()):
  """A command list (exec form): the binary it runs, or the image's
  entrypoint (loss_server) with `image_args` when there is none."""
  if not command:
    return [Invocation(where, "loss_server", image_args)]
  name = os.path.basename(command[0])
  if name in BINARIES:
    return [Invocation(where, name, list(command[1:]) + list(image_args))]
  if name in ("sh", "bash") and "-c" in command:
    return shell_invocations(where, " ".join(command[command.index("-c") + 1:] + list(image_args)))
  return []


# ---- the files, parsed --------------------------------------------------------------------

def k8s_pod_specs(path):
  """(where, pod spec) of every workload in a manifest (patches too)."""
  with open(path) as f:
    for doc in yaml.safe_load_all(f):
      if doc and "template" in doc.get("spec", {}):
        yield f"{os.path.relpath(path, DOCKER)} {doc['kind']}/{doc['metadata']['name']}", \
            doc["spec"]["template"].get("spec", {})


def k8s_env(container):
  """The container's variables; a resourceFieldRef as the kubelet resolves it."""
  env = {}
  for e in container.get("env", []):
    ref = e.get("valueFrom", {}).get("resourceFieldRef")
    if ref:
      limit = container.get("resources", {}).get("limits", {}).get(ref["resource"].split(".", 1)[1])
      env[e["name"]] = str(math.ceil(float(str(limit)) / float(ref.get("divisor", 1)))) \
          if limit is not None else "1"
    else:
      env[e["name"]] = e.get("value", "")
  return env


def k8s_invocations(path):
  found = []
  for where, pod in k8s_pod_specs(path):
    for c in pod.get("containers", []) + pod.get("initContainers", []):
      w = f"{where} container {c['name']}"
      for inv in command_invocations(w, c.get("command"), c.get("args", [])):
        if inv.binary == "loss_server":
          inv.env = k8s_env(c)
        found.append(inv)
      for hook in ("readinessProbe", "livenessProbe", "startupProbe"):
        command = c.get(hook, {}).get("exec", {}).get("command")
        if command:
          found += command_invocations(f"{w} {hook}", command)
  return found


def compose():
  with open(os.path.join(DOCKER, "compose.yaml")) as f:
    return yaml.safe_load(f)


def compose_env(service):
  env = service.get("environment", {})
  if isinstance(env, list):
    env = dict(e.split("=", 1) for e in env)
  return {k: str(v) for k, v in env.items()}


def compose_invocations():
  found = []
  for name, s in compose()["services"].items():
    where = f"compose.yaml service {name}"
    command = s.get("command", [])
    command = shlex.split(command) if isinstance(command, str) else command
    entrypoint = s.get("entrypoint")
    entrypoint = shlex.split(entrypoint) if isinstance(entrypoint, str) else entrypoint
    for inv in command_invocations(where, entrypoint, command):
      if inv.binary == "loss_server":
        inv.env = compose_env(s)
      found.append(inv)
    test = s.get("healthcheck", {}).get("test", [])
    if test[:1] == ["CMD"]:
      found += command_invocations(f"{where} healthcheck", test[1:])
    elif test[:1] == ["CMD-SHELL"]:
      found += shell_invocations(f"{where} healthcheck", test[1])
  return found


def dockerfile_instructions():
  """(instruction, arguments) of the runtime stage, continuations joined."""
  with open(os.path.join(DOCKER, "Dockerfile")) as f:
    text = re.sub(r"\\\n\s*", " ", "".join(l for l in f if not l.lstrip().startswith("#")))
  stages = re.split(r"^FROM .*$", text, flags=re.M)
  for line in stages[-1].splitlines():
    if line.strip():
      instruction, _, rest = line.strip().partition(" ")
      yield instruction.upper(), rest.strip()


def dockerfile_invocations():
  env, found, entrypoint = {}, [], None
  for instruction, rest in dockerfile_instructions():
    if instruction == "ENV":
      env.update(dict(shlex.split(p)[0].split("=", 1) for p in re.findall(r"\S+=\S+", rest)))
    elif instruction == "ENTRYPOINT":
      entrypoint = json.loads(rest)
    elif instruction == "HEALTHCHECK":
      cmd = rest.split(" CMD ", 1)[1].strip()
      found += command_invocations("Dockerfile HEALTHCHECK",
                                   json.loads(cmd) if cmd.startswith("[") else ["sh", "-c", cmd])
  assert entrypoint == ["loss_server"], entrypoint
  found.append(Invocation("Dockerfile ENV", "loss_server", [], env))
  return found


INVOCATIONS = (dockerfile_invocations() + compose_invocations() +
               [i for f in K8S_FILES for i in k8s_invocations(f)])


# ---- the checks -------------------------------------------------------------------------

def test_every_file_is_read():
  where = {i.where.split()[0] for i in INVOCATIONS}
  assert where >= {"Dockerfile", "compose.yaml", "k8s/deployment.yaml",
                   "k8s-tls/deployment-tls.yaml"}, where
  assert any(i.binary == "loss_client" for i in INVOCATIONS)


@pytest.mark.parametrize("inv", INVOCATIONS, ids=lambda i: i.where)
def test_flags_and_variables_are_the_binarys(inv):
  known = FLAGS[inv.binary]
  for a in inv.args:
    if a.startswith("--"):
      name = a[2:].split("=", 1)[0]
      assert name in known, f"{inv}: {inv.binary} has no flag --{name}"
  for var in inv.env:
    if var.startswith(ENV_PREFIX):
      name = var[len(ENV_PREFIX):].lower()
      assert name in FLAGS["loss_server"] and var == var.upper(), \
          f"{inv.where}: {var} names no loss_server flag (--{name})"


@pytest.mark.parametrize("inv", INVOCATIONS, ids=lambda i: i.where)
def test_the_binary_accepts_the_configuration(inv):
  env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
  env.update(inv.env)
  r = subprocess.run([BINARIES[inv.binary], *inv.args, "--version"], env=env,
                     capture_output=True, text=True, timeout=30)
  assert r.returncode == 0, f"{inv}: exit {r.returncode}: {r.stdout}{r.stderr}"


def shutdown_grace_s(inv):
  value = inv.flag("shutdown_grace_s")
  return int(value if value is not None else FLAGS["loss_server"]["shutdown_grace_s"])


def pod_timings(pod):
  """(terminationGracePeriodSeconds, the preStop pause) of a pod spec; None
  for what it does not set."""
  [container] = [c for c in pod.get("containers", []) if c["name"] == "server"]
  pre_stop = container.get("lifecycle", {}).get("preStop")
  pause = None
  if pre_stop is not None:
    command = pre_stop.get("exec", {}).get("command", [])
    assert "sleep" in pre_stop or command[:1] == ["sleep"], f"preStop is no pause: {pre_stop}"
    pause = int(pre_stop["sleep"]["seconds"] if "sleep" in pre_stop else command[1])
  return pod.get("terminationGracePeriodSeconds"), pause


def test_the_kubelet_kills_only_after_the_pause_and_the_grace():
  # docker/k8s-tls patches docker/k8s: what it does not set is the base's.
  [(_, base)] = list(k8s_pod_specs(os.path.join(DOCKER, "k8s", "deployment.yaml")))
  base_termination, base_pause = pod_timings(base)
  checked = []
  for path in K8S_FILES:
    for where, pod in k8s_pod_specs(path):
      [server] = [i for i in k8s_invocations(path)
                  if i.where == f"{where} container server" and i.binary == "loss_server"]
      termination, pause = pod_timings(pod)
      termination = base_termination if termination is None else termination
      pause = base_pause if pause is None else pause
      grace = shutdown_grace_s(server)
      assert termination > pause + grace, \
          f"{where}: terminationGracePeriodSeconds {termination} <= preStop {pause} + grace {grace}"
      checked.append(f"{where}: {termination} s > {pause} s + {grace} s")
  assert len(checked) == 2, checked
  print("; ".join(checked))


def test_compose_stops_only_after_the_grace():
  s = compose()["services"]["server"]
  [server] = [i for i in compose_invocations() if i.where == "compose.yaml service server"]
  m = re.fullmatch(r"(\d+)s", s["stop_grace_period"])
  assert m and int(m.group(1)) > shutdown_grace_s(server), s["stop_grace_period"]
  assert s["stop_signal"] == "SIGTERM"


def test_the_container_test_waits_for_the_real_default():
  with open(os.path.join(DOCKER, "container_test.sh")) as f:
    grace = re.search(r"^GRACE_S=(\d+)", f.read(), re.M)
  [env] = [i for i in INVOCATIONS if i.where == "Dockerfile ENV"]
  assert grace and int(grace.group(1)) == shutdown_grace_s(env)
