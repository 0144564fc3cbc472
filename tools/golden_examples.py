"""Examples of every loss and activation, for the client libraries.

Loaded by tools/gen_golden.py, which writes them to tests/golden/examples.json.
`loss_client examples` and the Python and Node client tests replay each one
through their typed calls and compare with the value PyTorch computed here.

Each loss has two examples: "<loss>" with PyTorch's defaults, and
"<loss>/options" that sets every option the loss takes (and a reduction other
than mean), so that every argument of every client method is exercised. An
example is written in the terms of torch.nn.functional, not of the proto:

  {"name": "cross_entropy/options", "kind": "loss", "loss": "cross_entropy",
   "function": "cross_entropy",            # the torch.nn.functional name
   "required": ["input", "target"],        # positional arguments, in order
   "args": {"input": TENSOR, "target": TENSOR, "weight": TENSOR,
            "ignore_index": 2, "label_smoothing": 0.1, "reduction": "sum"},
   "grad": true, "grad_output": TENSOR (optional),
   "expected_loss": TENSOR, "expected_grad": TENSOR,
   "tolerance": {"atol": 1e-06, "rtol": 1e-05}}

An activation example has "kind": "activation", "activation" (sigmoid,
softmax, log_softmax, logit), the function (torch.sigmoid, F.softmax, ...),
its args and "expected_output". Tensors are {"dtype", "shape", "values"} as in
core_cases.json. The gradient is d(loss)/d(first required argument).

References are computed in float64 from exactly the stored (float32-rounded)
values, like the golden cases; a result matches when
|got - ref| <= atol + rtol |ref| elementwise (the golden tolerance of the
input's dtype).
"""

import zlib

import numpy as np
import torch
import torch.nn.functional as F

TOLERANCE = {"float32": {"atol": 1e-6, "rtol": 1e-5},
             "float64": {"atol": 1e-12, "rtol": 1e-10}}
NP_DTYPE = {"float32": np.float32, "float64": np.float64, "int64": np.int64,
            "int32": np.int32}


def _rng(name):
  return np.random.RandomState(zlib.crc32(("example/" + name).encode()) & 0x7FFFFFFF)


class _T:
  """A stored tensor: values rounded to their dtype once, at creation."""

  def __init__(self, values, dtype):
    self.dtype = dtype
    self.values = np.asarray(values).astype(NP_DTYPE[dtype])

  def torch64(self):
    if self.dtype in ("int64", "int32"):
      return torch.from_numpy(self.values.astype(np.int64))
    return torch.from_numpy(self.values.astype(np.float64))


def _rmse_loss(input, target, eps=1e-7):
  return torch.sqrt(F.mse_loss(input, target) + eps)


# loss (the EvaluateRequest oneof name) -> (torch function name, callable,
# required arguments in order).
LOSSES = {
    "mse": ("mse_loss", F.mse_loss, ("input", "target")),
    "l1": ("l1_loss", F.l1_loss, ("input", "target")),
    "rmse": ("rmse_loss", _rmse_loss, ("input", "target")),
    "huber": ("huber_loss", F.huber_loss, ("input", "target")),
    "smooth_l1": ("smooth_l1_loss", F.smooth_l1_loss, ("input", "target")),
    "cross_entropy": ("cross_entropy", F.cross_entropy, ("input", "target")),
    "nll": ("nll_loss", F.nll_loss, ("input", "target")),
    "bce": ("binary_cross_entropy", F.binary_cross_entropy, ("input", "target")),
    "bce_with_logits": ("binary_cross_entropy_with_logits",
                        F.binary_cross_entropy_with_logits, ("input", "target")),
    "kl_div": ("kl_div", F.kl_div, ("input", "target")),
    "poisson_nll": ("poisson_nll_loss", F.poisson_nll_loss, ("input", "target")),
    "gaussian_nll": ("gaussian_nll_loss", F.gaussian_nll_loss, ("input", "target", "var")),
    "soft_margin": ("soft_margin_loss", F.soft_margin_loss, ("input", "target")),
    "multilabel_soft_margin": ("multilabel_soft_margin_loss", F.multilabel_soft_margin_loss,
                               ("input", "target")),
    "multi_margin": ("multi_margin_loss", F.multi_margin_loss, ("input", "target")),
    "multilabel_margin": ("multilabel_margin_loss", F.multilabel_margin_loss,
                          ("input", "target")),
    "hinge_embedding": ("hinge_embedding_loss", F.hinge_embedding_loss, ("input", "target")),
    "margin_ranking": ("margin_ranking_loss", F.margin_ranking_loss,
                       ("input1", "input2", "target")),
    "cosine_embedding": ("cosine_embedding_loss", F.cosine_embedding_loss,
                         ("input1", "input2", "target")),
    "triplet_margin": ("triplet_margin_loss", F.triplet_margin_loss,
                       ("anchor", "positive", "negative")),
    "ctc": ("ctc_loss", F.ctc_loss, ("log_probs", "targets", "input_lengths",
                                     "target_lengths")),
}

