"""Golden cases of the point-wise losses: huber, smooth_l1, kl_div, poisson_nll,
gaussian_nll, soft_margin, hinge_embedding, margin_ranking.

Loaded by tools/gen_golden.py. PyTorch 1.13 behaviours these cases pin down
(and core/pointwise.cc keeps):
  - smooth_l1 with beta = 0 has L1's loss but NOT L1's gradient: PyTorch's
    smooth_l1_loss_backward gives -1 at d = x - y = 0 and NaN at d = NaN.
  - kl_div is xlogy(y, y) - y x (gradient -y): a zero target adds 0, except
    that 0 * (-inf) input is still NaN; a negative target is NaN with
    gradient -y. batchmean divides by input.size(0), not at all for 0-d input,
    and gives NaN for an empty batch.
  - hinge_embedding is where(y != 1, max(0, margin - x), 0) + where(y != -1, x, 0):
    a target that is neither 1 nor -1 adds both terms.
  - clamp_min (hinge, ranking) passes the gradient at equality (v >= 0).
  - gaussian_nll's target may have the input's shape with a last dimension of
    1 (documented by torch.nn.GaussianNLLLoss); other broadcasts are refused.
  - margin_ranking is element-wise for same-shape inputs of any rank.
  - gaussian_nll's "one dimension short" var is the input's shape WITHOUT its
    last dimension (input (N, D): var (N), one variance per row); var (D),
    (1, D), (1) and () are refused for a 2-d input. A 0-d input with a (1)
    var has a (1) loss for reduction none.
  - poisson_nll's Stirling term is masked where target <= 1 (NaN is not).
  - soft_margin overflows exp(-y x) to an infinite loss and a NaN gradient.
"""

import sys
import warnings

import numpy as np
import torch.nn.functional as F

# kl_div's reduction 'mean' warns on every call; the cases mean it.
warnings.filterwarnings("ignore", message="reduction: 'mean' divides the total loss")

DTYPES = ("float32", "float64")
REDUCTIONS = ("mean", "sum", "none")
NAN, INF = float("nan"), float("inf")


def _huber(red, o, tof):
  return lambda x, t: F.huber_loss(x, t, reduction=red, delta=o.get("delta", 1.0))


def _smooth_l1(red, o, tof):
  return lambda x, t: F.smooth_l1_loss(x, t, reduction=red, beta=o.get("beta", 1.0))


def _kl_div(red, o, tof):
  return lambda x, t: F.kl_div(x, t, reduction=red, log_target=o.get("log_target", False))


def _poisson_nll(red, o, tof):
  return lambda x, t: F.poisson_nll_loss(x, t, log_input=o.get("log_input", True),
                                         full=o.get("full", False), eps=o.get("eps", 1e-8),
                                         reduction=red)


def _gaussian_nll(red, o, tof):
  return lambda x, t: F.gaussian_nll_loss(x, t, tof(o["var"]), full=o.get("full", False),
                                          eps=o.get("eps", 1e-6), reduction=red)


def _soft_margin(red, o, tof):
  return lambda x, t: F.soft_margin_loss(x, t, reduction=red)


def _hinge_embedding(red, o, tof):
  return lambda x, t: F.hinge_embedding_loss(x, t, margin=o.get("margin", 1.0), reduction=red)


def _margin_ranking(red, o, tof):
  return lambda x, t: F.margin_ranking_loss(x, tof(o["input2"]), t,
                                            margin=o.get("margin", 0.0), reduction=red)


LOSS_FNS = {
    "huber": _huber,
    "smooth_l1": _smooth_l1,
    "kl_div": _kl_div,
    "poisson_nll": _poisson_nll,
    "gaussian_nll": _gaussian_nll,
    "soft_margin": _soft_margin,
    "hinge_embedding": _hinge_embedding,
    "margin_ranking": _margin_ranking,
}


def _grad_output(r, loss_shape, red):
  if red == "none":
    return r.uniform(-2.0, 2.0, size=loss_shape)
  return np.array(r.uniform(0.25, 3.0))


