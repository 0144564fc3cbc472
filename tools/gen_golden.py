#!/usr/bin/python3
"""Writes the golden files of the core tests, with PyTorch as the reference.

  tests/golden/core_cases.json   loss, error and activation cases
  tests/golden/torch_randn.json  torch.manual_seed(s); torch.randn(shape) values
  tests/golden/examples.json     every loss and activation once, for the clients

Usage: tools/gen_golden.py [--out DIR] [--check-float32]

Every case draws its random values from a numpy RandomState seeded from the
case name, so adding a case leaves the others unchanged, and two runs write
identical files.

Reference values: the inputs of a float32 case are rounded to float32 and
stored as such; the reference is then computed in float64 from exactly those
stored values (and written as float64 numbers). A float64 case is computed in
float64. Tensor JSON: {"dtype", "shape", "values"}, non-finite values written
as the strings "nan", "inf", "-inf".

--check-float32 also evaluates every float32 case with PyTorch in float32 and
prints those where PyTorch's own float32 result is outside the tolerance that
the C++ test applies (|a - ref| <= 1e-6 + 1e-5 |ref|).
"""

import argparse
import json
import math
import os
import sys
import zlib

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# Families of losses with their own case modules, tools/golden_<family>.py.
# Each defines LOSS_FNS = {loss: fn(reduction, opts, torch_of) -> f(x, t)}
# and cases(g), which adds cases through the Golden object below.
FAMILY_MODULES = ("golden_pointwise", "golden_margin", "golden_ctc")
FAMILIES = []

GENERATOR = "tools/gen_golden.py"
# Option tensors: floating ones are rounded to the case dtype like the input;
# index ones (CTC lengths) are int64 unless given as Stored.
FLOAT_OPTION_TENSORS = ("weight", "pos_weight", "var", "input2", "positive", "negative")
INDEX_OPTION_TENSORS = ("input_lengths", "target_lengths")
DTYPES = ("float32", "float64")
REDUCTIONS = ("mean", "sum", "none")
NP_DTYPE = {"float32": np.float32, "float64": np.float64,
            "int64": np.int64, "int32": np.int32}
TORCH_DTYPE = {"float32": torch.float32, "float64": torch.float64,
               "int64": torch.int64, "int32": torch.int32}


# ----------------------------------------------------------------------------
# Encoding

def encode_value(v, dtype):
  if dtype in ("int64", "int32"):
    return int(v)
  v = float(v)
  if math.isnan(v):
    return "nan"
  if math.isinf(v):
    return "inf" if v > 0 else "-inf"
  return v  # float32 values are exact as doubles; repr round-trips


def encode_tensor(array, dtype):
  array = np.asarray(array)
  values = array.astype(NP_DTYPE[dtype]).reshape(-1)
  return {"dtype": dtype, "shape": [int(d) for d in array.shape],
          "values": [encode_value(v, dtype) for v in values.tolist()]}


def encode_reference(t):
  """A float64 reference tensor (torch) as a float64 golden tensor."""
  return encode_tensor(t.detach().to(torch.float64).numpy(), "float64")


# ----------------------------------------------------------------------------
# Stored tensors: value + storage dtype. Floating tensors of a float32 case are
# rounded to float32 whatever their storage dtype, so that "used in the input's
# dtype" has exactly one meaning.

class Stored:
  def __init__(self, values, dtype):
    self.dtype = dtype
    self.values = np.asarray(values).astype(NP_DTYPE[dtype])

  def rounded_for(self, case_dtype):
    if self.dtype in ("int64", "int32"):
      return self
    if case_dtype == "float32":
      return Stored(self.values.astype(np.float32), self.dtype)
    return self

  def torch64(self):
    if self.dtype in ("int64", "int32"):
      return torch.from_numpy(self.values.astype(np.int64))
    return torch.from_numpy(self.values.astype(np.float64))

  def torch_as(self, float_dtype):
    if self.dtype in ("int64", "int32"):
      return torch.from_numpy(self.values.astype(np.int64))
    return torch.from_numpy(self.values.astype(NP_DTYPE[float_dtype]))

  def encode(self):
    return encode_tensor(self.values, self.dtype)


def as_stored(v, default_dtype):
  if v is None or isinstance(v, Stored):
    return v
  return Stored(v, default_dtype)


# ----------------------------------------------------------------------------
# PyTorch reference

def loss_fn(loss, reduction, opts, torch_of):
  """Returns f(x, t) computing `loss` with PyTorch. torch_of converts Stored."""
  w = torch_of(opts["weight"]) if "weight" in opts else None
  pw = torch_of(opts["pos_weight"]) if "pos_weight" in opts else None
  ii = opts.get("ignore_index", -100)
  ls = opts.get("label_smoothing", 0.0)
  eps = opts.get("eps", 1e-7)
  if loss == "mse":
    return lambda x, t: F.mse_loss(x, t, reduction=reduction)
  if loss == "l1":
    return lambda x, t: F.l1_loss(x, t, reduction=reduction)
  if loss == "rmse":
    assert reduction == "mean"
    return lambda x, t: torch.sqrt(F.mse_loss(x, t) + eps)
  if loss == "cross_entropy":
    return lambda x, t: F.cross_entropy(x, t, weight=w, ignore_index=ii,
                                        reduction=reduction, label_smoothing=ls)
  if loss == "nll":
    return lambda x, t: F.nll_loss(x, t, weight=w, ignore_index=ii, reduction=reduction)
  if loss == "bce":
    return lambda x, t: F.binary_cross_entropy(x, t, weight=w, reduction=reduction)
  if loss == "bce_with_logits":
    return lambda x, t: F.binary_cross_entropy_with_logits(
        x, t, weight=w, reduction=reduction, pos_weight=pw)
  for module in FAMILIES:
    if loss in module.LOSS_FNS:
      return module.LOSS_FNS[loss](reduction, opts, torch_of)
  raise ValueError(loss)


