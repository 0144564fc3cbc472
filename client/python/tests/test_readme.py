"""The README's examples, run as written against a live loss_server (only the
address replaced): "Use it from Python", "... Node" and "... the command
line". (The C++ one is built and run by tests/client_package_test.sh.)"""

import json
import os
import re
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from conftest import REPO, binary

with open(os.path.join(REPO, "README.md")) as f:
  README = f.read()


def block(heading, lang):
  """The first ```lang block after `heading`, before the next heading."""
  start = README.index(f"\n{heading}\n")
  m = re.compile(r"^```" + lang + r"\n(.*?)^```$", re.M | re.S).search(README, start)
  assert m, f"no ```{lang} block under {heading}"
  assert "\n#" not in README[start + 1:m.start()], f"the ```{lang} block is not under {heading}"
  return m.group(1)


def torch_cross_entropy():
  """What every README example computes, by PyTorch."""
  logits = torch.tensor([[0.1, 2.0, -1.0], [0.5, 0.5, 0.0]], requires_grad=True)
  loss = F.cross_entropy(logits, torch.tensor([1, 0]))
  loss.backward()
  return loss.detach(), logits.grad


def test_python_example(address, capsys):
  code = block("### Use it from Python", "python")
  assert len(code.strip().splitlines()) == 5
  namespace = {}
  exec(compile(code.replace("localhost:50051", address), "README.md", "exec"), namespace)
  want_loss, want_grad = torch_cross_entropy()
  torch.testing.assert_close(torch.from_numpy(namespace["loss"]), want_loss)
  torch.testing.assert_close(torch.from_numpy(namespace["grad"]), want_grad)
  assert capsys.readouterr().out.startswith(str(namespace["loss"]))
  namespace["client"].close()


def test_node_example(address, tmp_path):
  code = block("### Use it from Node", "js")
  assert len(code.strip().splitlines()) == 5
  (tmp_path / "node_modules").mkdir()
  (tmp_path / "node_modules" / "lossservice").symlink_to(os.path.join(REPO, "client", "node"))
  script = tmp_path / "readme.mjs"
  script.write_text(code.replace("localhost:50051", address))
  out = subprocess.run(["node", str(script)], check=True, capture_output=True, text=True,
                       timeout=60).stdout
  loss, shape = out.split(" ", 1)
  want_loss, _ = torch_cross_entropy()
  assert abs(float(loss) - float(want_loss)) <= 1e-6
  assert shape.strip() == "[ 2, 3 ]"


def test_command_line_example(address, examples):
  code = block("### Use it from the command line", "sh")
  script = (f'loss_client() {{ "{binary("LOSS_CLIENT", "client", "loss_client")}" "$@"; }}\n'
            "set -e\n" + code.replace("localhost:50051", address))
  out = subprocess.run(["bash", "-c", script], check=True, capture_output=True, text=True,
                       timeout=120).stdout
  lines = out.splitlines()
  assert lines[0] == "SERVING"
  summary = [l for l in lines if l.startswith("examples: ")]
  values = sum(2 if e["kind"] == "loss" else 1 for e in examples)  # loss and grad, or output
  assert summary == [f"examples: {values} values agree, 0 differ, 0 listed losses without an example"]
  response = json.loads(out[out.index("\n{") + 1:])
  want_loss, want_grad = torch_cross_entropy()
  assert abs(response["loss"]["float_values"][0] - float(want_loss)) <= 1e-6
  assert len(response["grad"]["float_values"]) == 6
  torch.testing.assert_close(torch.tensor(response["grad"]["float_values"]).reshape(2, 3),
                             want_grad)