def _softmax(a, axis=-1):
  e = np.exp(a - a.max(axis=axis, keepdims=True))
  return e / e.sum(axis=axis, keepdims=True)


def _pm1(r, shape):
  return np.where(r.uniform(size=shape) < 0.5, -1.0, 1.0)


# Per loss: make(r, shape) -> (x, t, options) for random data of `shape`.
def _make_huber(r, shape):
  return r.standard_normal(shape) * 1.5, r.standard_normal(shape), {}


def _make_kl(r, shape):
  x = np.log(_softmax(r.standard_normal(shape) * 1.5)) if shape else -abs(r.standard_normal())
  t = _softmax(r.standard_normal(shape)) if shape else np.array(r.uniform(0.1, 1.0))
  return np.asarray(x), t, {}


def _make_poisson(r, shape):
  return r.standard_normal(shape), r.poisson(2.0, size=shape).astype(float), {}


def _make_gaussian(r, shape):
  return (r.standard_normal(shape), r.standard_normal(shape),
          {"var": r.uniform(0.1, 2.0, size=shape)})


def _make_soft_margin(r, shape):
  return r.standard_normal(shape) * 2.0, _pm1(r, shape), {}


def _make_hinge(r, shape):
  return np.abs(r.standard_normal(shape)) * 1.5, _pm1(r, shape), {}


def _make_ranking(r, shape):
  return (r.standard_normal(shape), _pm1(r, shape),
          {"input2": r.standard_normal(shape), "margin": 0.25})


MAKERS = {
    "huber": _make_huber,
    "smooth_l1": _make_huber,
    "kl_div": _make_kl,
    "poisson_nll": _make_poisson,
    "gaussian_nll": _make_gaussian,
    "soft_margin": _make_soft_margin,
    "hinge_embedding": _make_hinge,
    "margin_ranking": _make_ranking,
}


def cases(g):
  _common_cases(g)
  _huber_smooth_l1_cases(g)
  _kl_div_cases(g)
  _poisson_cases(g)
  _gaussian_cases(g)
  _soft_margin_cases(g)
  _hinge_cases(g)
  _ranking_cases(g)
  _error_cases(g)


def _add(g, loss, variant, dtype, red, x, t, options=None, *, grad_output=None,
         compute_grad=True, tdtype=None):
  g.loss(f"{loss}/{variant}/{dtype}/{red}", loss, red, dtype, x, t, options=options,
         grad_output=grad_output, compute_grad=compute_grad, tdtype=tdtype)


def _reductions(loss):
  return REDUCTIONS + (("batchmean",) if loss == "kl_div" else ())


def _common_cases(g):
  """basic in every dtype and reduction; grad_output in every reduction; the
  shape edge cases."""
  for loss, make in MAKERS.items():
    vec_only = loss == "margin_ranking"
    shape = (6,) if vec_only else (4, 3)
    reds = _reductions(loss)
    for dtype in DTYPES:
      for red in reds:
        n = f"{loss}/basic/{dtype}/{red}"
        x, t, o = make(g.rng(n), shape)
        _add(g, loss, "basic", dtype, red, x, t, o)
    # grad_output: float64 in every reduction, float32 for none.
    for dtype, red in [("float64", red) for red in reds] + [("float32", "none")]:
      n = f"{loss}/grad_output/{dtype}/{red}"
      r = g.rng(n)
      x, t, o = make(r, shape)
      _add(g, loss, "grad_output", dtype, red, x, t, o, grad_output=_grad_output(r, shape, red))
    n = f"{loss}/nograd/float32/mean"
    x, t, o = make(g.rng(n), shape)
    _add(g, loss, "nograd", "float32", "mean", x, t, o, compute_grad=False)
    for dtype, red in (("float32", "none"), ("float64", "mean")):
      n = f"{loss}/one_element/{dtype}/{red}"
      x, t, o = make(g.rng(n), (1,))
      _add(g, loss, "one_element", dtype, red, x, t, o)
      n = f"{loss}/scalar/{dtype}/{red}"
      r = g.rng(n)
      if loss == "kl_div":
        x, t, o = np.array(-0.7), np.array(0.4), {}
      else:
        x, t, o = make(r, ())
      _add(g, loss, "scalar", dtype, red, x, t, o,
           grad_output=_grad_output(r, (), red) if red == "none" else None)
    if not vec_only:
      n = f"{loss}/batch_of_one/float64/sum"
      x, t, o = make(g.rng(n), (1, 5))
      _add(g, loss, "batch_of_one", "float64", "sum", x, t, o)
      n = f"{loss}/3d/float32/mean"
      x, t, o = make(g.rng(n), (2, 3, 2))
      _add(g, loss, "3d", "float32", "mean", x, t, o)
    # Empty inputs: mean over nothing is NaN, sum is 0.
    empty = np.zeros((0,) if vec_only else (0, 3))
    o = {"input2": empty} if vec_only else {}
    for dtype, red in (("float64", "mean"), ("float64", "sum"), ("float32", "none")):
      if loss == "gaussian_nll":
        o = {"var": np.ones((0,) if dtype == "float64" else (0, 1))}
      _add(g, loss, "empty", dtype, red, empty, empty, o)
    # Mixed floating dtypes: target (and option tensors) used in the input's dtype.
    n = f"{loss}/mixed_target_float64/float32/mean"
    x, t, o = make(g.rng(n), shape)
    _add(g, loss, "mixed_target_float64", "float32", "mean", x, t, o, tdtype="float64")