def run_loss(loss, reduction, x, t, opts, compute_grad, grad_output, float_dtype):
  torch_of = lambda s: s.torch_as(float_dtype)
  xt = x.torch_as(float_dtype).clone().requires_grad_(compute_grad)
  tt = t.torch_as(float_dtype) if t is not None else None
  value = loss_fn(loss, reduction, opts, torch_of)(xt, tt)
  grad = None
  if compute_grad:
    go = grad_output.torch_as(float_dtype) if grad_output is not None else torch.ones_like(value)
    value.backward(go)
    grad = xt.grad if xt.grad is not None else torch.zeros_like(xt)
  return value.detach(), grad


def activation_fn(activation, dim, eps):
  if activation == "sigmoid":
    return torch.sigmoid
  if activation == "softmax":
    return lambda x: torch.softmax(x, dim if dim is not None else -1)
  if activation == "log_softmax":
    return lambda x: torch.log_softmax(x, dim if dim is not None else -1)
  if activation == "logit":
    return lambda x: torch.logit(x, eps=eps)
  raise ValueError(activation)


# ----------------------------------------------------------------------------
# Case collection

def close(a, ref, atol=1e-6, rtol=1e-5):
  a = a.detach().to(torch.float64).reshape(-1).tolist()
  ref = ref.detach().to(torch.float64).reshape(-1).tolist()
  if len(a) != len(ref):
    return False
  for u, v in zip(a, ref):
    if math.isnan(v) or math.isnan(u):
      if not (math.isnan(u) and math.isnan(v)):
        return False
    elif math.isinf(v) or math.isinf(u):
      if u != v:
        return False
    elif abs(u - v) > atol + rtol * abs(v):
      return False
  return True


class Golden:
  def __init__(self, check_float32):
    self.cases = []
    self.names = set()
    self.check_float32 = check_float32
    self.float32_warnings = []

  def rng(self, name):
    return np.random.RandomState(zlib.crc32(name.encode()) & 0x7FFFFFFF)

  def _name(self, name):
    assert name not in self.names, name
    self.names.add(name)
    return name

  def loss(self, name, loss, reduction, dtype, x, t, *, tdtype=None, options=None,
           compute_grad=True, grad_output=None, expect_error=None):
    """Adds a loss case. x, t, option tensors and grad_output are arrays (stored
    with the case dtype; t with tdtype when given) or Stored."""
    self._name(name)
    x = as_stored(x, dtype).rounded_for(dtype)
    t = as_stored(t, tdtype or dtype)
    t = t.rounded_for(dtype) if t is not None else None
    go = as_stored(grad_output, dtype)
    go = go.rounded_for(dtype) if go is not None else None
    opts = {}
    for k, v in (options or {}).items():
      if k in FLOAT_OPTION_TENSORS:
        opts[k] = as_stored(v, dtype).rounded_for(dtype)
      elif k in INDEX_OPTION_TENSORS:
        opts[k] = as_stored(v, "int64")
      else:
        opts[k] = v
    case = {"name": name, "kind": "loss", "loss": loss, "reduction": reduction,
            "compute_grad": compute_grad, "input": x.encode()}
    if t is not None:
      case["target"] = t.encode()
    if go is not None:
      case["grad_output"] = go.encode()
    enc_opts = {}
    for k, v in opts.items():
      enc_opts[k] = v.encode() if isinstance(v, Stored) else v
    case["options"] = enc_opts
    if expect_error:
      case["expect_error"] = expect_error
      self.cases.append(case)
      return
    value, grad = run_loss(loss, reduction, x, t, opts, compute_grad, go, "float64")
    case["expected_loss"] = encode_reference(value)
    if compute_grad:
      assert tuple(grad.shape) == tuple(x.values.shape)
      case["expected_grad"] = encode_reference(grad)
    if self.check_float32 and dtype == "float32":
      v32, g32 = run_loss(loss, reduction, x, t, opts, compute_grad, go, "float32")
      if not close(v32, value) or (compute_grad and not close(g32, grad)):
        self.float32_warnings.append(name)
    self.cases.append(case)

  def error(self, name, loss, reduction, dtype, x, t, **kw):
    self.loss(name, loss, reduction, dtype, x, t, expect_error="INVALID_ARGUMENT", **kw)

  def activation(self, name, activation, dtype, x, *, dim=None, eps=None, expect_error=None):
    self._name(name)
    x = as_stored(x, dtype).rounded_for(dtype)
    case = {"name": name, "kind": "activation", "activation": activation, "input": x.encode()}
    if dim is not None:
      case["dim"] = dim
    if eps is not None:
      case["eps"] = eps
    if expect_error:
      case["expect_error"] = expect_error
      self.cases.append(case)
      return
    out = activation_fn(activation, dim, eps)(x.torch64())
    case["expected_output"] = encode_reference(out)
    if self.check_float32 and dtype == "float32":
      out32 = activation_fn(activation, dim, eps)(x.torch_as("float32"))
      if not close(out32, out):
        self.float32_warnings.append(name)
    self.cases.append(case)


# ----------------------------------------------------------------------------
# Value helpers

def randn(rng, *shape):
  return rng.standard_normal(shape)