ACTIVATIONS = {
    "sigmoid": ("sigmoid", lambda input: torch.sigmoid(input)),
    "softmax": ("softmax", lambda input, dim=-1: F.softmax(input, dim=dim)),
    "log_softmax": ("log_softmax", lambda input, dim=-1: F.log_softmax(input, dim=dim)),
    "logit": ("logit", lambda input, eps=None: torch.logit(input, eps=eps)),
}


def _f32(a):
  return _T(a, "float32")


def _i64(a):
  return _T(a, "int64")


def _pm1(r, shape):
  return np.where(r.uniform(size=shape) < 0.5, -1.0, 1.0)


def _softmax(a, axis):
  e = np.exp(a - a.max(axis=axis, keepdims=True))
  return e / e.sum(axis=axis, keepdims=True)


def _loss_args(loss, variant, r):
  """The arguments of one example: {name: _T or option value}."""
  n = r.standard_normal
  opt = variant == "options"
  if loss in ("mse", "l1", "rmse", "huber", "smooth_l1"):
    a = {"input": _f32(n((2, 3))), "target": _f32(n((2, 3)))}
    if opt:
      a.update({"mse": {"reduction": "sum"},
                "l1": {"reduction": "none"},
                "rmse": {"eps": 1e-3},
                "huber": {"delta": 0.5, "reduction": "sum"},
                "smooth_l1": {"beta": 0.5, "reduction": "none"}}[loss])
    if opt and loss == "mse":  # a float64 example: Float64Array, double
      a = {k: (_T(v.values, "float64") if isinstance(v, _T) else v) for k, v in a.items()}
    return a
  if loss == "cross_entropy":
    if not opt:
      return {"input": _f32(n((3, 4))), "target": _i64([1, 0, 3])}
    return {"input": _f32(n((4, 4))), "target": _i64([1, 2, 3, 0]),
            "weight": _f32(r.uniform(0.5, 2.0, 4)), "ignore_index": 2,
            "label_smoothing": 0.1, "reduction": "sum"}
  if loss == "nll":
    x = F.log_softmax(torch.from_numpy(n((4, 3))), dim=1).numpy()
    if not opt:
      return {"input": _f32(x), "target": _i64([0, 2, 1, 1])}
    return {"input": _f32(x), "target": _T([0, 2, 1, 1], "int32"),
            "weight": _f32([1.0, 1.0, 2.0]), "ignore_index": 1, "reduction": "none"}
  if loss == "bce":
    a = {"input": _f32(1 / (1 + np.exp(-n((3, 2))))), "target": _f32(r.randint(0, 2, (3, 2)))}
    if opt:
      a.update({"weight": _f32(r.uniform(0.5, 2.0, 2)), "reduction": "sum"})
    return a
  if loss == "bce_with_logits":
    a = {"input": _f32(2 * n((3, 2))), "target": _f32(r.randint(0, 2, (3, 2)))}
    if opt:
      a.update({"weight": _f32(r.uniform(0.5, 2.0, (3, 1))),
                "pos_weight": _f32(r.uniform(0.5, 3.0, 2)), "reduction": "sum"})
    return a
  if loss == "kl_div":
    x = np.log(_softmax(n((2, 3)), 1))
    t = _softmax(n((2, 3)), 1)
    if not opt:
      return {"input": _f32(x), "target": _f32(t)}
    return {"input": _f32(x), "target": _f32(np.log(t)), "log_target": True,
            "reduction": "batchmean"}
  if loss == "poisson_nll":
    t = _f32(r.poisson(2.0, (2, 3)))
    if not opt:
      return {"input": _f32(n((2, 3))), "target": t}
    return {"input": _f32(r.uniform(0.5, 3.0, (2, 3))), "target": t, "log_input": False,
            "full": True, "eps": 1e-4, "reduction": "sum"}
  if loss == "gaussian_nll":
    a = {"input": _f32(n((3, 2))), "target": _f32(n((3, 2)))}
    if not opt:
      a["var"] = _f32(r.uniform(0.5, 2.0, (3, 2)))
      return a
    a.update({"var": _f32(r.uniform(0.5, 2.0, (3,))), "full": True, "eps": 1e-3,
              "reduction": "sum"})
    return a
  if loss in ("soft_margin", "hinge_embedding"):
    a = {"input": _f32(n((2, 3))), "target": _f32(_pm1(r, (2, 3)))}
    if opt:
      a.update({"reduction": "none"} if loss == "soft_margin"
               else {"margin": 0.5, "reduction": "sum"})
    return a
  if loss == "multilabel_soft_margin":
    a = {"input": _f32(n((2, 3))), "target": _f32(r.randint(0, 2, (2, 3)))}
    if opt:
      a.update({"weight": _f32(r.uniform(0.5, 2.0, 3)), "reduction": "none"})
    return a
  if loss == "multi_margin":
    a = {"input": _f32(n((3, 4))), "target": _i64([3, 0, 1])}
    if opt:
      a.update({"p": 2, "margin": 0.5, "weight": _f32(r.uniform(0.5, 2.0, 4)),
                "reduction": "sum"})
    return a
  if loss == "multilabel_margin":
    a = {"input": _f32(n((2, 4))), "target": _i64([[3, 0, -1, 1], [1, 2, 0, -1]])}
    if opt:
      a["reduction"] = "none"
    return a
  if loss in ("margin_ranking", "cosine_embedding"):
    shape = (4,) if loss == "margin_ranking" else (3, 4)
    tshape = (4,) if loss == "margin_ranking" else (3,)
    a = {"input1": _f32(n(shape)), "input2": _f32(n(shape)), "target": _f32(_pm1(r, tshape))}
    if opt:
      a.update({"margin": 0.2 if loss == "margin_ranking" else 0.1, "reduction": "sum"})
    return a
  if loss == "triplet_margin":
    a = {"anchor": _f32(n((3, 4))), "positive": _f32(n((3, 4))), "negative": _f32(n((3, 4)))}
    if opt:
      a.update({"margin": 0.5, "p": 1.0, "eps": 1e-5, "swap": True, "reduction": "sum"})
    return a
  if loss == "ctc":
    t_len, batch, classes = 5, 2, 4
    lp = F.log_softmax(torch.from_numpy(n((t_len, batch, classes))), dim=2).numpy()
    if not opt:
      return {"log_probs": _f32(lp), "targets": _i64([[1, 2], [3, 0]]),
              "input_lengths": _i64([5, 4]), "target_lengths": _i64([2, 1])}
    # blank = 3: the labels are 0, 1, 2; a target longer than its input can
    # align to is infinite and zero_infinity makes it 0.
    return {"log_probs": _f32(lp), "targets": _i64([[0, 1, 1], [2, 0, 1]]),
            "input_lengths": _i64([5, 2]), "target_lengths": _i64([3, 3]), "blank": 3,
            "zero_infinity": True, "reduction": "sum"}
  raise ValueError(loss)