def _huber_smooth_l1_cases(g):
  # d = x - y exactly on and around the kinks (all values exact in float32).
  x = np.array([1.5, -0.5, 0.5, 2.0, -2.0, 0.25, 3.0, 0.0, -1.25, 0.75])
  t = np.array([0.5, 0.5, 0.5, 0.0, 0.0, 0.0, 0.5, 0.0, 0.0, 0.25])
  nonfinite_x = np.array([NAN, INF, -INF, 1.0, INF, 2.0])
  nonfinite_t = np.array([0.0, 0.0, 1.0, NAN, INF, -INF])
  for loss, opt, values in (("huber", "delta", (0.5, 2.0)), ("smooth_l1", "beta", (0.0, 0.5))):
    for v in values:
      for dtype, red in (("float64", "mean"), ("float64", "sum"), ("float64", "none"),
                         ("float32", "mean")):
        n = f"{loss}/{opt}{v}/{dtype}/{red}"
        r = g.rng(n)
        xs, ts = r.standard_normal((5, 4)) * 1.5, r.standard_normal((5, 4))
        _add(g, loss, f"{opt}{v}", dtype, red, xs, ts, {opt: v},
             grad_output=_grad_output(r, (5, 4), red) if red != "mean" else None)
      for dtype in DTYPES:
        _add(g, loss, f"kinks_{opt}{v}", dtype, "none", x, t, {opt: v})
    _add(g, loss, "kinks_default", "float32", "none", x, t)
    _add(g, loss, f"{opt}_explicit_default", "float64", "mean", x, t, {opt: 1.0})
    for dtype in DTYPES:
      _add(g, loss, "nonfinite", dtype, "none", nonfinite_x, nonfinite_t)
  # beta = 0 keeps PyTorch's smooth_l1 gradient (-1 at d = 0, NaN at NaN).
  _add(g, "smooth_l1", "nonfinite_beta0", "float64", "none", nonfinite_x, nonfinite_t,
       {"beta": 0.0})
  _add(g, "smooth_l1", "equal_beta0", "float32", "mean", x, x.copy(), {"beta": 0.0})
  _add(g, "huber", "large_delta", "float64", "none", x * 100, t, {"delta": 1e6})


