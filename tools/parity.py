#!/usr/bin/python3
"""Randomized parity suite: a running lossservice against PyTorch (1.13).

  tools/parity.py --server build/server/loss_server       # starts its own server
  tools/parity.py --address 127.0.0.1:50051               # uses a running one
  tools/parity.py --server ... --only ctc,nll --verbose
  tools/parity.py --server ... --case ctc#17 --verbose    # re-run one case

Every case is drawn from a numpy RandomState seeded from (--seed, loss, case
index), so a case keeps its number and its values under --only, --case and
any --cases that still reaches its index (for one version of this file).
--cases is the total over all 21 losses (each gets an equal share); --only
runs those losses' share of it.

For each case it computes PyTorch's reference loss and d(loss)/d(input)
(autograd, with grad_output or ones) in float64 from the exact values sent
(a float32 case: the values rounded to float32, then upcast; other floating
tensors are rounded to the input's dtype, as the contract uses them), and
PyTorch's own result in float32 for float32 cases. A response value passes
when
  float64: |ours - ref64| <= 1e-12 + 1e-10 |ref64|
  float32: |ours - ref64| <= 1e-6 + 1e-5 |ref64|, or, where PyTorch's own
           float32 result misses that, |ours - ref64| <= |torch32 - ref64|
           + 1e-6 + 1e-5 |ref64| (never worse than PyTorch float32).
NaN must match NaN and infinities must match exactly (the reference rounded
to the case dtype decides: a float64 reference beyond float32's range is
inf). Shapes, dtypes, the encoding (typed values or raw_data, as the input
used) and request_id must match. Where PyTorch raises, or the contract
defines an error PyTorch does not check (CTC labels equal to blank, shapes
PyTorch would broadcast, ...), the expected answer is INVALID_ARGUMENT.

The gRPC stubs are generated at run time into a temporary directory from
proto/lossservice/v1/loss_service.proto with the system protoc and
/usr/bin/grpc_python_plugin; nothing is written into the repository.

Output: a table per loss, the first failures in detail, then
"parity: N passed, M failed" and "N passed, M failed". Exit status 0 only
when every case passed.
"""

import argparse
import atexit
import collections
import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
import zlib

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROTO_REL = os.path.join("lossservice", "v1", "loss_service.proto")
GRPC_PLUGIN = "/usr/bin/grpc_python_plugin"

LOSSES = ("mse", "l1", "rmse", "huber", "smooth_l1", "cross_entropy", "nll", "bce",
          "bce_with_logits", "kl_div", "poisson_nll", "gaussian_nll", "soft_margin",
          "multilabel_soft_margin", "multi_margin", "multilabel_margin", "hinge_embedding",
          "margin_ranking", "cosine_embedding", "triplet_margin", "ctc")
REDUCTIONS = {loss: ("mean", "sum", "none") for loss in LOSSES}
REDUCTIONS["rmse"] = ("mean",)
REDUCTIONS["kl_div"] = ("mean", "sum", "none", "batchmean")

NP = {"float32": np.float32, "float64": np.float64, "int64": np.int64, "int32": np.int32}
LE = {"float32": "<f4", "float64": "<f8", "int64": "<i8", "int32": "<i4"}
TORCH_FLOAT = {"float32": torch.float32, "float64": torch.float64}
OTHER_FLOAT = {"float32": "float64", "float64": "float32"}
TOL = {"float32": (1e-6, 1e-5), "float64": (1e-12, 1e-10)}
ERROR_SHARE = 0.07

pb = None        # loss_service_pb2, loaded by load_stubs()
pb_grpc = None   # loss_service_pb2_grpc


# ----------------------------------------------------------------------------
# Stubs and server

def load_stubs(proto_root):
  global pb, pb_grpc
  proto = os.path.join(proto_root, PROTO_REL)
  if not os.path.exists(proto):
    sys.exit(f"parity: no proto at {proto}")
  if not os.access(GRPC_PLUGIN, os.X_OK):
    sys.exit(f"parity: {GRPC_PLUGIN} not found (Debian package protobuf-compiler-grpc)")
  out = tempfile.mkdtemp(prefix="parity-stubs-")
  atexit.register(shutil.rmtree, out, True)
  cmd = ["protoc", f"-I{proto_root}", f"--python_out={out}", f"--grpc_python_out={out}",
         f"--plugin=protoc-gen-grpc_python={GRPC_PLUGIN}", proto]
  done = subprocess.run(cmd, capture_output=True, text=True)
  if done.returncode != 0:
    sys.exit(f"parity: protoc failed:\n{done.stderr}")
  sys.path.insert(0, out)
  import importlib
  pb = importlib.import_module("lossservice.v1.loss_service_pb2")
  pb_grpc = importlib.import_module("lossservice.v1.loss_service_pb2_grpc")


def _die_with_parent():
  # The server gets SIGTERM if this process dies without running atexit.
  try:
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
  except OSError:
    pass