def softmax_np(a, axis):
  a = a - a.max(axis=axis, keepdims=True)
  e = np.exp(a)
  return e / e.sum(axis=axis, keepdims=True)


def log_softmax_np(a, axis):
  a = a - a.max(axis=axis, keepdims=True)
  return a - np.log(np.exp(a).sum(axis=axis, keepdims=True))


def sigmoid_np(a):
  return 1.0 / (1.0 + np.exp(-a))


def classes(rng, c, shape):
  return rng.randint(0, c, size=shape).astype(np.int64)


def loss_grad_output(rng, loss_shape, reduction):
  if reduction == "none":
    return rng.uniform(-2.0, 2.0, size=loss_shape)
  return np.array(rng.uniform(0.25, 3.0))


# ----------------------------------------------------------------------------
# Cases

def regression_cases(g):
  for loss in ("mse", "l1"):
    for dtype in DTYPES:
      for red in REDUCTIONS:
        base = f"{loss}/%s/{dtype}/{red}"
        n = base % "basic"
        r = g.rng(n)
        g.loss(n, loss, red, dtype, randn(r, 3, 5), randn(r, 3, 5))
        n = base % "nograd"
        r = g.rng(n)
        g.loss(n, loss, red, dtype, randn(r, 4), randn(r, 4), compute_grad=False)
        n = base % "grad_output"
        r = g.rng(n)
        g.loss(n, loss, red, dtype, randn(r, 2, 3), randn(r, 2, 3),
               grad_output=loss_grad_output(r, (2, 3), red))
        n = base % "3d"
        r = g.rng(n)
        g.loss(n, loss, red, dtype, randn(r, 2, 3, 4), randn(r, 2, 3, 4))
        n = base % "one_element"
        r = g.rng(n)
        g.loss(n, loss, red, dtype, randn(r, 1), randn(r, 1))
        n = base % "scalar"
        r = g.rng(n)
        g.loss(n, loss, red, dtype, np.array(r.standard_normal()),
               np.array(r.standard_normal()))
        n = base % "empty"
        g.loss(n, loss, red, dtype, np.zeros((0,)), np.zeros((0,)))
        n = base % "empty_2d"
        g.loss(n, loss, red, dtype, np.zeros((3, 0)), np.zeros((3, 0)))
        n = base % "equal_elements"
        r = g.rng(n)
        x = randn(r, 2, 4)
        t = randn(r, 2, 4)
        t[0, 1] = x[0, 1]
        t[1, 0] = x[1, 0]
        t[1, 3] = x[1, 3]
        g.loss(n, loss, red, dtype, x, t)
        n = base % "nonfinite"
        x = np.array([np.nan, np.inf, -np.inf, 1.0, np.inf, 2.0])
        t = np.array([0.0, 0.0, 1.0, np.nan, np.inf, -np.inf])
        g.loss(n, loss, red, dtype, x, t)
    # Mixed floating dtypes: the target is used in the input's dtype.
    r = g.rng(f"{loss}/mixed")
    g.loss(f"{loss}/mixed_target_float64/float32/mean", loss, "mean", "float32",
           randn(r, 3, 4), randn(r, 3, 4), tdtype="float64")
    g.loss(f"{loss}/mixed_target_float32/float64/sum", loss, "sum", "float64",
           randn(r, 3, 4), randn(r, 3, 4), tdtype="float32",
           grad_output=Stored(np.array(1.5), "float32"))
    g.loss(f"{loss}/mixed_grad_output_float64/float32/none", loss, "none", "float32",
           randn(r, 3), randn(r, 3), grad_output=Stored(r.uniform(-1, 1, 3), "float64"))

  # rmse: mean only.
  for dtype in DTYPES:
    base = f"rmse/%s/{dtype}/mean"
    n = base % "basic"
    r = g.rng(n)
    g.loss(n, "rmse", "mean", dtype, randn(r, 3, 5), randn(r, 3, 5))
    n = base % "nograd"
    r = g.rng(n)
    g.loss(n, "rmse", "mean", dtype, randn(r, 6), randn(r, 6), compute_grad=False)
    n = base % "grad_output"
    r = g.rng(n)
    g.loss(n, "rmse", "mean", dtype, randn(r, 2, 3), randn(r, 2, 3),
           grad_output=np.array(-0.75))
    n = base % "eps_1e-3"
    r = g.rng(n)
    g.loss(n, "rmse", "mean", dtype, randn(r, 2, 2), randn(r, 2, 2), options={"eps": 1e-3})
    n = base % "eps_explicit_default"
    r = g.rng(n)
    g.loss(n, "rmse", "mean", dtype, randn(r, 5), randn(r, 5), options={"eps": 1e-7})
    n = base % "one_element"
    r = g.rng(n)
    g.loss(n, "rmse", "mean", dtype, randn(r, 1), randn(r, 1))
    n = base % "3d"
    r = g.rng(n)
    g.loss(n, "rmse", "mean", dtype, randn(r, 2, 2, 3), randn(r, 2, 2, 3))
    n = base % "empty"
    g.loss(n, "rmse", "mean", dtype, np.zeros((0,)), np.zeros((0,)))
    # input == target: loss sqrt(eps); with eps = 0, sqrt'(0) = inf times
    # d(mse) = 0 gives a NaN gradient in PyTorch.
    n = base % "equal_default_eps"
    r = g.rng(n)
    x = randn(r, 4)
    g.loss(n, "rmse", "mean", dtype, x, x.copy())
    n = base % "equal_eps0"
    g.loss(n, "rmse", "mean", dtype, x, x.copy(), options={"eps": 0.0})