def _kl_div_cases(g):
  for log_target in (False, True):
    tag = f"log_target_{str(log_target).lower()}"
    combos = [("float64", red) for red in _reductions("kl_div")] + [("float32", "batchmean")]
    for dtype, red in combos:
      n = f"kl_div/{tag}/{dtype}/{red}"
      r = g.rng(n)
      x = np.log(_softmax(r.standard_normal((3, 5))))
      t = _softmax(r.standard_normal((3, 5)))
      if log_target:
        t = np.log(t)
      _add(g, "kl_div", tag, dtype, red, x, t, {"log_target": log_target},
           grad_output=_grad_output(r, (3, 5), red) if red in ("none", "batchmean") else None)
  # Zero targets: xlogy(0, 0) = 0.
  r = g.rng("kl_div/zeros")
  x = np.log(_softmax(r.standard_normal((3, 4))))
  t = _softmax(r.standard_normal((3, 4)))
  t[0, 1] = t[1, 3] = t[2, 0] = 0.0
  t[2] /= t[2].sum()
  for dtype, red in (("float32", "none"), ("float64", "sum"), ("float64", "batchmean")):
    _add(g, "kl_div", "target_zeros", dtype, red, x, t)
  # Zero target with a -inf input is still NaN; negative targets are NaN.
  edge_x = np.array([-1.0, -2.0, 0.5, NAN, -1.0, -INF, -INF, 1.0, -0.5])
  edge_t = np.array([0.0, 0.3, -0.5, 0.2, NAN, 0.0, 0.4, INF, 1.0])
  edge_lt = np.array([0.0, -1.5, 0.5, -0.2, NAN, -INF, -0.3, INF, -INF])
  for dtype in DTYPES:
    _add(g, "kl_div", "edge_values", dtype, "none", edge_x, edge_t)
    _add(g, "kl_div", "edge_values_log_target", dtype, "none", edge_x, edge_lt,
         {"log_target": True})
  _add(g, "kl_div", "negative_target", "float64", "sum", np.array([-1.0, -0.5]),
       np.array([-0.25, 0.5]))
  # batchmean: 0-d (no division), (N) input, empty batch (NaN), empty inner
  # dimension (0), batch of one, 3-d.
  _add(g, "kl_div", "scalar", "float64", "batchmean", np.array(-0.7), np.array(0.4),
       grad_output=np.array(1.5))
  _add(g, "kl_div", "scalar", "float32", "batchmean", np.array(-1.25), np.array(0.5))
  r = g.rng("kl_div/batchmean_edges")
  _add(g, "kl_div", "vector", "float64", "batchmean", np.log(_softmax(r.standard_normal(6))),
       _softmax(r.standard_normal(6)))
  _add(g, "kl_div", "empty_batch", "float64", "batchmean", np.zeros((0, 3)), np.zeros((0, 3)))
  _add(g, "kl_div", "empty_inner", "float32", "batchmean", np.zeros((3, 0)), np.zeros((3, 0)))
  _add(g, "kl_div", "batch_of_one", "float32", "batchmean",
       np.log(_softmax(r.standard_normal((1, 5)))), _softmax(r.standard_normal((1, 5))))
  _add(g, "kl_div", "3d", "float64", "batchmean",
       np.log(_softmax(r.standard_normal((2, 3, 4)))), _softmax(r.standard_normal((2, 3, 4))),
       {"log_target": False})
  _add(g, "kl_div", "3d_nograd", "float32", "batchmean",
       np.log(_softmax(r.standard_normal((2, 3, 4)))), _softmax(r.standard_normal((2, 3, 4))),
       compute_grad=False)


