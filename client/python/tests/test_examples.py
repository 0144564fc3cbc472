"""Every loss and activation through its LossClient method, with the
examples PyTorch computed (tests/golden/examples.json, written by
tools/gen_golden.py): one call with torch's defaults and one with every
option set."""

import math

import numpy as np
import pytest

import lossservice
from lossservice import requests as rq

from conftest import EXAMPLES_JSON  # noqa: F401  (the examples' path, for messages)

NP = {"float32": np.float32, "float64": np.float64, "int64": np.int64, "int32": np.int32}


def tensor(t):
  values = [float(v) if isinstance(v, str) else v for v in t["values"]]
  return np.array(values, dtype=NP[t["dtype"]]).reshape(t["shape"])


def arguments(example):
  """(positional, keyword) arguments of the example's call."""
  args = {k: tensor(v) if isinstance(v, dict) else v for k, v in example["args"].items()}
  positional = [args.pop(name) for name in example["required"]]
  return positional, args


def assert_matches(got, expected, example, what):
  ref = tensor(expected)
  dtype = example["args"][example["required"][0]]["dtype"]
  assert isinstance(got, np.ndarray), f"{example['name']} {what}: {type(got)}"
  assert got.dtype == NP[dtype], f"{example['name']} {what}: dtype {got.dtype}"
  assert got.shape == ref.shape, f"{example['name']} {what}: shape {got.shape} vs {ref.shape}"
  tol = example["tolerance"]
  g, r = got.astype(np.float64).ravel(), ref.ravel()
  for i, (a, b) in enumerate(zip(g, r)):
    if math.isnan(b) or math.isinf(b):
      assert (math.isnan(a) and math.isnan(b)) or a == b, f"{example['name']} {what}[{i}]"
    else:
      assert abs(a - b) <= tol["atol"] + tol["rtol"] * abs(b), (
          f"{example['name']} {what}[{i}]: service {a!r}, PyTorch {b!r}")


def loss_examples():
  import json
  with open(EXAMPLES_JSON) as f:
    return [c for c in json.load(f)["cases"] if c["kind"] == "loss"]


def activation_examples():
  import json
  with open(EXAMPLES_JSON) as f:
    return [c for c in json.load(f)["cases"] if c["kind"] == "activation"]


@pytest.mark.parametrize("example", loss_examples(), ids=lambda e: e["name"])
def test_loss_example(client, example):
  positional, keyword = arguments(example)
  if "grad_output" in example:
    keyword["grad_output"] = tensor(example["grad_output"])
  loss, grad = getattr(client, example["function"])(*positional, grad=True, **keyword)
  assert_matches(loss, example["expected_loss"], example, "loss")
  assert_matches(grad, example["expected_grad"], example, "grad")
  # Without grad=True only the loss comes back.
  assert_matches(getattr(client, example["function"])(*positional, **keyword),
                 example["expected_loss"], example, "loss without grad")


@pytest.mark.parametrize("example", activation_examples(), ids=lambda e: e["name"])
def test_activation_example(client, example):
  positional, keyword = arguments(example)
  out = getattr(client, example["function"])(*positional, **keyword)
  assert_matches(out, example["expected_output"], example, "output")


def test_every_example_over_one_stream(client):
  examples = loss_examples()
  requests = []
  for example in examples:
    positional, keyword = arguments(example)
    if "grad_output" in example:
      keyword["grad_output"] = tensor(example["grad_output"])
    requests.append(getattr(rq, example["function"])(*positional, grad=True, **keyword))
  answers = list(client.evaluate_many(requests))
  assert len(answers) == len(examples)
  for example, (loss, grad) in zip(examples, answers):
    assert_matches(loss, example["expected_loss"], example, "loss (stream)")
    assert_matches(grad, example["expected_grad"], example, "grad (stream)")


def test_every_listed_loss_has_a_method_and_two_examples(client):
  listed = [info.name for info in client.list_losses()]
  examples = loss_examples()
  assert sorted(listed) == sorted({e["loss"] for e in examples})
  for name in listed:
    mine = [e for e in examples if e["loss"] == name]
    assert len(mine) == 2, name
    assert callable(getattr(lossservice.LossClient, mine[0]["function"]))
  assert len(rq.LOSSES) == len(listed) == 21