def class_targets(rng, c, shape, ignore=None, ignore_at=()):
  t = classes(rng, c, shape)
  flat = t.reshape(-1)
  for i in ignore_at:
    flat[i] = ignore
  return t


def classification_cases(g):
  C = 5
  for loss in ("cross_entropy", "nll"):
    def inp(r, shape):
      x = randn(r, *shape) * 1.5
      if loss == "nll":
        cdim = 0 if len(shape) == 1 else 1
        x = log_softmax_np(x, cdim)
      return x

    for dtype in DTYPES:
      for red in REDUCTIONS:
        base = f"{loss}/%s/{dtype}/{red}"
        def add(variant, shape, tshape, *, tdtype="int64", options=None, ignore=None,
                ignore_at=(), compute_grad=True, grad_output=False, c=C):
          n = base % variant
          r = g.rng(n)
          x = inp(r, shape)
          t = class_targets(r, c, tshape, ignore, ignore_at)
          go = None
          if grad_output:
            go = loss_grad_output(r, tshape, red)
          opts = dict(options or {})
          if isinstance(opts.get("weight"), str):
            opts["weight"] = r.uniform(0.2, 2.0, size=c)
          g.loss(n, loss, red, dtype, x, t, tdtype=tdtype, options=opts,
                 compute_grad=compute_grad, grad_output=go)

        add("basic", (4, C), (4,))
        add("unbatched", (C,), ())
        add("unbatched_weight", (C,), (), options={"weight": "random"})
        add("nd1", (3, C, 4), (3, 4))
        add("nd2", (2, C, 3, 2), (2, 3, 2))
        add("nd2_weight_ignore", (2, 3, 2, 3), (2, 2, 3), c=3,
            options={"weight": "random"}, ignore=-100, ignore_at=(1, 4))
        add("int32_target", (4, C), (4,), tdtype="int32")
        add("int32_target_ignore", (4, C), (4,), tdtype="int32", ignore=-100, ignore_at=(2,))
        add("weight", (6, C), (6,), options={"weight": "random"})
        add("weight_float64", (6, C), (6,),
            options={"weight": Stored(np.array([0.5, 1.0, 2.0, 0.25, 1.5]), "float64")})
        add("ignore_default", (5, C), (5,), ignore=-100, ignore_at=(1, 3))
        add("ignore_custom_weight", (6, C), (6,),
            options={"weight": "random", "ignore_index": 2}, ignore=2, ignore_at=(0, 4))
        add("ignore_negative", (4, C), (4,), options={"ignore_index": -1},
            ignore=-1, ignore_at=(3,))
        add("ignore_nd1", (2, C, 3), (2, 3), ignore=-100, ignore_at=(0, 5))
        add("all_ignored", (3, C), (3,), ignore=-100, ignore_at=(0, 1, 2))
        add("all_ignored_weight", (3, C), (3,), options={"weight": "random"},
            ignore=-100, ignore_at=(0, 1, 2))
        add("grad_output", (4, C), (4,), grad_output=True)
        add("grad_output_weight_ignore", (5, C), (5,), grad_output=True,
            options={"weight": "random"}, ignore=-100, ignore_at=(2,))
        add("nograd", (4, C), (4,), compute_grad=False)
        add("empty_batch", (0, C), (0,))
        add("two_classes", (5, 2), (5,), c=2)
        add("one_class", (3, 1), (3,), c=1)
        if loss == "cross_entropy":
          for ls in (0.1, 0.25):
            tag = f"ls{ls}"
            add(f"{tag}", (4, C), (4,), options={"label_smoothing": ls})
            add(f"{tag}_weight", (4, C), (4,),
                options={"label_smoothing": ls, "weight": "random"})
            add(f"{tag}_ignore", (5, C), (5,), options={"label_smoothing": ls},
                ignore=-100, ignore_at=(1, 2))
            add(f"{tag}_weight_ignore", (5, C), (5,),
                options={"label_smoothing": ls, "weight": "random"},
                ignore=-100, ignore_at=(0, 3))
          add("ls0.1_nd1_ignore", (2, C, 3), (2, 3), options={"label_smoothing": 0.1},
              ignore=-100, ignore_at=(4,))
          add("ls0.1_unbatched", (C,), (), options={"label_smoothing": 0.1})
          add("ls0.1_all_ignored", (3, C), (3,), options={"label_smoothing": 0.1},
              ignore=-100, ignore_at=(0, 1, 2))
          add("ls0.25_all_ignored_weight", (3, C), (3,),
              options={"label_smoothing": 0.25, "weight": "random"},
              ignore=-100, ignore_at=(0, 1, 2))
          add("ls1.0", (3, C), (3,), options={"label_smoothing": 1.0})
          add("ls0.1_grad_output", (4, C), (4,), options={"label_smoothing": 0.1},
              grad_output=True)

          # Probability targets: a float target of the input's shape.
          def addp(variant, shape, *, options=None, grad_output=False, tdtype=None):
            n = base % variant
            r = g.rng(n)
            x = inp(r, shape)
            cdim = 0 if len(shape) == 1 else 1
            t = softmax_np(randn(r, *shape) * 2.0, cdim)
            opts = dict(options or {})
            if isinstance(opts.get("weight"), str):
              opts["weight"] = r.uniform(0.2, 2.0, size=shape[cdim])
            go = None
            if grad_output:
              lshape = tuple(s for i, s in enumerate(shape) if i != cdim)
              go = loss_grad_output(r, lshape, red)
            g.loss(n, loss, red, dtype, x, t, tdtype=tdtype, options=opts, grad_output=go)

          addp("prob", (4, C))
          addp("prob_weight", (4, C), options={"weight": "random"})
          addp("prob_ls0.1", (4, C), options={"label_smoothing": 0.1})
          addp("prob_weight_ls0.25", (4, C),
               options={"weight": "random", "label_smoothing": 0.25})
          addp("prob_nd1", (2, C, 3))
          addp("prob_nd2_weight", (2, 3, 2, 2), options={"weight": "random"})
          addp("prob_unbatched", (C,))
          # ignore_index other than -100 with probability targets: PyTorch
          # raises ("not supported for floating point target"); -100 is fine.
          addp("prob_ignore_index_default_explicit", (4, C), options={"ignore_index": -100})
          addp("prob_grad_output", (3, C), grad_output=True)
          addp("prob_target_float64", (3, C), tdtype="float64")
          n = base % "prob_empty_batch"
          g.loss(n, loss, red, dtype, np.zeros((0, C)), np.zeros((0, C)))