def _poisson_cases(g):
  for log_input in (True, False):
    for full in (False, True):
      tag = f"log_input_{str(log_input).lower()}_full_{str(full).lower()}"
      combos = [("float64", "none"), ("float64", "sum"), ("float32", "none")]
      if full:
        combos.append(("float64", "mean"))
      for dtype, red in combos:
        n = f"poisson_nll/{tag}/{dtype}/{red}"
        r = g.rng(n)
        t = r.poisson(2.5, size=(4, 5)).astype(float)
        t[0, :4] = [0.0, 1.0, 2.0, 1.5]  # around the Stirling mask
        x = r.standard_normal((4, 5)) if log_input else r.uniform(0.05, 4.0, size=(4, 5))
        _add(g, "poisson_nll", tag, dtype, red, x, t, {"log_input": log_input, "full": full},
             grad_output=_grad_output(r, (4, 5), red) if red == "none" else None)
  # eps matters only without log_input; rates of 0 make it visible.
  x = np.array([0.0, 0.0, 0.5, 1e-3, 2.0, 0.0])
  t = np.array([0.0, 3.0, 1.0, 2.0, 4.0, 1.0])
  for dtype in DTYPES:
    _add(g, "poisson_nll", "eps1e-3", dtype, "none", x, t, {"log_input": False, "eps": 1e-3})
  _add(g, "poisson_nll", "eps0.5", "float64", "none", x, t, {"log_input": False, "eps": 0.5})
  _add(g, "poisson_nll", "eps_default_zero_rate", "float64", "none", x, t, {"log_input": False})
  _add(g, "poisson_nll", "eps_ignored_log_input", "float32", "sum", x, t, {"eps": 0.5})
  _add(g, "poisson_nll", "eps0_positive_rates", "float64", "mean", x + 0.25, t,
       {"log_input": False, "eps": 0.0})
  # Non-finite and out-of-domain values are data.
  ex = np.array([0.5, -1.0, -INF, 1.0, 1.0, INF, NAN, 3.0])
  et = np.array([0.0, 1.0, 0.0, -1.0, NAN, 2.0, 1.0, INF])
  rates = np.array([0.5, -1.0, INF, 1.0, 1.0, INF, NAN, 3.0])
  for full in (False, True):
    tag = str(full).lower()
    _add(g, "poisson_nll", f"nonfinite_full_{tag}", "float64", "none", ex, et, {"full": full})
    _add(g, "poisson_nll", f"nonfinite_rates_full_{tag}", "float32", "none", rates, et,
         {"log_input": False, "full": full})


def _gaussian_cases(g):
  def add(variant, dtype, red, shape, var_shape, *, full=None, eps=None, go=False,
          var=None):
    n = f"gaussian_nll/{variant}/{dtype}/{red}"
    r = g.rng(n)
    x, t = r.standard_normal(shape), r.standard_normal(shape)
    o = {"var": r.uniform(0.1, 2.0, size=var_shape) if var is None else var}
    if full is not None:
      o["full"] = full
    if eps is not None:
      o["eps"] = eps
    loss_shape = shape if shape else var_shape
    _add(g, "gaussian_nll", variant, dtype, red, x, t, o,
         grad_output=_grad_output(r, loss_shape, red) if go else None)

  # The three shapes var may have, for 2-d and 3-d inputs.
  for dtype, red in (("float64", "mean"), ("float64", "sum"), ("float64", "none"),
                     ("float32", "none")):
    go = red != "mean"
    add("var_short", dtype, red, (4, 3), (4,), go=go)
    add("var_last1", dtype, red, (4, 3), (4, 1), go=go)
    add("var_3d_short", dtype, red, (2, 3, 4), (2, 3))
    add("var_3d_last1", dtype, red, (2, 3, 4), (2, 3, 1), go=go)
  for dtype, red in (("float64", "mean"), ("float32", "sum"), ("float64", "none")):
    add("full", dtype, red, (4, 3), (4, 3), full=True)
  add("full_var_short", "float64", "sum", (4, 3), (4,), full=True, go=True)
  add("full_false_explicit", "float32", "mean", (4, 3), (4, 3), full=False)
  for dtype in DTYPES:
    # Square input: a (N) var is per row, not per column.
    add("var_short_square", dtype, "none", (3, 3), (3,))
    # 1-d and 0-d inputs: () or (1) var; 0-d with (1) var has a (1) loss.
    add("1d_var_scalar", dtype, "none", (5,), (), go=True)
    add("0d_var_1", dtype, "none", (), (1,), go=True)
  add("var_n1_input", "float64", "none", (3, 1), (3,))
  add("1d_var_1", "float32", "mean", (5,), (1,))
  add("1d_var_same", "float64", "sum", (5,), (5,))
  add("0d_var_scalar", "float64", "none", (), ())
  add("0d_var_1", "float64", "mean", (), (1,))
  # Small and zero variances meet the eps clamp.
  small = np.array([[0.0, 1e-9, 5e-7], [1e-6, 2e-6, 1e-3], [0.5, 0.0, 1.0]])
  for dtype in DTYPES:
    add("var_clamped", dtype, "none", (3, 3), (3, 3), var=small)
  add("var_clamped_eps1e-3", "float64", "none", (3, 3), (3, 3), var=small, eps=1e-3)
  add("eps0.25_full", "float32", "sum", (3, 3), (3, 3), var=small, eps=0.25, full=True)
  add("var_zero_eps0", "float64", "none", (3, 3), (3, 3), var=small, eps=0.0)
  nx = np.array([NAN, INF, 1.0, 1.0, -INF, 2.0])
  nt = np.array([0.0, 0.0, NAN, 1.0, 1.0, 2.0])
  nv = np.array([1.0, 1.0, 1.0, NAN, 1.0, INF])
  for dtype in DTYPES:
    _add(g, "gaussian_nll", "nonfinite", dtype, "none", nx, nt, {"var": nv})
  add("var_float32_input_float64", "float64", "none", (4, 3), (4,),
      var=_stored(g, g.rng("gaussian_nll/mixed_var").uniform(0.1, 2.0, size=4), "float32"))

  # The target may have the input's shape with a last dimension of 1, as
  # torch.nn.GaussianNLLLoss documents (broadcast along that dimension).
  def add_target_last1(variant, dtype, red, shape, var_shape, go=False):
    r = g.rng(f"gaussian_nll/{variant}/{dtype}/{red}")
    x = r.standard_normal(shape)
    t = r.standard_normal(shape[:-1] + (1,))
    _add(g, "gaussian_nll", variant, dtype, red, x, t, {"var": r.uniform(0.1, 2.0, size=var_shape)},
         grad_output=_grad_output(r, shape, red) if go else None)

  for dtype, red in (("float64", "mean"), ("float64", "sum"), ("float64", "none"),
                     ("float32", "mean"), ("float32", "none")):
    add_target_last1("target_last1", dtype, red, (4, 3), (4, 3), go=red != "mean")
  add_target_last1("target_last1_var_short", "float64", "none", (4, 3), (4,), go=True)
  add_target_last1("target_last1_var_last1", "float32", "sum", (4, 3), (4, 1), go=True)
  add_target_last1("target_last1_3d", "float64", "mean", (2, 3, 4), (2, 3, 4))
  add_target_last1("target_last1_1d", "float32", "none", (5,), (5,), go=True)