def _torch_args(args):
  return {k: (v.torch64() if isinstance(v, _T) else v) for k, v in args.items()}


def _encode_args(args, encode_tensor):
  return {k: (encode_tensor(v.values, v.dtype) if isinstance(v, _T) else v)
          for k, v in args.items()}


def _reference(t):
  return t.detach().to(torch.float64).numpy()


def examples(encode_tensor):
  """Every example, losses in EvaluateRequest field order, then activations.
  encode_tensor(array, dtype) writes a golden tensor."""
  out = []
  for loss, (function, fn, required) in LOSSES.items():
    for variant in ("default", "options"):
      name = loss if variant == "default" else f"{loss}/options"
      r = _rng(name)
      args = _loss_args(loss, variant, r)
      targs = _torch_args(args)
      first = required[0]
      x = targs[first].clone().requires_grad_(True)
      targs[first] = x
      value = fn(**targs)
      grad_output = None
      if value.dim() > 0:  # reduction none: a non-trivial upstream gradient
        grad_output = _T(r.uniform(-2.0, 2.0, tuple(value.shape)), args[first].dtype)
        value.backward(grad_output.torch64())
      else:
        value.backward()
      dtype = args[first].dtype
      ex = {"name": name, "kind": "loss", "loss": loss, "function": function,
            "required": list(required), "args": _encode_args(args, encode_tensor),
            "grad": True, "expected_loss": encode_tensor(_reference(value), "float64"),
            "expected_grad": encode_tensor(_reference(x.grad), "float64"),
            "tolerance": TOLERANCE[dtype]}
      if grad_output is not None:
        ex["grad_output"] = encode_tensor(grad_output.values, grad_output.dtype)
      out.append(ex)
  for activation, (function, fn) in ACTIVATIONS.items():
    for variant in ("default", "options"):
      if variant == "options" and activation == "sigmoid":
        continue  # sigmoid has no option
      name = activation if variant == "default" else f"{activation}/options"
      r = _rng(name)
      if activation == "logit":
        args = {"input": _f32(np.concatenate([r.uniform(0.01, 0.99, 5), [0.0, 1.0, 0.5]]))}
        if variant == "options":
          args["eps"] = 0.125
      else:
        args = {"input": _f32(2 * r.standard_normal((2, 3)))}
        if variant == "options" and activation != "sigmoid":
          args["dim"] = 0
      out.append({"name": name, "kind": "activation", "activation": activation,
                  "function": function, "required": ["input"],
                  "args": _encode_args(args, encode_tensor),
                  "expected_output": encode_tensor(_reference(fn(**_torch_args(args))),
                                                   "float64"),
                  "tolerance": TOLERANCE["float32"]})
  return out