def binary_cases(g):
  for dtype in DTYPES:
    for red in REDUCTIONS:
      # BCE: input probabilities.
      base = f"bce/%s/{dtype}/{red}"
      def addb(variant, shape, *, weight_shape=None, soft=False, grad_output=False,
               compute_grad=True):
        n = base % variant
        r = g.rng(n)
        x = sigmoid_np(randn(r, *shape) * 1.5)
        t = r.uniform(0, 1, size=shape) if soft else r.randint(0, 2, size=shape).astype(float)
        opts = {}
        if weight_shape is not None:
          opts["weight"] = r.uniform(0.2, 2.0, size=weight_shape)
        go = loss_grad_output(r, shape, red) if grad_output else None
        g.loss(n, "bce", red, dtype, x, t, options=opts, grad_output=go,
               compute_grad=compute_grad)

      addb("basic", (4, 3))
      addb("soft_target", (4, 3), soft=True)
      addb("1d", (6,))
      addb("3d", (2, 3, 2), soft=True)
      addb("weight_c", (4, 3), weight_shape=(3,))
      addb("weight_1c", (4, 3), weight_shape=(1, 3))
      addb("weight_n1", (4, 3), weight_shape=(4, 1))
      addb("weight_scalar1", (4, 3), weight_shape=(1,))
      addb("weight_0d", (4, 3), weight_shape=())
      addb("weight_same", (4, 3), weight_shape=(4, 3))
      addb("weight_3d_c", (2, 3, 2), weight_shape=(2,), soft=True)
      addb("grad_output", (3, 3), soft=True, grad_output=True)
      addb("nograd", (3, 3), compute_grad=False)
      # Probabilities at exactly 0 and 1: log clamped at -100, grad denominator
      # clamped at 1e-12.
      n = base % "exact_0_1"
      x = np.array([0.0, 1.0, 0.0, 1.0, 0.5, 0.0, 1.0, 0.25])
      t = np.array([0.0, 1.0, 1.0, 0.0, 0.5, 0.5, 0.5, 1.0])
      g.loss(n, "bce", red, dtype, x, t)
      n = base % "empty"
      g.loss(n, "bce", red, dtype, np.zeros((0,)), np.zeros((0,)))

      # BCE with logits.
      base = f"bce_with_logits/%s/{dtype}/{red}"
      def addl(variant, shape, *, weight_shape=None, pos_weight_shape=None, soft=False,
               grad_output=False, compute_grad=True, scale=2.0):
        n = base % variant
        r = g.rng(n)
        x = randn(r, *shape) * scale
        t = r.uniform(0, 1, size=shape) if soft else r.randint(0, 2, size=shape).astype(float)
        opts = {}
        if weight_shape is not None:
          opts["weight"] = r.uniform(0.2, 2.0, size=weight_shape)
        if pos_weight_shape is not None:
          opts["pos_weight"] = r.uniform(0.5, 4.0, size=pos_weight_shape)
        go = loss_grad_output(r, shape, red) if grad_output else None
        g.loss(n, "bce_with_logits", red, dtype, x, t, options=opts, grad_output=go,
               compute_grad=compute_grad)

      addl("basic", (4, 3))
      addl("soft_target", (4, 3), soft=True)
      addl("1d", (5,))
      addl("3d", (2, 2, 3), soft=True)
      addl("weight_c", (4, 3), weight_shape=(3,))
      addl("weight_1c", (4, 3), weight_shape=(1, 3))
      addl("weight_same", (4, 3), weight_shape=(4, 3))
      addl("weight_scalar1", (4, 3), weight_shape=(1,))
      addl("pos_weight_c", (4, 3), pos_weight_shape=(3,))
      addl("pos_weight_scalar1", (4, 3), pos_weight_shape=(1,))
      addl("pos_weight_3d_c", (2, 2, 3), pos_weight_shape=(3,), soft=True)
      addl("weight_pos_weight", (4, 3), weight_shape=(3,), pos_weight_shape=(3,), soft=True)
      addl("grad_output", (3, 3), soft=True, grad_output=True, pos_weight_shape=(3,))
      addl("nograd", (3, 3), compute_grad=False)
      addl("large_logits", (4, 3), scale=30.0)
      n = base % "logits_pm80"
      x = np.array([80.0, -80.0, 80.0, -80.0, 40.0, -40.0])
      t = np.array([1.0, 0.0, 0.0, 1.0, 0.5, 0.5])
      g.loss(n, "bce_with_logits", red, dtype, x, t)
      n = base % "logits_pm80_pos_weight"
      g.loss(n, "bce_with_logits", red, dtype, x.reshape(2, 3), t.reshape(2, 3),
             options={"pos_weight": np.array([2.0, 0.5, 3.0])})
      n = base % "nonfinite_logits"
      x = np.array([np.inf, -np.inf, np.nan, np.inf, -np.inf, np.nan, 1.0, np.inf])
      t = np.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.5, 0.5])
      g.loss(n, "bce_with_logits", red, dtype, x, t)
      n = base % "nonfinite_logits_pos_weight"
      g.loss(n, "bce_with_logits", red, dtype, x.reshape(4, 2), t.reshape(4, 2),
             options={"pos_weight": np.array([2.0, 0.5])})
      n = base % "empty"
      g.loss(n, "bce_with_logits", red, dtype, np.zeros((0, 3)), np.zeros((0, 3)),
             options={"pos_weight": np.array([1.0, 2.0, 3.0])})