def _soft_margin_cases(g):
  # exp(-y x) overflows in float64 at x = -800: inf loss, NaN gradient.
  x = np.array([-800.0, 800.0, -100.0, 100.0, 0.0, NAN, INF, -INF, 30.0, -30.0])
  t = np.array([1.0, 1.0, 1.0, -1.0, -1.0, 1.0, 1.0, 1.0, -1.0, -1.0])
  for dtype in DTYPES:
    _add(g, "soft_margin", "extremes", dtype, "none", x, t)
  _add(g, "soft_margin", "large_finite", "float32", "mean", x[2:5], t[2:5])
  r = g.rng("soft_margin/other_targets")
  _add(g, "soft_margin", "other_targets", "float64", "none", r.standard_normal(6) * 2,
       np.array([0.0, 0.5, 2.0, -3.0, 1.0, -0.25]))


def _hinge_cases(g):
  for margin, dtype, red in ((0.5, "float64", "none"), (2.0, "float32", "sum"),
                             (0.0, "float64", "mean"), (-1.0, "float32", "none")):
    n = f"hinge_embedding/margin{margin}/{dtype}/{red}"
    r = g.rng(n)
    _add(g, "hinge_embedding", f"margin{margin}", dtype, red,
         np.abs(r.standard_normal((4, 3))) * 1.5, _pm1(r, (4, 3)), {"margin": margin},
         grad_output=_grad_output(r, (4, 3), red))
  # Targets that are neither 1 nor -1 add both terms; x == margin passes the
  # clamp's gradient.
  x = np.array([0.5, 0.5, 0.5, 0.5, 0.5, 1.0, 1.0, 2.0, NAN, NAN, INF, -3.0, 1.5, -0.5])
  t = np.array([1.0, -1.0, 0.0, 2.0, 0.5, -1.0, 0.0, -1.0, 1.0, -1.0, -1.0, 1.0, NAN, -2.0])
  for dtype in DTYPES:
    _add(g, "hinge_embedding", "other_targets", dtype, "none", x, t)
  _add(g, "hinge_embedding", "other_targets_margin1.5", "float64", "mean", x, t,
       {"margin": 1.5})
  _add(g, "hinge_embedding", "margin_explicit_default", "float32", "sum", x[:8], t[:8],
       {"margin": 1.0})