class Server:
  """A loss_server child bound to a free port, stopped at exit."""

  LISTENING = re.compile(r"lossservice listening on (\S+):(\d+)")

  def __init__(self, path, address, timeout):
    self.log = collections.deque(maxlen=50)
    self.port = None
    self.ready = threading.Event()
    self.proc = subprocess.Popen(
        [path, f"--address={address}"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, text=True, preexec_fn=_die_with_parent)
    atexit.register(self.stop)
    threading.Thread(target=self._drain, daemon=True).start()
    deadline = time.monotonic() + timeout
    while not self.ready.wait(0.05):
      if self.proc.poll() is not None:
        self.stop()
        sys.exit(f"parity: {path} exited with {self.proc.returncode} before listening:\n" +
                 "\n".join(self.log))
      if time.monotonic() > deadline:
        self.stop()
        sys.exit(f"parity: {path} did not log 'lossservice listening on' within {timeout} s:\n" +
                 "\n".join(self.log))
    host = address.rsplit(":", 1)[0]
    self.address = f"{host}:{self.port}"

  def _drain(self):
    for line in self.proc.stdout:
      self.log.append(line.rstrip())
      m = self.LISTENING.search(line)
      if m and not self.ready.is_set():
        self.port = int(m.group(2))
        self.ready.set()

  def stop(self):
    if self.proc.poll() is None:
      self.proc.terminate()
      try:
        self.proc.wait(10)
      except subprocess.TimeoutExpired:
        self.proc.kill()
        self.proc.wait()


# ----------------------------------------------------------------------------
# Cases

class Arr:
  """A tensor to send: values (any numpy array) and the dtype they travel in.
  raw: None follows the input's encoding. set_dtype: also set `dtype` with
  typed values (always set for raw and empty tensors)."""

  def __init__(self, values, dtype, raw=None, set_dtype=None):
    self.dtype = dtype
    self.values = np.asarray(values).astype(NP[dtype])
    self.raw = raw
    self.set_dtype = set_dtype

  @property
  def shape(self):
    return tuple(self.values.shape)

  def floating(self):
    return self.dtype in ("float32", "float64")

  def describe(self):
    dims = "x".join(str(d) for d in self.shape) or "scalar"
    return f"{dims}:{self.dtype}{'/raw' if self.raw else ''}"


class Case:
  def __init__(self, loss, index, rng):
    self.loss = loss
    self.index = index
    self.id = f"{loss}#{index}"
    self.r = rng
    self.dtype = "float32"
    self.reduction = "mean"
    self.wire_reduction = "MEAN"
    self.raw = False
    self.x = None
    self.t = None
    self.opts = {}
    self.compute_grad = True
    self.want_go = False
    self.go_dtype = None
    self.go = None
    self.error = None      # why INVALID_ARGUMENT is expected
    self.mutate = None     # fn(request) for malformed-request error cases
    self.tags = []
    self.skip = None       # why no reference exists (PyTorch's result is undefined)
    # PyTorch's multi_margin / multilabel_margin reduce an empty batch from
    # uninitialized memory; the contract's rule stands in: mean NaN, sum 0.
    self.contract_empty = False
    # Results of reference().
    self.ref = None        # (loss64, grad64)
    self.t32 = None        # (loss32, grad32) or None

  def describe(self):
    parts = [self.id, self.dtype, self.wire_reduction.lower(),
             "raw" if self.raw else "typed",
             f"x={self.x.describe()}" if self.x is not None else "x=none"]
    if self.t is not None:
      parts.append(f"t={self.t.describe()}")
    for k, v in sorted(self.opts.items()):
      parts.append(f"{k}={v.describe() if isinstance(v, Arr) else repr(v)}")
    parts.append("grad" if self.compute_grad else "nograd")
    if self.go is not None:
      parts.append(f"grad_output={self.go.describe()}")
    if self.tags:
      parts.append("[" + ",".join(self.tags) + "]")
    if self.error:
      parts.append(f"expect INVALID_ARGUMENT ({self.error})")
    return " ".join(parts)


def pick(r, seq):
  return seq[r.randint(len(seq))]


def chance(r, p):
  return r.rand() < p


def randn(r, shape, scale=1.0):
  return r.standard_normal(shape) * scale


def rand_shape(r, min_rank=0, max_rank=3, max_dim=5, empty=0.04):
  rank = r.randint(min_rank, max_rank + 1)
  shape = [int(r.randint(1, max_dim + 1)) for _ in range(rank)]
  if rank and chance(r, empty):
    shape[r.randint(rank)] = 0
  return tuple(shape)


def inject_nonfinite(r, a, count=None, kinds=(np.nan, np.inf, -np.inf)):
  a = np.array(a, dtype=np.float64)
  flat = a.reshape(-1)
  if flat.size == 0:
    return a
  count = count or r.randint(1, min(3, flat.size) + 1)
  for i in r.choice(flat.size, size=min(count, flat.size), replace=False):
    flat[i] = pick(r, kinds)
  return a


def log_softmax_np(a, axis):
  a = np.asarray(a, dtype=np.float64)
  if a.size == 0:
    return a
  m = a.max(axis=axis, keepdims=True)
  m = np.where(np.isfinite(m), m, 0.0)
  s = a - m
  return s - np.log(np.exp(s).sum(axis=axis, keepdims=True))


def softmax_np(a, axis):
  return np.exp(log_softmax_np(a, axis))


def sigmoid_np(a):
  return 1.0 / (1.0 + np.exp(-a))


def signs(r, shape):
  return np.where(r.rand(*shape) < 0.5, -1.0, 1.0) if shape else np.array(pick(r, (-1.0, 1.0)))


def float_arr(c, values, p_other=0.2):
  """A floating tensor besides the input: sometimes in the other dtype."""
  return Arr(values, OTHER_FLOAT[c.dtype] if chance(c.r, p_other) else c.dtype)


def index_arr(c, values, p32=0.3):
  return Arr(values, "int32" if chance(c.r, p32) else "int64")


def maybe_optional(c, name, default, draw, p_unset=0.35, p_default=0.15):
  """An `optional` option: unset, the explicit default, or drawn."""
  u = c.r.rand()
  if u < p_unset:
    return
  c.opts[name] = float(default) if isinstance(default, float) else default
  if u >= p_unset + p_default:
    c.opts[name] = draw()


# ---- per-loss generators: set x, t and options on a case (dtype, reduction
# already chosen). Values are float64 here; the request rounds them.

def gen_pointwise_values(c, shape, scale=1.5):
  r = c.r
  x = randn(r, shape, scale)
  t = randn(r, shape, scale)
  if x.size and chance(r, 0.15):
    eq = r.rand(*shape) < 0.4
    t = np.where(eq, x, t)
    c.tags.append("equal_elements")
  if chance(r, 0.1):
    x = inject_nonfinite(r, x)
    c.tags.append("nonfinite")
  if chance(r, 0.05):
    t = inject_nonfinite(r, t)
    c.tags.append("nonfinite_target")
  return x, t


BIG = 0.04  # share of cases with large tensors (long sums, many classes)


def big(c):
  if chance(c.r, BIG):
    c.tags.append("big")
    return True
  return False


def elementwise_shape(c):
  r = c.r
  if chance(r, 0.05):
    c.tags.append("one_element")
    return (1,)
  if big(c):
    return (int(r.randint(100, 3000)), int(r.randint(1, 9)))
  return rand_shape(r, 0, 3)


def gen_mse(c):
  x, t = gen_pointwise_values(c, elementwise_shape(c))
  c.x, c.t = x, float_arr(c, t)


gen_l1 = gen_mse


def gen_rmse(c):
  gen_mse(c)
  maybe_optional(c, "eps", 1e-7, lambda: pick(c.r, (0.0, 1e-3, 1e-12, float(c.r.uniform(0, 0.1)))))


def gen_huber(c):
  shape = elementwise_shape(c)
  x, t = gen_pointwise_values(c, shape, scale=pick(c.r, (0.5, 1.5, 4.0)))
  maybe_optional(c, "delta", 1.0, lambda: pick(c.r, (0.5, 2.0, float(c.r.uniform(0.05, 3.0)))))
  if x.size and chance(c.r, 0.1):
    # |x - t| exactly delta at some elements (dyadic values: exact in float32).
    d = c.opts.get("delta", 1.0) if c.opts.get("delta", 1.0) in (0.5, 1.0, 2.0) else 1.0
    c.opts["delta"] = d
    t = np.round(t * 4) / 4
    x = np.where(c.r.rand(*shape) < 0.5, t + d, t - d)
    c.tags.append("at_delta")
  c.x, c.t = x, float_arr(c, t)


def gen_smooth_l1(c):
  shape = elementwise_shape(c)
  x, t = gen_pointwise_values(c, shape, scale=pick(c.r, (0.5, 1.5, 4.0)))
  maybe_optional(c, "beta", 1.0, lambda: pick(c.r, (0.0, 0.5, 2.0, float(c.r.uniform(0.01, 3.0)))))
  if c.opts.get("beta") == 0.0:
    c.tags.append("beta0")
  c.x, c.t = x, float_arr(c, t)


def class_shape(r, C):
  u = r.rand()
  if u < 0.12:
    return (C,), ()
  if u < 0.6:
    n = 1 if chance(r, 0.1) else int(r.randint(1, 7))
    if chance(r, 0.04):
      n = 0
    return (n, C), (n,)
  n = int(r.randint(1, 4))
  extra = tuple(int(r.randint(1, 4)) for _ in range(r.randint(1, 3)))
  if chance(r, 0.05):
    extra = extra[:-1] + (0,)
  return (n, C) + extra, (n,) + extra


def gen_class_common(c, log_probs):
  r = c.r
  C = int(pick(r, (1, 2, 3, 5, 7))) if chance(r, 0.9) else 1
  xs, ts = class_shape(r, C)
  if big(c):
    C = int(r.randint(10, 200))
    xs, ts = ((int(r.randint(50, 500)), C), None) if chance(r, 0.7) else \
        ((int(r.randint(2, 6)), C, int(r.randint(5, 30)), int(r.randint(5, 30))), None)
    ts = xs[:1] + xs[2:]
  if len(xs) > 2:
    c.tags.append("kdim")
  scale = pick(r, (1.0, 2.0, 5.0)) if chance(r, 0.9) else 80.0
  x = randn(r, xs, scale)
  if log_probs and chance(r, 0.8):
    x = log_softmax_np(x, 0 if len(xs) == 1 else 1)
  if chance(r, 0.06):
    x = inject_nonfinite(r, x, kinds=(np.nan, np.inf, -np.inf, -np.inf))
    c.tags.append("nonfinite")
  if chance(r, 0.4):
    c.opts["weight"] = float_arr(c, r.uniform(0.1, 3.0, size=C), p_other=0.3)
  ii = None
  u = r.rand()
  if u < 0.25:
    ii = pick(r, (-100, -1, int(r.randint(0, C)), 1000))
    c.opts["ignore_index"] = int(ii)
  elif u < 0.35:
    c.opts["ignore_index"] = -100
  t = r.randint(0, C, size=ts).astype(np.int64)
  if t.size and chance(r, 0.35):
    fill = c.opts.get("ignore_index", -100)
    if chance(r, 0.12):
      t = np.full(ts, fill, dtype=np.int64)
      c.tags.append("all_ignored")
    else:
      t = np.where(r.rand(*ts) < 0.3, fill, t)
      c.tags.append("ignored")
  return x, t, C


def gen_cross_entropy(c):
  r = c.r
  x, t, C = gen_class_common(c, log_probs=False)
  if chance(r, 0.4):
    c.opts["label_smoothing"] = float(pick(r, (0.1, 0.25, 1.0, r.uniform(0, 1))))
  if chance(r, 0.25):
    # Probability targets of the input's shape. PyTorch refuses an
    # ignore_index >= 0 with them (a negative one is accepted and unused).
    cdim = 0 if x.ndim == 1 else 1
    p = softmax_np(randn(r, x.shape, 2.0), cdim) if chance(r, 0.8) else r.uniform(0, 1, x.shape)
    if c.opts.get("ignore_index", -100) >= 0:
      del c.opts["ignore_index"]
    c.t = float_arr(c, p)
    c.tags = [tag for tag in c.tags if tag not in ("ignored", "all_ignored")] + ["prob_target"]
  else:
    c.t = index_arr(c, t)
  c.x = x


def gen_nll(c):
  x, t, C = gen_class_common(c, log_probs=True)
  c.x, c.t = x, index_arr(c, t)


def broadcast_option_shape(r, shape, last_only=False):
  """A shape that broadcasts to `shape`."""
  if not shape:
    # (1,) against a 0-d input is refused by PyTorch (the result would be (1,)).
    return (1,) if chance(r, 0.1) else ()
  if last_only:
    return pick(r, ((shape[-1],), (1,), (shape[-1],), (1,) * len(shape)))
  out = []
  for d in shape[r.randint(len(shape) + 1):]:
    out.append(d if chance(r, 0.6) else 1)
  if chance(r, 0.1):
    out = [1] + out if len(out) < len(shape) else out
  return tuple(out)


def gen_bce(c):
  r = c.r
  shape = elementwise_shape(c)
  x = sigmoid_np(randn(r, shape, pick(r, (1.0, 3.0, 8.0))))
  t = r.uniform(0, 1, shape) if chance(r, 0.4) else r.randint(0, 2, shape).astype(np.float64)
  if x.size and chance(r, 0.25):
    m = r.rand(*shape) < 0.4
    x = np.where(m, r.randint(0, 2, shape).astype(np.float64), x)
    c.tags.append("exact_0_1")
  if chance(r, 0.4):
    c.opts["weight"] = float_arr(c, r.uniform(0.1, 3.0, broadcast_option_shape(r, shape)), 0.3)
  c.x, c.t = x, float_arr(c, t)


def gen_bce_with_logits(c):
  r = c.r
  shape = elementwise_shape(c)
  x = randn(r, shape, pick(r, (1.0, 3.0, 30.0)))
  t = r.uniform(0, 1, shape) if chance(r, 0.4) else r.randint(0, 2, shape).astype(np.float64)
  if x.size and chance(r, 0.15):
    x = np.where(r.rand(*shape) < 0.5, pick(r, (80.0, -80.0)), x)
    c.tags.append("logits_pm80")
  if chance(r, 0.08):
    x = inject_nonfinite(r, x)
    c.tags.append("nonfinite")
  if chance(r, 0.35):
    c.opts["weight"] = float_arr(c, r.uniform(0.1, 3.0, broadcast_option_shape(r, shape)), 0.3)
  if chance(r, 0.4):
    pshape = broadcast_option_shape(r, shape, last_only=True)
    c.opts["pos_weight"] = float_arr(c, r.uniform(0.2, 4.0, pshape), 0.3)
  c.x, c.t = x, float_arr(c, t)


def gen_kl_div(c):
  r = c.r
  shape = elementwise_shape(c)
  if chance(r, 0.3):
    c.opts["log_target"] = True
  axis = len(shape) - 1
  x = log_softmax_np(randn(r, shape, 2.0), axis) if shape else -r.uniform(0, 3)
  if chance(r, 0.5):
    t = log_softmax_np(randn(r, shape, 2.0), axis) if shape else -r.uniform(0, 3)
  else:
    t = np.log(r.uniform(0, 1, shape))
  if not c.opts.get("log_target"):
    t = np.exp(t)
    if np.size(t) and chance(r, 0.2):
      t = np.where(r.rand(*shape) < 0.3, 0.0, t)
      c.tags.append("zero_target")
  if chance(r, 0.06):
    x = inject_nonfinite(r, x)
    c.tags.append("nonfinite")
  c.x, c.t = x, float_arr(c, t)


def gen_poisson_nll(c):
  r = c.r
  shape = elementwise_shape(c)
  maybe_optional(c, "log_input", True, lambda: bool(chance(r, 0.5)))
  if chance(r, 0.35):
    c.opts["full"] = True
  maybe_optional(c, "eps", 1e-8, lambda: pick(r, (1e-3, 0.5, float(r.uniform(0, 0.1)))))
  if c.opts.get("log_input", True):
    x = randn(r, shape, 1.5)
  else:
    x = r.uniform(0, 5, shape)
    if x.size and chance(r, 0.3):
      x = np.where(r.rand(*shape) < 0.3, 0.0, x)
      c.tags.append("zero_rate")
  t = r.poisson(3.0, shape).astype(np.float64)
  if chance(r, 0.3):
    t = t + r.uniform(0, 1, shape)
  if chance(r, 0.05):
    x = inject_nonfinite(r, x)
    c.tags.append("nonfinite")
  c.x, c.t = x, float_arr(c, t)


def gen_gaussian_nll(c):
  r = c.r
  shape = elementwise_shape(c)
  u = r.rand()
  if u < 0.5 or not shape:
    vshape = shape
  elif u < 0.75:
    vshape = shape[:-1]
    c.tags.append("var_one_dim_short")
  else:
    vshape = shape[:-1] + (1,)
    c.tags.append("var_last_dim_1")
  var = r.uniform(0.05, 3.0, vshape)
  if var.size and chance(r, 0.15):
    var = np.where(r.rand(*vshape) < 0.4, pick(r, (0.0, 1e-9)), var)
    c.tags.append("var_below_eps")
  c.opts["var"] = float_arr(c, var, 0.3)
  if chance(r, 0.4):
    c.opts["full"] = True
  maybe_optional(c, "eps", 1e-6, lambda: pick(r, (1e-3, 0.1, float(r.uniform(1e-8, 0.5)))))
  x, t = gen_pointwise_values(c, shape)
  if shape and chance(r, 0.2):
    # The target with a last dimension of 1, broadcast along it
    # (torch.nn.GaussianNLLLoss's documented shape).
    t = np.resize(t if t.size else np.zeros(1), shape[:-1] + (1,))
    c.tags.append("target_last_dim_1")
  c.x, c.t = x, float_arr(c, t)


def gen_soft_margin(c):
  r = c.r
  shape = elementwise_shape(c)
  x = randn(r, shape, pick(r, (1.0, 3.0, 40.0)))
  if x.size and chance(r, 0.1):
    x = np.where(r.rand(*shape) < 0.5, pick(r, (80.0, -80.0, 100.0)), x)
    c.tags.append("large")
  if chance(r, 0.06):
    x = inject_nonfinite(r, x)
    c.tags.append("nonfinite")
  c.x, c.t = x, float_arr(c, signs(r, shape))


def margin_shape(c, feature=True):
  """(N, C) or (C), sometimes a batch of one or empty."""
  r = c.r
  C = int(r.randint(1, 7))
  if chance(r, 0.03):
    C = 0 if feature else C
  if big(c):
    return (int(r.randint(50, 400)), int(r.randint(10, 60)))
  if chance(r, 0.15):
    return (C,)
  n = 1 if chance(r, 0.12) else int(r.randint(1, 6))
  if chance(r, 0.04):
    n = 0
  return (n, C)


def gen_multilabel_soft_margin(c):
  r = c.r
  shape = margin_shape(c)
  x = randn(r, shape, pick(r, (1.0, 3.0, 30.0)))
  t = r.randint(0, 2, shape).astype(np.float64)
  if chance(r, 0.05):
    x = inject_nonfinite(r, x)
    c.tags.append("nonfinite")
  if chance(r, 0.4):
    c.opts["weight"] = float_arr(c, r.uniform(0.1, 3.0, shape[-1]), 0.3)
  c.x, c.t = x, float_arr(c, t)


def gen_multi_margin(c):
  r = c.r
  shape = margin_shape(c, feature=False)
  C = shape[-1]
  x = randn(r, shape, pick(r, (0.3, 1.0, 3.0)))
  t = r.randint(0, C, size=shape[:-1]).astype(np.int64)
  maybe_optional(c, "p", 1, lambda: int(pick(r, (1, 2))))
  maybe_optional(c, "margin", 1.0, lambda: pick(r, (0.0, 0.5, 2.0, float(r.uniform(-1, 3)))))
  if chance(r, 0.35):
    c.opts["weight"] = float_arr(c, r.uniform(0.1, 3.0, C), 0.3)
  if chance(r, 0.05):
    x = inject_nonfinite(r, x)
    c.tags.append("nonfinite")
  if shape[0] == 0 and c.reduction != "none":
    c.contract_empty = True
  c.x, c.t = x, index_arr(c, t)


def gen_multilabel_margin(c):
  r = c.r
  shape = margin_shape(c, feature=False)
  C = shape[-1]
  x = randn(r, shape, pick(r, (0.3, 1.0, 3.0)))
  rows = int(np.prod(shape[:-1]))
  t = np.empty((rows, C), dtype=np.int64)
  for i in range(rows):
    k = int(r.randint(0, C + 1))
    labels = r.permutation(C)[:k]
    after = r.randint(-1, C, size=C)  # values after the terminator, in [-1, C)
    row = after.copy()
    row[:k] = labels
    if k < C:
      row[k] = -1
    t[i] = row
  if chance(r, 0.05):
    x = inject_nonfinite(r, x)
    c.tags.append("nonfinite")
  if shape[0] == 0 and c.reduction != "none":
    c.contract_empty = True
  c.x, c.t = x, index_arr(c, t.reshape(shape))


def gen_hinge_embedding(c):
  r = c.r
  shape = elementwise_shape(c)
  x = randn(r, shape, 1.5)
  if chance(r, 0.5):
    x = np.abs(x)
  maybe_optional(c, "margin", 1.0, lambda: pick(r, (0.0, 0.5, 2.0, float(r.uniform(-1, 3)))))
  if x.size and chance(r, 0.1):
    m = c.opts.get("margin", 1.0)
    x = np.where(r.rand(*shape) < 0.5, m, x)
    c.tags.append("at_margin")
  if chance(r, 0.05):
    x = inject_nonfinite(r, x)
    c.tags.append("nonfinite")
  c.x, c.t = x, float_arr(c, signs(r, shape))


def gen_margin_ranking(c):
  r = c.r
  shape = () if chance(r, 0.12) else (int(r.randint(1, 9)),)
  if chance(r, 0.3):
    shape = rand_shape(r, min_rank=2, max_rank=3)  # element-wise at any rank
  if big(c):
    shape = (int(r.randint(500, 20000)),)
  if shape and chance(r, 0.04):
    shape = (0,)
  if chance(r, 0.5):
    c.opts["margin"] = float(pick(r, (0.5, 1.0, -0.5, r.uniform(-1, 2))))
  x = randn(r, shape)
  x2 = randn(r, shape)
  if np.size(x) and chance(r, 0.1):
    x2 = np.where(r.rand(*shape) < 0.5, x - c.opts.get("margin", 0.0), x2)
    c.tags.append("at_margin")
  if chance(r, 0.05):
    x = inject_nonfinite(r, x)
    c.tags.append("nonfinite")
  c.opts["input2"] = float_arr(c, x2, 0.3)
  c.x, c.t = x, float_arr(c, signs(r, shape))


def embedding_shape(c):
  """(N, D) rows or the unbatched (D): sometimes a batch of one, an empty
  batch, empty rows or large. Returns (shape, unbatched, N)."""
  r = c.r
  D = int(r.randint(1, 7)) if chance(r, 0.97) else 0
  unbatched = chance(r, 0.15)
  n = 1 if chance(r, 0.12) else int(r.randint(1, 6))
  if chance(r, 0.04):
    n = 0
  if big(c):
    n, D = int(r.randint(20, 200)), int(r.randint(50, 500))
  return ((D,) if unbatched else (n, D)), unbatched, n


def gen_cosine_embedding(c):
  r = c.r
  shape, unbatched, n = embedding_shape(c)
  x = randn(r, shape)
  x2 = randn(r, shape)
  if x.size and chance(r, 0.1):
    if unbatched:
      x[:] = 0.0
    else:
      x[r.randint(n)] = 0.0
    c.tags.append("zero_vector")
  if x.size and chance(r, 0.08):
    x2 = x * pick(r, (1.0, -2.0))
    c.tags.append("parallel")
  if chance(r, 0.5):
    c.opts["margin"] = float(pick(r, (0.5, -0.5, r.uniform(-1, 1))))
  if chance(r, 0.04):
    x = inject_nonfinite(r, x)
    c.tags.append("nonfinite")
  c.opts["input2"] = float_arr(c, x2, 0.3)
  c.x, c.t = x, float_arr(c, signs(r, shape[:-1]))


def gen_triplet_margin(c):
  r = c.r
  shape, _, _ = embedding_shape(c)
  a = randn(r, shape)
  p = a + randn(r, shape, 0.5)
  neg = randn(r, shape)
  if a.size and chance(r, 0.1):
    p = a.copy()
    c.tags.append("positive_equals_anchor")
  maybe_optional(c, "margin", 1.0, lambda: pick(r, (0.0, 0.5, 2.0, float(r.uniform(0, 3)))))
  maybe_optional(c, "p", 2.0, lambda: pick(r, (1.0, 3.0, 1.5, float(r.uniform(1, 4)))))
  maybe_optional(c, "eps", 1e-6, lambda: pick(r, (0.0, 1e-3, float(r.uniform(0, 0.1)))))
  if chance(r, 0.4):
    c.opts["swap"] = True
  if chance(r, 0.04):
    a = inject_nonfinite(r, a)
    c.tags.append("nonfinite")
  c.opts["positive"] = float_arr(c, p, 0.3)
  c.opts["negative"] = float_arr(c, neg, 0.3)
  c.x, c.t = a, None


def gen_ctc(c):
  r = c.r
  T = int(r.randint(1, 13))
  C = int(r.randint(2, 7))
  long_targets = False
  if big(c):
    T, C, long_targets = int(r.randint(30, 120)), int(r.randint(5, 40)), True
  unbatched = chance(r, 0.1)
  N = 1 if unbatched else (int(r.randint(1, 5)) if chance(r, 0.97) else 0)
  blank = 0 if chance(r, 0.7) else int(r.randint(0, C))
  if blank:
    c.opts["blank"] = blank
  labels = [k for k in range(C) if k != blank]
  in_len = np.full(N, T) if chance(r, 0.5) else r.randint(1, T + 1, size=N)
  tl = []
  seqs = []
  for i in range(N):
    if chance(r, 0.1):
      L = int(r.randint(0, T + 3))     # may be too long: inf loss
    else:
      L = int(r.randint(0, min(int(in_len[i]), 40 if long_targets else 6) + 1))
    seq = [labels[j] for j in r.randint(0, len(labels), size=L)]
    if L >= 2 and chance(r, 0.25):
      seq[1] = seq[0]
      c.tags.append("repeat")
    tl.append(L)
    seqs.append(seq)
  if chance(r, 0.4):
    c.opts["zero_infinity"] = True
  x = log_softmax_np(randn(r, (T, N, C), pick(r, (1.0, 3.0, 8.0))), 2)
  concat = chance(r, 0.35) if not unbatched else chance(r, 0.6)
  if concat:
    t = np.array([v for s in seqs for v in s], dtype=np.int64)
    c.tags.append("concatenated")
  else:
    S = max(tl + [0]) + int(r.randint(0, 3))
    pad_blank = chance(r, 0.2)
    t = np.empty((N, S), dtype=np.int64)
    for i, s in enumerate(seqs):
      pad = [blank if pad_blank else labels[j] for j in r.randint(0, len(labels), size=S - len(s))]
      t[i] = s + pad
    if pad_blank:
      c.tags.append("padded_with_blank")
  if unbatched:
    # (T, C) with target (S) concatenated (S == the target length) or (1, S)
    # padded; lengths () or (1).
    x = x[:, 0, :]
    one = (1,) if chance(r, 0.2) else ()
    in_len = np.asarray(in_len).reshape(one)
    tl = np.asarray(tl).reshape(one)
    c.tags.append("unbatched")
  c.opts["input_lengths"] = index_arr(c, np.asarray(in_len), 0.4)
  c.opts["target_lengths"] = index_arr(c, np.asarray(tl), 0.4)
  c.x, c.t = x, index_arr(c, t, 0.4)


GENERATORS = {loss: globals()["gen_" + loss] for loss in LOSSES}


# ---- error cases: a valid case made invalid, expecting INVALID_ARGUMENT.

def swap_dims(shape):
  if len(shape) >= 2 and shape[0] != shape[1]:
    return (shape[1], shape[0]) + shape[2:]
  return tuple(shape) + (2,) if shape else (2,)


def err_target_shape(c):
  if c.t is None or c.loss == "ctc":  # a padded CTC target may be any (N, S >= lengths)
    return None
  s = c.t.shape
  u = c.r.rand()
  if s and u < 0.4:
    new = s + (1,)
    why = f"target {new} vs expected {s} (would broadcast)"
  elif s and s[-1] > 1 and u < 0.7:
    new = s[:-1] + (s[-1] - 1,)
    why = f"target {new} vs expected {s}"
  else:
    new = swap_dims(s)
    why = f"target {new} vs expected {s}"
  if int(np.prod(new)) == 0 and int(np.prod(s)) == 0:
    return None
  if (c.loss == "gaussian_nll" and new and new[-1] == 1
      and tuple(new[:-1]) == tuple(np.shape(c.x))[:-1]):
    return None  # a last dimension of 1 is gaussian_nll's valid broadcast
  v = c.t.values
  vals = np.resize(v if v.size else np.zeros(1, v.dtype), new)
  c.t = Arr(vals, c.t.dtype)
  return why


def err_integer_input(c):
  c.x = Arr(np.round(np.nan_to_num(np.asarray(c.x.values if isinstance(c.x, Arr) else c.x)))
            .clip(-1e6, 1e6), pick(c.r, ("int64", "int32")))
  return "integer input"


def err_reduction(c):
  bad = [x for x in ("sum", "none", "batchmean") if x not in REDUCTIONS[c.loss]]
  if not bad:
    return None
  c.reduction = pick(c.r, bad)
  c.wire_reduction = c.reduction.upper()
  return f"reduction {c.reduction} not allowed for {c.loss}"


def err_unknown_reduction(c):
  c.mutate = lambda req: setattr(req, "reduction", 9)
  return "unknown reduction enum value 9"


def err_count_mismatch(c):
  def mutate(req):
    t = req.input
    if t.raw_data:
      t.raw_data = t.raw_data + t.raw_data[:4] if len(t.raw_data) else b"\0" * 8
    elif c.dtype == "float32":
      t.float_values.append(0.5)
    else:
      t.double_values.append(0.5)
  c.mutate = mutate
  return "input has more values than its shape holds"


def err_raw_without_dtype(c):
  if np.size(c.x) == 0:
    return None
  c.raw = True
  c.mutate = lambda req: req.input.ClearField("dtype")
  return "raw_data without dtype"


def err_dtype_disagrees(c):
  if np.size(c.x) == 0:
    return None
  c.raw = False
  other = OTHER_FLOAT[c.dtype].upper()
  c.mutate = lambda req: setattr(req.input, "dtype", getattr(pb, "DATA_TYPE_" + other))
  return "typed values with a disagreeing dtype"


def err_two_fields(c):
  if np.size(c.x) == 0:
    return None
  c.raw = False
  def mutate(req):
    arr = np.asarray(req.input.float_values or req.input.double_values)
    req.input.raw_data = arr.astype(LE[c.dtype]).tobytes()
    req.input.dtype = getattr(pb, "DATA_TYPE_" + c.dtype.upper())
  c.mutate = mutate
  return "two value fields set"


def err_negative_dim(c):
  c.mutate = lambda req: (req.input.ClearField("shape"), req.input.shape.extend([-1, -2]))
  return "negative dimension"


def err_no_loss(c):
  c.mutate = lambda req: req.ClearField("loss")
  return "no loss set"


def err_grad_output_shape(c):
  c.compute_grad = True
  c.want_go = "bad"
  return "grad_output shape differs from the loss's"


GENERIC_ERRORS = [err_target_shape, err_integer_input, err_reduction, err_unknown_reduction,
                  err_count_mismatch, err_raw_without_dtype, err_dtype_disagrees,
                  err_two_fields, err_negative_dim, err_no_loss, err_grad_output_shape]


def err_class_out_of_range(c):
  if isinstance(c.t, Arr) and c.t.floating() or c.t is None:
    return None
  t = c.t.values.astype(np.int64).copy()
  if t.size == 0:
    return None
  C = c.x.shape[0] if len(c.x.shape) == 1 else c.x.shape[1]
  ii = c.opts.get("ignore_index", -100)
  bad = pick(c.r, (C, C + 3, -2 if ii != -2 else -3))
  if bad == ii:
    return None
  t.reshape(-1)[c.r.randint(t.size)] = bad
  c.t = Arr(t, c.t.dtype)
  return f"class {bad} out of range [0, {C})"


def err_weight_length(c):
  C = c.x.shape[0] if len(c.x.shape) == 1 else c.x.shape[1]
  c.opts["weight"] = Arr(c.r.uniform(0.5, 2, C + pick(c.r, (1, 2))), c.dtype)
  return f"weight of length != C={C}"


def err_float_class_target(c):
  if c.t is None or c.t.floating():
    return None
  c.t = Arr(c.t.values.astype(np.float64), c.dtype)
  return "float class-index target"


def err_label_smoothing(c):
  c.opts["label_smoothing"] = pick(c.r, (-0.1, 1.5))
  return f"label_smoothing {c.opts['label_smoothing']}"


def err_prob_ignore_index(c):
  if c.t is None or not c.t.floating():
    return None
  c.opts["ignore_index"] = int(pick(c.r, (0, 1, 1000)))
  return f"ignore_index {c.opts['ignore_index']} >= 0 with probability targets"


def err_bce_input_domain(c):
  if np.size(c.x) == 0:
    return None
  x = np.array(c.x, dtype=np.float64)
  x.reshape(-1)[c.r.randint(x.size)] = pick(c.r, (1.5, -0.25))
  c.x = x
  return "bce input outside [0, 1]"


def err_bce_target_domain(c):
  if np.size(c.x) == 0:
    return None
  t = c.t.values.astype(np.float64).copy()
  t.reshape(-1)[c.r.randint(t.size)] = pick(c.r, (2.0, -1.0))
  c.t = Arr(t, c.t.dtype)
  return "bce target outside [0, 1]"


def err_weight_not_broadcastable(c, name="weight"):
  shape = c.x.shape if isinstance(c.x, Arr) else np.shape(c.x)
  new = tuple(shape) + (3,) if c.r.rand() < 0.5 or not shape else (shape[-1] + 2,)
  c.opts[name] = Arr(np.ones(new), c.dtype)
  return f"{name} {new} not broadcastable to {tuple(shape)}"


def err_huber_delta(c):
  c.opts["delta"] = pick(c.r, (0.0, -1.0))
  return f"delta {c.opts['delta']}"


def err_smooth_l1_beta(c):
  c.opts["beta"] = -0.5
  return "beta -0.5"


def err_gaussian_var(c):
  v = c.opts["var"].values.astype(np.float64).copy()
  if c.r.rand() < 0.5 and v.size:
    v.reshape(-1)[c.r.randint(v.size)] = -0.5
    c.opts["var"] = Arr(v, c.opts["var"].dtype)
    return "negative var"
  shape = np.shape(c.x)
  new = swap_dims(tuple(shape)) + (2,)
  c.opts["var"] = Arr(np.ones(new), c.dtype)
  return f"var {new} for input {tuple(shape)}"


def err_multi_margin_p(c):
  c.opts["p"] = int(pick(c.r, (0, 3, -1)))
  return f"p {c.opts['p']}"


def err_multilabel_margin_target(c):
  t = c.t.values.astype(np.int64).copy()
  if t.size == 0:
    return None
  t.reshape(-1)[0] = t.shape[-1] + 1
  c.t = Arr(t, c.t.dtype)
  return "label >= C"


def err_other_shape(c, name):
  v = c.opts[name]
  new = swap_dims(v.shape) if c.r.rand() < 0.5 else v.shape + (1,)
  c.opts[name] = Arr(np.resize(v.values if v.values.size else np.zeros(1), new), v.dtype)
  return f"{name} {new} vs input {v.shape}"


def err_missing(c, name):
  del c.opts[name]
  return f"{name} missing"


def err_triplet_target(c):
  c.t = Arr(np.ones(np.shape(c.x)[:-1]), c.dtype)
  return "target set for triplet_margin"


def err_ctc(c):
  r = c.r
  o = c.opts
  x = np.asarray(c.x)
  T, C = x.shape[0], x.shape[-1]
  blank = o.get("blank", 0)
  il = o["input_lengths"].values.astype(np.int64).copy()
  tl = o["target_lengths"].values.astype(np.int64).copy()
  t = c.t.values.astype(np.int64).copy()
  kind = pick(r, ("label_blank", "label_ge_C", "input_len_0", "input_len_gt_T",
                  "target_len_gt_S", "blank_range", "lengths_shape", "float_target",
                  "concat_sum"))
  if kind in ("label_blank", "label_ge_C"):
    if tl.sum() == 0:
      return None
    # The first label of the first non-empty sequence.
    i = int(np.nonzero(tl.reshape(-1))[0][0])
    if "concatenated" in c.tags:
      pos = int(tl.reshape(-1)[:i].sum())
      t.reshape(-1)[pos] = blank if kind == "label_blank" else C + int(r.randint(0, 2))
    else:
      t2 = t.reshape(-1, t.shape[-1]) if t.ndim else t
      t2[i, 0] = blank if kind == "label_blank" else C + int(r.randint(0, 2))
    c.t = Arr(t, c.t.dtype)
    return f"ctc {kind}"
  if kind == "input_len_0":
    if il.size == 0:
      return None
    il.reshape(-1)[0] = 0
    o["input_lengths"] = Arr(il, o["input_lengths"].dtype)
    return "ctc input length 0"
  if kind == "input_len_gt_T":
    if il.size == 0:
      return None
    il.reshape(-1)[0] = T + 1
    o["input_lengths"] = Arr(il, o["input_lengths"].dtype)
    return f"ctc input length {T + 1} > T={T}"
  if kind == "target_len_gt_S":
    if "concatenated" in c.tags or tl.size == 0:
      return None
    tl.reshape(-1)[0] = t.shape[-1] + 1
    o["target_lengths"] = Arr(tl, o["target_lengths"].dtype)
    return "ctc target length > S"
  if kind == "blank_range":
    o["blank"] = pick(r, (C, -1))
    return f"ctc blank {o['blank']} with C={C}"
  if kind == "lengths_shape":
    name = pick(r, ("input_lengths", "target_lengths"))
    v = o[name].values
    o[name] = Arr(np.concatenate([v.reshape(-1), v.reshape(-1)[:1], [1]]), o[name].dtype)
    return f"ctc {name} of the wrong length"
  if kind == "float_target":
    c.t = Arr(t.astype(np.float64), c.dtype)
    return "ctc float target"
  if kind == "concat_sum":
    if "concatenated" not in c.tags:
      return None
    c.t = Arr(np.concatenate([t, [labels_for(C, blank)[0]]]), c.t.dtype)
    return "ctc concatenated targets longer than sum(target_lengths)"
  return None


def labels_for(C, blank):
  return [k for k in range(C) if k != blank]


SPECIFIC_ERRORS = {
    "cross_entropy": [err_class_out_of_range, err_weight_length, err_float_class_target,
                      err_label_smoothing, err_prob_ignore_index],
    "nll": [err_class_out_of_range, err_weight_length, err_float_class_target],
    "bce": [err_bce_input_domain, err_bce_target_domain, err_weight_not_broadcastable],
    "bce_with_logits": [err_weight_not_broadcastable,
                        lambda c: err_weight_not_broadcastable(c, "pos_weight")],
    "huber": [err_huber_delta],
    "smooth_l1": [err_smooth_l1_beta],
    "gaussian_nll": [err_gaussian_var, lambda c: err_missing(c, "var")],
    "multi_margin": [err_multi_margin_p, err_class_out_of_range, err_weight_length],
    "multilabel_margin": [err_multilabel_margin_target],
    "multilabel_soft_margin": [err_weight_length],
    "margin_ranking": [lambda c: err_other_shape(c, "input2"),
                       lambda c: err_missing(c, "input2")],
    "cosine_embedding": [lambda c: err_other_shape(c, "input2"),
                         lambda c: err_missing(c, "input2")],
    "triplet_margin": [err_triplet_target, lambda c: err_other_shape(c, "positive"),
                       lambda c: err_other_shape(c, "negative"),
                       lambda c: err_missing(c, "negative")],
    "ctc": [err_ctc, err_ctc, err_ctc],
}


def make_error(c):
  """Turns a generated valid case into an error case; False if none applies."""
  specific = SPECIFIC_ERRORS.get(c.loss, [])
  for _ in range(8):
    if specific and chance(c.r, 0.6):
      fn = pick(c.r, specific)
    else:
      fn = pick(c.r, GENERIC_ERRORS)
    why = fn(c)
    if why:
      c.error = why
      return True
  return False


def make_case(loss, index, seed):
  rng = np.random.RandomState(zlib.crc32(f"{seed}/{loss}/{index}".encode()) & 0x7FFFFFFF)
  c = Case(loss, index, rng)
  r = rng
  c.dtype = pick(r, ("float32", "float64"))
  c.reduction = pick(r, REDUCTIONS[loss])
  c.wire_reduction = c.reduction.upper()
  if c.reduction == "mean" and chance(r, 0.2):
    c.wire_reduction = "UNSPECIFIED"
  c.raw = chance(r, 0.5)
  c.compute_grad = chance(r, 0.8)
  want_error = chance(r, ERROR_SHARE)
  GENERATORS[loss](c)
  c.want_go = c.compute_grad and chance(r, 0.35)
  c.go_dtype = OTHER_FLOAT[c.dtype] if chance(r, 0.2) else c.dtype
  if want_error and make_error(c):
    c.skip = None
  if not isinstance(c.x, Arr):
    c.x = Arr(c.x, c.dtype)
  # Encodings of the other tensors: mostly the input's, sometimes the other.
  for a in [c.t] + [v for v in c.opts.values() if isinstance(v, Arr)]:
    if a is not None:
      a.raw = c.raw if chance(r, 0.85) else not c.raw
      a.set_dtype = chance(r, 0.5)
  c.x.raw = c.raw
  c.x.set_dtype = chance(r, 0.5)
  if c.x.values.size == 0:
    c.tags.append("empty")
  return c


# ----------------------------------------------------------------------------
# PyTorch reference

def to_torch(a, case_dtype, ft):
  """Floating: rounded to the case dtype, then in ft. Index: int64."""
  if a is None:
    return None
  if not a.floating():
    return torch.from_numpy(a.values.astype(np.int64))
  v = a.values.astype(NP[case_dtype]).astype(np.float64 if ft == torch.float64 else np.float32)
  return torch.from_numpy(v)


def loss_fn(c, ft):
  o = c.opts
  red = c.reduction
  T = lambda name: to_torch(o[name], c.dtype, ft) if name in o else None
  L = c.loss
  if L == "mse":
    return lambda x, t: F.mse_loss(x, t, reduction=red)
  if L == "l1":
    return lambda x, t: F.l1_loss(x, t, reduction=red)
  if L == "rmse":
    eps = o.get("eps", 1e-7)
    return lambda x, t: torch.sqrt(F.mse_loss(x, t) + eps)
  if L == "huber":
    return lambda x, t: F.huber_loss(x, t, reduction=red, delta=o.get("delta", 1.0))
  if L == "smooth_l1":
    return lambda x, t: F.smooth_l1_loss(x, t, reduction=red, beta=o.get("beta", 1.0))
  if L == "cross_entropy":
    return lambda x, t: F.cross_entropy(x, t, weight=T("weight"),
                                        ignore_index=o.get("ignore_index", -100),
                                        reduction=red,
                                        label_smoothing=o.get("label_smoothing", 0.0))
  if L == "nll":
    return lambda x, t: F.nll_loss(x, t, weight=T("weight"),
                                   ignore_index=o.get("ignore_index", -100), reduction=red)
  if L == "bce":
    return lambda x, t: F.binary_cross_entropy(x, t, weight=T("weight"), reduction=red)
  if L == "bce_with_logits":
    return lambda x, t: F.binary_cross_entropy_with_logits(
        x, t, weight=T("weight"), reduction=red, pos_weight=T("pos_weight"))
  if L == "kl_div":
    return lambda x, t: F.kl_div(x, t, reduction=red, log_target=o.get("log_target", False))
  if L == "poisson_nll":
    return lambda x, t: F.poisson_nll_loss(x, t, log_input=o.get("log_input", True),
                                           full=o.get("full", False), eps=o.get("eps", 1e-8),
                                           reduction=red)
  if L == "gaussian_nll":
    return lambda x, t: F.gaussian_nll_loss(x, t, T("var"), full=o.get("full", False),
                                            eps=o.get("eps", 1e-6), reduction=red)
  if L == "soft_margin":
    return lambda x, t: F.soft_margin_loss(x, t, reduction=red)
  if L == "multilabel_soft_margin":
    return lambda x, t: F.multilabel_soft_margin_loss(x, t, weight=T("weight"), reduction=red)
  if L == "multi_margin":
    return lambda x, t: F.multi_margin_loss(x, t, p=o.get("p", 1), margin=o.get("margin", 1.0),
                                            weight=T("weight"), reduction=red)
  if L == "multilabel_margin":
    return lambda x, t: F.multilabel_margin_loss(x, t, reduction=red)
  if L == "hinge_embedding":
    return lambda x, t: F.hinge_embedding_loss(x, t, margin=o.get("margin", 1.0), reduction=red)
  if L == "margin_ranking":
    return lambda x, t: F.margin_ranking_loss(x, T("input2"), t, margin=o.get("margin", 0.0),
                                              reduction=red)
  if L == "cosine_embedding":
    return lambda x, t: F.cosine_embedding_loss(x, T("input2"), t,
                                                margin=o.get("margin", 0.0), reduction=red)
  if L == "triplet_margin":
    return lambda x, t: F.triplet_margin_loss(x, T("positive"), T("negative"),
                                              margin=o.get("margin", 1.0), p=o.get("p", 2.0),
                                              eps=o.get("eps", 1e-6), swap=o.get("swap", False),
                                              reduction=red)
  if L == "ctc":
    return lambda x, t: F.ctc_loss(x, t, T("input_lengths"), T("target_lengths"),
                                   blank=o.get("blank", 0), reduction=red,
                                   zero_infinity=o.get("zero_infinity", False))
  raise ValueError(L)


def run_torch(c, ft, go):
  x = to_torch(c.x, c.dtype, ft).clone().requires_grad_(c.compute_grad)
  t = to_torch(c.t, c.dtype, ft)
  value = loss_fn(c, ft)(x, t)
  grad = None
  if c.compute_grad:
    g = to_torch(go, c.dtype, ft) if go is not None else torch.ones_like(value)
    value.backward(g)
    grad = x.grad if x.grad is not None else torch.zeros_like(x)
    grad = grad.detach().to(torch.float64).numpy()
  return value.detach().to(torch.float64).numpy(), grad


def reference(c):
  """Fills c.ref and c.t32, or turns c into an error case where PyTorch raises."""
  if c.error:
    if c.want_go == "bad":
      c.go = Arr(c.r.uniform(0.5, 2.0, (2, 7)), c.dtype)  # no loss has this shape
    return
  if c.contract_empty and not c.error:
    c.tags.append("contract_empty_reduction")
    if c.want_go:
      c.go = Arr(np.array(c.r.uniform(0.25, 3.0)), c.go_dtype, raw=c.raw, set_dtype=True)
    loss = np.array(np.nan if c.reduction == "mean" else 0.0)
    c.ref = (loss, np.zeros(c.x.shape) if c.compute_grad else None)
    return
  try:
    # The forward alone first: it sizes an explicit grad_output.
    with torch.no_grad():
      loss_shape = run_torch(_nograd(c), torch.float64, None)[0].shape
    if c.want_go:
      r = c.r
      if c.reduction == "none":
        go = r.uniform(-2.0, 2.0, loss_shape)
      else:
        go = np.array(r.uniform(0.25, 3.0) * pick(r, (1.0, 1.0, -1.0)))
      c.go = Arr(go, c.go_dtype, raw=c.raw if chance(r, 0.85) else not c.raw,
                 set_dtype=chance(r, 0.5))
    c.ref = run_torch(c, torch.float64, c.go)
  except (RuntimeError, ValueError, IndexError) as e:
    c.error = f"PyTorch raises: {str(e).splitlines()[0][:120]}"
    c.tags.append("torch_raises")
    c.go = None
    return
  if c.dtype == "float32":
    try:
      c.t32 = run_torch(c, torch.float32, c.go)
    except (RuntimeError, ValueError, IndexError):
      c.t32 = None


def _nograd(c):
  import copy
  d = copy.copy(c)
  d.compute_grad = False
  return d


# ----------------------------------------------------------------------------
# Requests and responses

def fill_tensor(msg, a):
  msg.shape.extend(int(d) for d in a.shape)
  flat = a.values.reshape(-1)
  enum = getattr(pb, "DATA_TYPE_" + a.dtype.upper())
  if a.raw and flat.size:
    msg.dtype = enum
    msg.raw_data = flat.astype(LE[a.dtype]).tobytes()
    return
  if a.set_dtype or flat.size == 0 or a.raw:
    msg.dtype = enum
  field = {"float32": msg.float_values, "float64": msg.double_values,
           "int64": msg.int64_values, "int32": msg.int32_values}[a.dtype]
  field.extend(flat.tolist())


def build_request(c):
  req = pb.EvaluateRequest()
  fill_tensor(req.input, c.x)
  if c.t is not None:
    fill_tensor(req.target, c.t)
  req.reduction = getattr(pb, "REDUCTION_" + c.wire_reduction)
  req.compute_grad = c.compute_grad
  if c.go is not None:
    fill_tensor(req.grad_output, c.go)
  req.request_id = f"parity/{c.id}"
  opts = getattr(req, c.loss)
  opts.SetInParent()
  for k, v in c.opts.items():
    if isinstance(v, Arr):
      fill_tensor(getattr(opts, k), v)
    else:
      setattr(opts, k, v)
  if c.mutate:
    c.mutate(req)
  return req


def decode(t, want_dtype, want_raw):
  """(values float64 array of t's shape, problem or None). want_raw None: an
  empty input, whose encoding the wire cannot tell (no raw_data bytes and no
  typed values look the same): either encoding is accepted."""
  shape = tuple(t.shape)
  n = int(np.prod(shape)) if shape else 1
  fields = [f for f, v in (("float_values", t.float_values), ("double_values", t.double_values),
                           ("int64_values", t.int64_values), ("int32_values", t.int32_values),
                           ("raw_data", t.raw_data)) if len(v)]
  dtype = pb.DataType.Name(t.dtype)
  if dtype != "DATA_TYPE_" + want_dtype.upper():
    return None, f"dtype {dtype}, expected {want_dtype}"
  if n == 0:
    if fields:
      return None, f"empty shape {shape} but {fields} set"
    return np.zeros(shape), None
  typed_field = "float_values" if want_dtype == "float32" else "double_values"
  want_field = "raw_data" if want_raw else typed_field
  if want_raw is None and fields in (["raw_data"], [typed_field]):
    want_field = fields[0]
  if fields != [want_field]:
    return None, f"values in {fields or 'no field'}, expected {want_field}"
  if want_field == "raw_data":
    if len(t.raw_data) != n * np.dtype(LE[want_dtype]).itemsize:
      return None, f"raw_data of {len(t.raw_data)} bytes for shape {shape}"
    vals = np.frombuffer(t.raw_data, dtype=LE[want_dtype]).astype(np.float64)
  else:
    vals = np.array(list(getattr(t, want_field)), dtype=np.float64)
    if vals.size != n:
      return None, f"{vals.size} values for shape {shape}"
  return vals.reshape(shape), None


def compare(ours, ref, t32, dtype):
  """Element-wise check. Returns (ok, max_abs, max_rel, max_ratio, bad_index)."""
  atol, rtol = TOL[dtype]
  ours = ours.reshape(-1)
  ref = ref.reshape(-1)
  with np.errstate(over="ignore", invalid="ignore"):
    ref_c = ref.astype(NP[dtype]).astype(np.float64)
  nan_ref = np.isnan(ref_c)
  inf_ref = np.isinf(ref_c)
  fin = ~(nan_ref | inf_ref)
  with np.errstate(invalid="ignore", over="ignore"):
    err = np.abs(ours - ref)
    tol = atol + rtol * np.abs(ref)
    ok = np.where(nan_ref, np.isnan(ours), False)
    ok |= inf_ref & (ours == ref_c)
    ok_fin = fin & np.isfinite(ours) & (err <= tol)
    if t32 is not None:
      t32 = t32.reshape(-1)
      ok_fin |= fin & np.isfinite(ours) & (err <= np.abs(t32 - ref) + tol)
      # As wrong as PyTorch float32 itself, non-finite where ref64 is finite.
      same = (ours == t32) | (np.isnan(ours) & np.isnan(t32))
      ok_fin |= fin & ~np.isfinite(ours) & same
    ok |= ok_fin
  good = fin & np.isfinite(ours)
  max_abs = float(err[good].max()) if good.any() else 0.0
  nz = good & (np.abs(ref) >= atol / rtol)  # where the relative tolerance dominates
  max_rel = float((err[nz] / np.abs(ref[nz])).max()) if nz.any() else 0.0
  max_ratio = float((err[good] / tol[good]).max()) if good.any() else 0.0
  bad = np.nonzero(~ok)[0]
  return bad.size == 0, max_abs, max_rel, max_ratio, (int(bad[0]) if bad.size else None)


class Result:
  def __init__(self, c):
    self.case = c
    self.ok = True
    self.problems = []
    self.stats = {}   # "loss"/"grad" -> (max_abs, max_rel, max_ratio)
    self.unimplemented = False
    # float32 reduced loss: (|ours - ref64|, |torch32 - ref64|, input elements)
    self.sum_errors = None

  def fail(self, msg):
    self.ok = False
    self.problems.append(msg)


def fmt_vals(a, limit=8):
  a = np.asarray(a, dtype=np.float64).reshape(-1)
  s = ", ".join(repr(float(v)) for v in a[:limit])
  return f"[{s}{', ...' if a.size > limit else ''}] ({a.size})"


def check(c, resp, rpc_error):
  res = Result(c)
  if c.error:
    if rpc_error is None:
      vals, problem = decode(resp.loss, c.dtype, c.raw)
      res.fail("expected INVALID_ARGUMENT, got OK with loss " +
               (problem if problem else fmt_vals(vals)))
    elif rpc_error[0] != "INVALID_ARGUMENT":
      res.fail(f"expected INVALID_ARGUMENT, got {rpc_error[0]}: {rpc_error[1]}")
    return res
  if rpc_error is not None:
    res.fail(f"expected OK, got {rpc_error[0]}: {rpc_error[1]}")
    return res
  if resp.request_id != f"parity/{c.id}":
    res.fail(f"request_id {resp.request_id!r} not echoed")
  ref_loss, ref_grad = c.ref
  t32_loss, t32_grad = c.t32 if c.t32 is not None else (None, None)
  parts = [("loss", resp.loss, ref_loss, t32_loss, True)]
  parts.append(("grad", resp.grad, ref_grad, t32_grad, c.compute_grad))
  for name, t, ref, t32, wanted in parts:
    present = resp.HasField(name)
    if not wanted:
      if present:
        res.fail(f"{name} returned without compute_grad")
      continue
    if not present:
      res.fail(f"no {name} in the response")
      continue
    if tuple(t.shape) != tuple(ref.shape):
      res.fail(f"{name} shape {tuple(t.shape)}, expected {tuple(ref.shape)}")
      continue
    vals, problem = decode(t, c.dtype, c.raw if c.x.values.size else None)
    if problem:
      res.fail(f"{name}: {problem}")
      continue
    ok, max_abs, max_rel, max_ratio, bad = compare(vals, ref, t32, c.dtype)
    res.stats[name] = (max_abs, max_rel, max_ratio)
    if (name == "loss" and c.dtype == "float32" and t32 is not None and ref.shape == ()
        and c.reduction != "none"):
      o, r64, p32 = (float(np.asarray(v, np.float64).reshape(-1)[0]) for v in (vals, ref, t32))
      if all(np.isfinite(v) for v in (o, r64, p32)):
        res.sum_errors = (abs(o - r64), abs(p32 - r64), int(c.x.values.size),
                          float(np.spacing(np.float32(abs(r64)))))
    if not ok:
      r64 = ref.reshape(-1)
      msg = (f"{name}[{np.unravel_index(bad, ref.shape) if ref.shape else ()}]: ours "
             f"{vals.reshape(-1)[bad]!r} vs ref64 {r64[bad]!r}")
      if t32 is not None:
        msg += f" (torch float32 {t32.reshape(-1)[bad]!r})"
      msg += f"\n      ours  {fmt_vals(vals)}\n      ref64 {fmt_vals(ref)}"
      res.fail(msg)
  return res


# ----------------------------------------------------------------------------
# Running

def run_cases(stub, cases, concurrency, timeout):
  import grpc
  results = [None] * len(cases)
  pending = collections.deque()

  def finish(i, fut):
    try:
      resp, err = fut.result(), None
    except grpc.RpcError as e:
      resp, err = None, (e.code().name, e.details())
    results[i] = check(cases[i], resp, err)
    results[i].unimplemented = err is not None and err[0] == "UNIMPLEMENTED"

  for i, c in enumerate(cases):
    if c.skip:
      continue
    while len(pending) >= concurrency:
      finish(*pending.popleft())
    pending.append((i, stub.Evaluate.future(build_request(c), timeout=timeout)))
  while pending:
    finish(*pending.popleft())
  return results


def case_counts(total):
  base, extra = divmod(total, len(LOSSES))
  return {loss: base + (1 if i < extra else 0) for i, loss in enumerate(LOSSES)}


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                               formatter_class=argparse.RawDescriptionHelpFormatter,
                               epilog="\n".join(__doc__.split("\n")[2:]))
  ap.add_argument("--server", help="path of loss_server to start (on --address)")
  ap.add_argument("--address", help="server HOST:PORT (default with --server: 127.0.0.1:0)")
  ap.add_argument("--seed", type=int, default=0)
  ap.add_argument("--cases", type=int, default=2400, help="total over all 21 losses")
  ap.add_argument("--only", help="LOSS[,LOSS]: run only these losses' cases")
  ap.add_argument("--case", action="append", default=[],
                  help="LOSS#INDEX: run only this case (repeatable)")
  ap.add_argument("--concurrency", type=int, default=4, help="calls in flight")
  ap.add_argument("--timeout", type=float, default=30.0, help="seconds per call")
  ap.add_argument("--server-timeout", type=float, default=20.0,
                  help="seconds to wait for the started server to listen")
  ap.add_argument("--failures", type=int, default=10, help="failures printed in detail")
  ap.add_argument("--proto-root", default=os.path.join(ROOT, "proto"))
  ap.add_argument("--verbose", "-v", action="store_true",
                  help="every case's description; failures with the request as text")
  args = ap.parse_args()
  if not args.server and not args.address:
    ap.error("give --server PATH (started here) or --address HOST:PORT (already running)")

  # SIGTERM unwinds like Ctrl-C, so the started server is stopped.
  signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
  torch.set_num_threads(1)
  warnings.simplefilter("ignore")
  load_stubs(args.proto_root)
  import grpc
  from google.protobuf import text_format

  selected = list(LOSSES)
  if args.only:
    selected = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in selected if s not in LOSSES]
    if unknown:
      ap.error(f"unknown loss {unknown}; losses: {', '.join(LOSSES)}")
  counts = case_counts(args.cases)
  wanted = None
  if args.case:
    wanted = set()
    for spec in args.case:
      m = re.fullmatch(r"(\w+)#(\d+)", spec)
      if not m or m.group(1) not in LOSSES:
        ap.error(f"--case {spec}: expected LOSS#INDEX")
      wanted.add((m.group(1), int(m.group(2))))
    selected = sorted({l for l, _ in wanted}, key=LOSSES.index)

  start = time.monotonic()
  cases = []
  for loss in selected:
    indices = range(counts[loss]) if wanted is None else sorted(i for l, i in wanted if l == loss)
    for i in indices:
      c = make_case(loss, i, args.seed)
      if not c.skip:
        reference(c)
      cases.append(c)
  t_ref = time.monotonic() - start

  server = None
  if args.server:
    server = Server(args.server, args.address or "127.0.0.1:0", args.server_timeout)
    address = server.address
  else:
    address = args.address
  channel = grpc.insecure_channel(address, options=[
      ("grpc.max_receive_message_length", 256 << 20),
      ("grpc.max_send_message_length", 256 << 20)])
  try:
    grpc.channel_ready_future(channel).result(timeout=args.server_timeout)
  except grpc.FutureTimeoutError:
    sys.exit(f"parity: no server reachable at {address}")
  stub = pb_grpc.LossServiceStub(channel)
  try:
    results = run_cases(stub, cases, args.concurrency, args.timeout)
  finally:
    channel.close()
    if server:
      server.stop()
  elapsed = time.monotonic() - start

  # ---- report
  rows = collections.OrderedDict((l, {"cases": 0, "passed": 0, "failed": 0, "errors": 0,
                                      "skipped": 0, "unimpl": 0, "loss": [0.0, 0.0, 0.0],
                                      "grad": [0.0, 0.0, 0.0]}) for l in selected)
  failures = []
  for c, res in zip(cases, results):
    row = rows[c.loss]
    if res is None:
      row["skipped"] += 1
      if args.verbose:
        print(f"skip {c.describe()}: {c.skip}")
      continue
    row["cases"] += 1
    row["errors"] += bool(c.error)
    row["passed" if res.ok else "failed"] += 1
    for k, (a, rel, ratio) in res.stats.items():
      row[k] = [max(row[k][0], a), max(row[k][1], rel), max(row[k][2], ratio)]
    if not res.ok:
      failures.append(res)
      row["unimpl"] += res.unimplemented
    if args.verbose:
      print(f"{'ok  ' if res.ok else 'FAIL'} {c.describe()}")

  # Failures of losses the server says it lacks (UNIMPLEMENTED) are listed
  # last and only summed up.
  real = [res for res in failures if not res.unimplemented]
  unimpl = collections.Counter(res.case.loss for res in failures if res.unimplemented)
  if real:
    print(f"\nfirst {min(len(real), args.failures)} of {len(real)} failures:")
    for res in real[:args.failures]:
      c = res.case
      print(f"\n* {c.describe()}")
      for p in res.problems:
        print(f"    {p}")
      req = text_format.MessageToString(build_request(c), as_one_line=True)
      if args.verbose or len(req) <= 600:
        print(f"    request: {req}")
      else:
        print(f"    request: {req[:600]} ... ({len(req)} chars; --verbose for all)")
      print(f"    rerun: tools/parity.py ... --seed {args.seed} --case '{c.id}' --verbose")
  if unimpl:
    print("\nanswered UNIMPLEMENTED (failed): " +
          ", ".join(f"{loss} {n}" for loss, n in unimpl.items()))

  print()
  hdr = (f"{'loss':24s} {'cases':>5s} {'pass':>5s} {'fail':>5s} {'unimp':>5s} {'err':>4s}"
         f" {'skip':>4s}"
         f" {'loss abs':>9s} {'loss rel':>9s} {'grad abs':>9s} {'grad rel':>9s} {'err/tol':>8s}")
  print(hdr)
  print("-" * len(hdr))
  tot = collections.Counter()
  for loss, row in rows.items():
    worst = max(row["loss"][2], row["grad"][2])
    print(f"{loss:24s} {row['cases']:5d} {row['passed']:5d} {row['failed']:5d} "
          f"{row['unimpl']:5d} {row['errors']:4d} {row['skipped']:4d} {row['loss'][0]:9.2e} {row['loss'][1]:9.2e} "
          f"{row['grad'][0]:9.2e} {row['grad'][1]:9.2e} {worst:8.3f}")
    for k in ("cases", "passed", "failed", "unimpl", "errors", "skipped"):
      tot[k] += row[k]
  print("-" * len(hdr))
  print(f"{'total':24s} {tot['cases']:5d} {tot['passed']:5d} {tot['failed']:5d} "
        f"{tot['unimpl']:5d} {tot['errors']:4d} {tot['skipped']:4d}")
  print("(unimp: failed with UNIMPLEMENTED; err: expected-INVALID_ARGUMENT cases (all "
        "counted in cases);\n skip: no reference (PyTorch's result undefined); abs/rel: largest error against the float64 "
        "reference;\n err/tol: largest error over its tolerance, above 1 only where PyTorch "
        "float32 is as far off)")
  # float32 reductions: ours against PyTorch's float32, both against float64.
  sums = [res.sum_errors for res in results if res is not None and res.sum_errors]
  if sums:
    for label, keep in (("all", lambda n: True), ("inputs of 1000+ elements", lambda n: n >= 1000)):
      sel = [(o, t, u) for o, t, n, u in sums if keep(n)]
      if not sel:
        continue
      as_close = sum(1 for o, t, _ in sel if o <= t)
      within_ulp = sum(1 for o, t, u in sel if o <= t + u)
      print(f"float32 reduced losses, {label}: ours at least as close to float64 as PyTorch "
            f"float32 in {as_close} of {len(sel)} cases ({within_ulp} within one float32 ULP "
            f"of it); summed |error| ours {sum(o for o, _, _ in sel):.3e}, PyTorch float32 "
            f"{sum(t for _, t, _ in sel):.3e}")
  print(f"seed {args.seed}, {elapsed:.1f} s ({t_ref:.1f} s PyTorch references), "
        f"server {address}")
  print(f"parity: {tot['passed']} passed, {tot['failed']} failed")
  print(f"{tot['passed']} passed, {tot['failed']} failed")
  return 0 if tot["failed"] == 0 and tot["passed"] > 0 else 1


if __name__ == "__main__":
  sys.exit(main())