def error_cases(g):
  E = g.error
  r = g.rng("errors")
  x35 = randn(r, 3, 5)
  for dtype in DTYPES:
    b = f"%s/error_%s/{dtype}/mean"
    for loss in ("cross_entropy", "nll"):
      E(b % (loss, "class_out_of_range"), loss, "mean", dtype, x35, np.array([1, 5, 2]),
        tdtype="int64")
      E(b % (loss, "class_out_of_range_unbatched"), loss, "mean", dtype, x35[0],
        np.array(7), tdtype="int64")
      E(b % (loss, "class_out_of_range_int32"), loss, "sum", dtype, x35,
        np.array([1, 0, 9]), tdtype="int32")
      E(b % (loss, "negative_class"), loss, "mean", dtype, x35, np.array([1, -1, 2]),
        tdtype="int64")
      E(b % (loss, "negative_class_custom_ignore"), loss, "mean", dtype, x35,
        np.array([1, -100, 2]), tdtype="int64", options={"ignore_index": 3})
      E(b % (loss, "weight_wrong_length"), loss, "mean", dtype, x35, np.array([1, 0, 2]),
        tdtype="int64", options={"weight": np.ones(4)})
      E(b % (loss, "target_shape_mismatch"), loss, "mean", dtype, x35,
        np.array([1, 0, 2, 1]), tdtype="int64")
      E(b % (loss, "target_nd_shape_mismatch"), loss, "none", dtype, randn(r, 2, 3, 4),
        np.zeros((2, 3), dtype=np.int64), tdtype="int64")
      E(b % (loss, "float_class_target"), loss, "mean", dtype, x35,
        np.array([1.0, 0.0, 2.0]))
      # Floating targets shaped like class indices: indices are INT64 / INT32.
      E(b % (loss, "float_class_target_unbatched"), loss, "mean", dtype, x35[0],
        np.array(1.0))
      E(b % (loss, "float_class_target_nd"), loss, "none", dtype,
        randn(g.rng(f"{loss}/float_class_target_nd"), 2, 3, 4), np.zeros((2, 4)))
      if dtype == "float32":
        E(f"{loss}/error_integer_input/int64/mean", loss, "mean", "int64",
          np.array([[1, 2], [3, 4]]), np.array([0, 1]), tdtype="int64")
    E(b % ("cross_entropy", "label_smoothing_above_1"), "cross_entropy", "mean", dtype, x35,
      np.array([1, 0, 2]), tdtype="int64", options={"label_smoothing": 1.5})
    E(b % ("cross_entropy", "label_smoothing_negative"), "cross_entropy", "mean", dtype, x35,
      np.array([1, 0, 2]), tdtype="int64", options={"label_smoothing": -0.1})
    E(b % ("cross_entropy", "prob_target_ignore_index"), "cross_entropy", "mean", dtype,
      x35, softmax_np(randn(r, 3, 5), 1), options={"ignore_index": 0})
    E(b % ("cross_entropy", "prob_target_shape_mismatch"), "cross_entropy", "mean", dtype,
      x35, softmax_np(randn(r, 3, 4), 1))
    p = np.array([[0.2, 0.7], [0.5, 0.9]])
    t = np.array([[0.0, 1.0], [1.0, 0.0]])
    E(b % ("bce", "input_above_1"), "bce", "mean", dtype, np.array([[0.2, 1.5], [0.5, 0.9]]), t)
    E(b % ("bce", "input_below_0"), "bce", "sum", dtype, np.array([[0.2, 0.7], [-0.25, 0.9]]), t)
    E(b % ("bce", "target_above_1"), "bce", "mean", dtype, p, np.array([[0.0, 1.0], [2.0, 0.0]]))
    E(b % ("bce", "target_below_0"), "bce", "none", dtype, p, np.array([[0.0, -1.0], [1.0, 0.0]]))
    E(b % ("bce", "shape_mismatch"), "bce", "mean", dtype, p, np.array([0.0, 1.0]))
    E(b % ("bce", "weight_not_broadcastable"), "bce", "mean", dtype, p, t,
      options={"weight": np.ones(3)})
    E(b % ("bce", "weight_larger_than_input"), "bce", "mean", dtype, p[0], t[0],
      options={"weight": np.ones((2, 2))})
    E(b % ("bce_with_logits", "pos_weight_wrong_length"), "bce_with_logits", "mean", dtype,
      randn(r, 2, 3), t[:, :1].repeat(3, axis=1), options={"pos_weight": np.ones(4)})
    E(b % ("bce_with_logits", "weight_not_broadcastable"), "bce_with_logits", "mean", dtype,
      randn(r, 2, 3), t[:, :1].repeat(3, axis=1), options={"weight": np.ones(2)})
    E(b % ("bce_with_logits", "shape_mismatch"), "bce_with_logits", "sum", dtype,
      randn(r, 2, 3), np.zeros((3, 2)))
    E(b % ("mse", "shape_mismatch_n1_vs_n"), "mse", "mean", dtype, randn(r, 4, 1), randn(r, 4))
    E(b % ("mse", "shape_mismatch"), "mse", "sum", dtype, randn(r, 2, 3), randn(r, 3, 2))
    E(b % ("l1", "shape_mismatch"), "l1", "none", dtype, randn(r, 3), randn(r, 1, 3))
    if dtype == "float32":
      E("mse/error_integer_input/int32/mean", "mse", "mean", "int32", np.array([1, 2, 3]),
        np.array([1.0, 2.0, 2.0]), tdtype="float32")
    E(b % ("rmse", "shape_mismatch"), "rmse", "mean", dtype, randn(r, 3), randn(r, 4))
    E(f"rmse/error_reduction_sum/{dtype}/sum", "rmse", "sum", dtype, randn(r, 3), randn(r, 3))
    E(f"rmse/error_reduction_none/{dtype}/none", "rmse", "none", dtype, randn(r, 3),
      randn(r, 3))
    g.activation(f"softmax/error_dim_out_of_range/{dtype}", "softmax", dtype, randn(r, 2, 3),
                 dim=2, expect_error="INVALID_ARGUMENT")
    g.activation(f"log_softmax/error_dim_out_of_range/{dtype}", "log_softmax", dtype,
                 randn(r, 2, 3), dim=-3, expect_error="INVALID_ARGUMENT")