def _ranking_cases(g):
  for margin in (0.0, 1.0, -0.5):
    for dtype, red in (("float64", "mean"), ("float64", "sum"), ("float64", "none"),
                       ("float32", "none")):
      n = f"margin_ranking/margin{margin}/{dtype}/{red}"
      r = g.rng(n)
      _add(g, "margin_ranking", f"margin{margin}", dtype, red, r.standard_normal(7),
           _pm1(r, 7), {"input2": r.standard_normal(7), "margin": margin},
           grad_output=_grad_output(r, (7,), red) if red == "none" else None)
  # Ties and the clamp's edge (v == 0 passes the gradient), NaN, other
  # targets, and the default margin (no margin option).
  x1 = np.array([0.5, 0.5, 1.0, 2.0, NAN, 0.3, 0.0, INF])
  x2 = np.array([0.5, 1.0, 0.0, 1.0, 0.0, 0.1, 0.0, 1.0])
  t = np.array([1.0, -1.0, 1.0, 1.0, 1.0, 0.5, 0.0, -1.0])
  for dtype in DTYPES:
    _add(g, "margin_ranking", "edges_default_margin", dtype, "none", x1, t, {"input2": x2})
  _add(g, "margin_ranking", "edges_margin1", "float64", "none", x1, t,
       {"input2": x2, "margin": 1.0})
  _add(g, "margin_ranking", "edges_margin1", "float32", "sum", x1[:4], t[:4],
       {"input2": x2[:4], "margin": 1.0})
  _add(g, "margin_ranking", "input2_float32", "float64", "none", np.array([0.1, -0.2, 0.3]),
       np.array([1.0, -1.0, 1.0]),
       {"input2": _stored(g, np.array([0.5, 0.25, -0.5]), "float32")})
  # Same-shape inputs of any rank, element-wise as in PyTorch.
  for shape, dtype, red in (((4, 3), "float64", "none"), ((4, 3), "float32", "mean"),
                            ((4, 3), "float64", "sum"), ((2, 3, 2), "float64", "none"),
                            ((2, 3, 2), "float32", "sum"), ((1, 5), "float32", "none")):
    variant = f"{len(shape)}d" if shape != (1, 5) else "batch_of_one"
    r = g.rng(f"margin_ranking/{variant}/{dtype}/{red}")
    _add(g, "margin_ranking", variant, dtype, red, r.standard_normal(shape), _pm1(r, shape),
         {"input2": r.standard_normal(shape), "margin": 0.25},
         grad_output=_grad_output(r, shape, red))


def _stored(g, values, dtype):
  """A tensor with its own storage dtype, as the generator's Stored class."""
  return sys.modules[type(g).__module__].Stored(values, dtype)