def activation_cases(g):
  for dtype in DTYPES:
    for act in ("sigmoid", "softmax", "log_softmax"):
      def add(variant, x, dim=None):
        g.activation(f"{act}/{variant}/{dtype}", act, dtype, x, dim=dim)
      r = g.rng(f"{act}/{dtype}")
      add("0d", np.array(0.7))
      if act != "sigmoid":
        add("0d_dim0", np.array(-1.3), dim=0)
        add("0d_dim-1", np.array(2.5), dim=-1)
        add("1d_default_dim", randn(r, 5) * 2)
        add("1d_dim0", randn(r, 5) * 2, dim=0)
        add("1d_dim-1", randn(r, 4) * 2, dim=-1)
        for d in (0, 1, -1):
          add(f"2d_dim{d}", randn(r, 3, 4) * 2, dim=d)
        add("2d_default_dim", randn(r, 3, 4) * 2)
        for d in (0, 1, 2, -1, -2):
          add(f"3d_dim{d}", randn(r, 2, 3, 4) * 2, dim=d)
        add("empty_dim1", np.zeros((0, 3)), dim=1)
        add("nonfinite_rows", np.array([[-np.inf, 0.0, 1.0], [-np.inf, -np.inf, -np.inf],
                                        [1000.0, 0.0, -1000.0], [np.inf, 0.0, 1.0],
                                        [np.nan, 0.0, 1.0]]), dim=1)
        add("large_values", np.array([[500.0, 501.0, 499.0], [-500.0, -501.0, -499.0]]), dim=-1)
      else:
        add("1d", randn(r, 6) * 3)
        add("2d", randn(r, 3, 4) * 3)
        add("3d", randn(r, 2, 3, 2) * 3)
        add("extremes", np.array([80.0, -80.0, 20.0, -20.0, 0.0, np.inf, -np.inf, np.nan,
                                  1e-8, -1e-8]))
        add("empty", np.zeros((0,)))
    # logit
    r = g.rng(f"logit/{dtype}")
    def addl(variant, x, eps=None):
      g.activation(f"logit/{variant}/{dtype}", "logit", dtype, x, eps=eps)
    p = r.uniform(0.01, 0.99, size=(3, 4))
    addl("basic", p)
    addl("1d", r.uniform(0.01, 0.99, size=6))
    addl("0d", np.array(0.3))
    edge = np.array([0.0, 1.0, 0.5, 0.25, 0.75, 1e-3, 1.0 - 1.0 / 1024, 1.5, -0.5, np.nan])
    addl("edges", edge)
    addl("edges_eps0.25", edge, eps=0.25)
    addl("edges_eps2^-10", edge, eps=1.0 / 1024)
    addl("edges_eps0", edge, eps=0.0)
    addl("basic_eps0.125", p, eps=0.125)
    if dtype == "float64":
      # 1 - 1e-6 is not a float32 value, so this one is float64 only.
      addl("edges_eps1e-6", edge, eps=1e-6)
    addl("empty", np.zeros((2, 0)))