def _error_cases(g):
  r = g.rng("pointwise/errors")
  x23 = r.standard_normal((2, 3))
  t23 = r.standard_normal((2, 3))

  def e(loss, variant, dtype, red, x, t, **kw):
    g.error(f"{loss}/error_{variant}/{dtype}/{red}", loss, red, dtype, x, t, **kw)

  # huber / smooth_l1 options (PyTorch: RuntimeError).
  e("huber", "delta0", "float32", "mean", x23, t23, options={"delta": 0.0})
  e("huber", "delta_negative", "float64", "sum", x23, t23, options={"delta": -1.0})
  e("smooth_l1", "beta_negative", "float32", "mean", x23, t23, options={"beta": -0.5})
  e("smooth_l1", "beta_negative", "float64", "none", x23, t23, options={"beta": -1e-9})
  for loss in LOSS_FNS:
    if loss == "margin_ranking":
      continue
    opts = {"var": np.ones((2, 3))} if loss == "gaussian_nll" else {}
    # Shapes are never broadcast.
    e(loss, "target_shape_mismatch", "float32", "mean", x23, r.standard_normal((3, 2)),
      options=opts)
    # batchmean is kl_div's only.
    if loss != "kl_div":
      e(loss, "reduction_batchmean", "float64", "batchmean", x23, t23, options=opts)
  e("margin_ranking", "reduction_batchmean", "float32", "batchmean", x23[0], t23[0],
    options={"input2": x23[1]})
  for loss in ("huber", "kl_div", "soft_margin", "hinge_embedding"):
    e(loss, "target_n_vs_n1", "float64", "none", r.standard_normal((4, 1)),
      r.standard_normal(4))
  for loss in ("smooth_l1", "poisson_nll"):
    e(loss, "integer_target", "float32", "sum", x23, np.ones((2, 3), dtype=np.int64),
      tdtype="int64")
  e("kl_div", "no_target", "float32", "mean", x23, None)
  e("hinge_embedding", "grad_output_shape", "float32", "sum", x23, np.ones((2, 3)),
    grad_output=np.ones((2, 3)))
  # gaussian_nll: var shapes PyTorch refuses, negative var, missing var.
  g43 = r.standard_normal((4, 3))
  for vshape, tag, dtype in (((3,), "var_last_dim_only", "float32"),
                             ((1, 3), "var_1c", "float64"), ((1,), "var_1", "float32"),
                             ((), "var_scalar_2d", "float64"),
                             ((4, 3, 1), "var_extra_dim", "float32"),
                             ((2,), "var_wrong_length", "float64"),
                             ((4, 2), "var_wrong_last", "float32")):
    e("gaussian_nll", tag, dtype, "mean", g43, g43 + 0.5, options={"var": np.ones(vshape)})
  e("gaussian_nll", "var_n1_for_1d", "float64", "mean", g43[0], g43[1],
    options={"var": np.ones((3, 1))})
  neg = np.ones((4, 3))
  neg[2, 1] = -0.5
  e("gaussian_nll", "var_negative", "float32", "mean", g43, g43 + 0.5, options={"var": neg})
  e("gaussian_nll", "var_negative_short", "float64", "none", g43, g43 + 0.5,
    options={"var": np.array([1.0, 2.0, -1e-3, 1.0])})
  e("gaussian_nll", "var_missing", "float32", "mean", g43, g43 + 0.5)
  e("gaussian_nll", "grad_output_shape", "float64", "none", g43, g43 + 0.5,
    options={"var": np.ones(4)}, grad_output=np.ones(4))
  # margin_ranking: input2 and target of the input's shape, (N) or () only.
  x6 = r.standard_normal(6)
  e("margin_ranking", "input2_shape_mismatch", "float32", "mean", x6, _pm1(r, 6),
    options={"input2": r.standard_normal(5)})
  e("margin_ranking", "input2_n1", "float64", "sum", x6, _pm1(r, 6),
    options={"input2": r.standard_normal((6, 1))})
  e("margin_ranking", "input2_missing", "float32", "mean", x6, _pm1(r, 6))
  e("margin_ranking", "target_shape_mismatch", "float64", "none", x6, _pm1(r, 5),
    options={"input2": r.standard_normal(6)})
  # Same rank and shape for all three (PyTorch refuses other ranks; we never
  # broadcast).
  e("margin_ranking", "target_other_rank", "float32", "mean", x23, np.ones(6),
    options={"input2": t23})
  e("margin_ranking", "input2_other_rank", "float64", "sum", x23, np.ones((2, 3)),
    options={"input2": t23.reshape(6)})
  # gaussian_nll's target broadcasts along its last dimension only.
  e("gaussian_nll", "target_first_dim_1", "float32", "mean", g43, g43[:1] + 0.5,
    options={"var": np.ones((4, 3))})
  e("gaussian_nll", "target_last_dim_short", "float64", "none", g43, g43[:, :2],
    options={"var": np.ones((4, 3))})