def seed_cases(g):
  """The examples of /work/shared/seed/loss-functions.txt, number for number."""
  f32 = lambda t: Stored(t.numpy(), "float32")
  torch.manual_seed(42)
  yhat = torch.randn(3, 5)
  y = torch.randn(3, 5)
  g.loss("mse/seed_example/float32/mean", "mse", "mean", "float32", f32(yhat), f32(y))
  g.loss("l1/seed_example/float32/mean", "l1", "mean", "float32", f32(yhat), f32(y))
  g.loss("rmse/seed_example/float32/mean", "rmse", "mean", "float32", f32(yhat), f32(y))
  torch.manual_seed(42)
  outputs = torch.randn(3, 5)
  g.loss("cross_entropy/seed_example/float32/mean", "cross_entropy", "mean", "float32",
         f32(outputs), Stored(np.array([1, 0, 3]), "int64"))
  # BCE: right and wrong argument order (the wrong one clamps log(0) at -100).
  labels = np.array([1.0, 0.0])
  preds = np.array([0.9, 0.2])
  g.loss("bce/seed_right_order/float32/mean", "bce", "mean", "float32", preds, labels)
  g.loss("bce/seed_wrong_order/float32/mean", "bce", "mean", "float32", labels, preds)
  torch.manual_seed(42)
  probs = torch.sigmoid(torch.randn(4, 1))
  g.loss("bce/seed_example_4x1/float32/mean", "bce", "mean", "float32", f32(probs),
         Stored(np.array([1.0, 0.0, 1.0, 0.0]).reshape(4, 1), "float32"))
  # BCE with logits: float64 logits (np.log(p / (1 - p))), float32 labels.
  logits = np.log(preds / (1 - preds))
  g.loss("bce_with_logits/seed_example/float64/mean", "bce_with_logits", "mean", "float64",
         Stored(logits, "float64"), Stored(labels, "float32"))
  # NLL on log_softmax(randn(5, 3)) with seed 11.
  torch.manual_seed(11)
  log_probs = F.log_softmax(torch.randn(5, 3), dim=-1)
  lab = Stored(np.array([0, 0, 1, 2, 1]), "int64")
  g.loss("nll/seed_example/float32/mean", "nll", "mean", "float32", f32(log_probs), lab)
  g.loss("nll/seed_example_weight/float32/mean", "nll", "mean", "float32", f32(log_probs), lab,
         options={"weight": np.array([1.0, 1.0, 2.0])})
  g.loss("nll/seed_example_ignore_index/float32/mean", "nll", "mean", "float32",
         f32(log_probs), lab, options={"ignore_index": 2})
  g.loss("nll/seed_example_weight_ignore_index/float32/mean", "nll", "mean", "float32",
         f32(log_probs), lab, options={"weight": np.array([1.0, 1.0, 2.0]), "ignore_index": 2})
  # Softmax examples.
  torch.manual_seed(42)
  x_input = torch.randn(1, 3)
  g.activation("softmax/seed_example/float32", "softmax", "float32", f32(x_input), dim=1)
  logits = np.array([1.3863, 0.0, -0.6931])
  g.activation("softmax/seed_logits/float32", "softmax", "float32", logits, dim=-1)
  g.activation("log_softmax/seed_logits/float32", "log_softmax", "float32", logits, dim=-1)
  g.activation("sigmoid/seed_example_4x1/float32", "sigmoid", "float32",
               f32(_randn_seed(42, (4, 1))))


def _randn_seed(seed, shape):
  torch.manual_seed(seed)
  return torch.randn(list(shape))


# ----------------------------------------------------------------------------
# torch.randn record

RANDN_CASES = [
    (42, [(3, 5), (3, 5)]),
    (42, [(1, 3)]),
    (42, [(4, 1)]),
    (11, [(5, 3)]),
    (0, [(1,), (2,), (7,)]),
    (123, [(15,)]),
    (7, [(), (2, 2), (3, 3)]),
]


def randn_cases():
  out = []
  for seed, shapes in RANDN_CASES:
    torch.manual_seed(seed)
    calls = []
    for shape in shapes:
      n = int(np.prod(shape))
      assert n < 16, "randn of >= 16 elements uses a vectorized path"
      v = torch.randn(list(shape), dtype=torch.float32)
      calls.append({"shape": list(shape), "values": [float(a) for a in v.reshape(-1).tolist()]})
    out.append({"seed": seed, "calls": calls})
  return out


# ----------------------------------------------------------------------------

def write_cases(path, cases):
  header = {"generator": GENERATOR, "torch_version": torch.__version__}
  dump = lambda o: json.dumps(o, sort_keys=True, separators=(",", ":"), allow_nan=False)
  lines = [dump(c) for c in cases]
  with open(path, "w") as f:
    f.write('{"generator":%s,"torch_version":%s,\n"cases":[\n' %
            (dump(header["generator"]), dump(header["torch_version"])))
    f.write(",\n".join(lines))
    f.write("\n]}\n")
  json.load(open(path))  # must parse


def load_families():
  import importlib
  for name in FAMILY_MODULES:
    FAMILIES.append(importlib.import_module(name))


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  ap.add_argument("--out", default=os.path.join(root, "tests", "golden"))
  ap.add_argument("--check-float32", action="store_true")
  args = ap.parse_args()
  torch.set_num_threads(1)
  torch.use_deterministic_algorithms(True)

  load_families()
  g = Golden(args.check_float32)
  seed_cases(g)
  regression_cases(g)
  classification_cases(g)
  binary_cases(g)
  error_cases(g)
  activation_cases(g)
  for module in FAMILIES:
    module.cases(g)

  os.makedirs(args.out, exist_ok=True)
  write_cases(os.path.join(args.out, "core_cases.json"), g.cases)
  write_cases(os.path.join(args.out, "torch_randn.json"), randn_cases())
  import golden_examples  # tools/golden_examples.py
  write_cases(os.path.join(args.out, "examples.json"), golden_examples.examples(encode_tensor))

  counts = {}
  for c in g.cases:
    key = c.get("loss") or c.get("activation")
    kind = "error" if "expect_error" in c else c["kind"]
    counts[(kind, key)] = counts.get((kind, key), 0) + 1
  for (kind, key), n in sorted(counts.items()):
    print(f"{kind:10s} {key:16s} {n}")
  print(f"total {len(g.cases)} cases")
  if args.check_float32:
    print(f"{len(g.float32_warnings)} float32 cases where PyTorch float32 misses the "
          "tolerance:")
    for n in g.float32_warnings:
      print("  ", n)


if __name__ == "__main__":
  sys.exit(main())
