"""Golden cases of the margin and embedding losses: multilabel_soft_margin,
multi_margin, multilabel_margin, cosine_embedding, triplet_margin.

Loaded by tools/gen_golden.py. PyTorch 1.13 behaviours these cases pin down
(and core/margin.cc keeps):
  - multilabel_soft_margin takes any rank >= 1 (the last dimension holds the
    classes) and evaluates -(y logsigmoid(x) + (1 - y) logsigmoid(-x)) as
    written: x = +inf with y = 1 is 0 * -inf = NaN; C = 0 gives 0 / 0 = NaN.
  - multi_margin / multilabel_margin take (N, C), (C) and even () (one
    class); multi_margin's target is any shape of at most one dimension with
    one index per sample, and the unreduced loss has the target's shape ((C)
    with target (1) gives (1); (1, C) with target () gives ()). Only terms
    z > 0 count: a NaN score or margin adds nothing, a tie z = 0 has no
    gradient.
  - multilabel_margin checks EVERY target value against [-1, C), also those
    after the terminating -1 (which are otherwise ignored); -2 is an error,
    not a terminator; a label given twice counts twice.
  - multi_margin / multilabel_margin with mean or sum over an EMPTY batch
    return uninitialized memory in PyTorch 1.13; the reference here is the
    mean / sum of PyTorch's reduction='none' result (NaN / 0).
  - multi_margin accepts a weight shorter than C (and then reads past its
    end); the service requires exactly C.
  - cosine_embedding accepts integer targets; a target other than +1 / -1
    gives 0 (where()); the clamp passes gradient at cos == margin; zero
    vectors are finite thanks to EPSILON = 1e-12 inside the norms.
  - triplet_margin accepts any rank and any p (0: count of non-zeros with no
    gradient; negative; +-inf); an empty row has distance 0; with swap a tie
    d(a, n) == d(p, n) sends half the gradient to d(a, n) (torch.minimum);
    the clamp passes gradient at equality.
"""

import sys

import numpy as np
import torch.nn.functional as F

DTYPES = ("float32", "float64")
REDUCTIONS = ("mean", "sum", "none")
NAN, INF = float("nan"), float("inf")


def _num(v):
  """An option number; nonfinite ones are written as strings in the JSON."""
  return float(v)


def _reduce_empty(fn, reduction):
  """PyTorch 1.13's multi_margin / multilabel_margin return uninitialized
  memory for mean / sum over an empty batch: reduce the 'none' result then."""
  def f(x, t):
    if x.numel() == 0 and reduction != "none":
      per_sample = fn(x, t, "none")
      return per_sample.mean() if reduction == "mean" else per_sample.sum()
    return fn(x, t, reduction)
  return f


def _multilabel_soft_margin(red, o, tof):
  w = tof(o["weight"]) if "weight" in o else None
  return lambda x, t: F.multilabel_soft_margin_loss(x, t, weight=w, reduction=red)


def _multi_margin(red, o, tof):
  w = tof(o["weight"]) if "weight" in o else None
  p = int(o.get("p", 1))
  margin = _num(o.get("margin", 1.0))
  return _reduce_empty(lambda x, t, r: F.multi_margin_loss(x, t, p=p, margin=margin, weight=w,
                                                           reduction=r), red)


def _multilabel_margin(red, o, tof):
  return _reduce_empty(lambda x, t, r: F.multilabel_margin_loss(x, t, reduction=r), red)


def _cosine_embedding(red, o, tof):
  return lambda x, t: F.cosine_embedding_loss(x, tof(o["input2"]), t,
                                              margin=_num(o.get("margin", 0.0)), reduction=red)


def _triplet_margin(red, o, tof):
  def f(x, t):
    assert t is None
    return F.triplet_margin_loss(x, tof(o["positive"]), tof(o["negative"]),
                                 margin=_num(o.get("margin", 1.0)), p=_num(o.get("p", 2.0)),
                                 eps=_num(o.get("eps", 1e-6)), swap=o.get("swap", False),
                                 reduction=red)
  return f


LOSS_FNS = {
    "multilabel_soft_margin": _multilabel_soft_margin,
    "multi_margin": _multi_margin,
    "multilabel_margin": _multilabel_margin,
    "cosine_embedding": _cosine_embedding,
    "triplet_margin": _triplet_margin,
}


# ----------------------------------------------------------------------------
# Helpers

def randn(r, *shape):
  return r.standard_normal(shape)


def per_sample_shape(red, shape):
  """The loss shape of a row-wise loss for an input of `shape`."""
  return shape[:-1] if red == "none" else ()


def grad_output(r, red, loss_shape):
  if red == "none":
    return r.uniform(-2.0, 2.0, size=loss_shape)
  return np.array(r.uniform(0.25, 3.0))


def multilabel_targets(r, n, c):
  """Rows of labels ended by -1 (or full), with values after the -1."""
  t = np.full((n, c), -1, dtype=np.int64)
  for i in range(n):
    k = r.randint(0, c + 1)
    t[i, :k] = r.permutation(c)[:k]
    if k + 1 < c:
      t[i, k + 1:] = r.randint(-1, c, size=c - k - 1)  # after the -1: ignored
  return t


# ----------------------------------------------------------------------------
# Cases
#
# Each loss has a grid of variants over both dtypes and all reductions, then
# edge variants per dtype with the reduction that shows them best (the
# float64-only ones are pure arithmetic that float32 adds nothing to). Error
# cases alternate between the dtypes.

def multilabel_soft_margin_cases(g):
  L = "multilabel_soft_margin"
  for dtype in DTYPES:
    def add(variant, red, shape, *, weight=False, soft=False, go=False, compute_grad=True,
            scale=2.0):
      n = f"{L}/{variant}/{dtype}/{red}"
      r = g.rng(n)
      x = randn(r, *shape) * scale
      t = r.uniform(0, 1, size=shape) if soft else r.randint(0, 2, size=shape).astype(float)
      opts = {"weight": r.uniform(0.2, 2.0, size=shape[-1])} if weight else {}
      g.loss(n, L, red, dtype, x, t, options=opts, compute_grad=compute_grad,
             grad_output=grad_output(r, red, per_sample_shape(red, shape)) if go else None)

    for red in REDUCTIONS:
      add("basic", red, (4, 5))
      add("nograd", red, (3, 4), compute_grad=False)
      add("weight_grad_output", red, (3, 6), weight=True, go=True)
      g.loss(f"{L}/empty_batch/{dtype}/{red}", L, red, dtype, np.zeros((0, 3)), np.zeros((0, 3)),
             options={"weight": np.array([1.0, 2.0, 0.5])})
    add("soft_targets", "mean", (4, 5), soft=True, weight=True)
    add("unbatched", "none", (5,), go=True)
    add("unbatched", "sum", (5,), weight=True)
    add("batch_of_one", "mean", (1, 4), weight=True)
    add("3d", "none", (2, 3, 4), soft=True, go=True)
    add("large_logits", "sum", (3, 4), scale=40.0)
    r = g.rng(f"{L}/edges/{dtype}")
    g.loss(f"{L}/nonfinite/{dtype}/none", L, "none", dtype,
           np.array([[INF, -INF, 50.0], [INF, -INF, NAN], [-80.0, 80.0, 0.0]]),
           np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.5]]))
    g.loss(f"{L}/no_classes/{dtype}/none", L, "none", dtype, np.zeros((3, 0)), np.zeros((3, 0)))
    g.loss(f"{L}/no_classes/{dtype}/sum", L, "sum", dtype, np.zeros((2, 0)), np.zeros((2, 0)))
    g.loss(f"{L}/zero_weight/{dtype}/mean", L, "mean", dtype, randn(r, 3, 4),
           r.randint(0, 2, size=(3, 4)).astype(float),
           options={"weight": np.array([0.0, 1.0, 0.0, 2.0])})
  r = g.rng(f"{L}/mixed")
  g.loss(f"{L}/mixed_float64_target_weight/float32/mean", L, "mean", "float32", randn(r, 3, 4),
         Stored64(r.uniform(0, 1, size=(3, 4))),
         options={"weight": Stored64(np.array([0.5, 1.0, 1.5, 2.0]))})


def multi_margin_cases(g):
  L = "multi_margin"
  C = 5
  for dtype in DTYPES:
    def add(variant, red, n_or_none, *, p=None, margin=None, weight=False, go=False,
            compute_grad=True, tdtype="int64"):
      n = f"{L}/{variant}/{dtype}/{red}"
      r = g.rng(n)
      if n_or_none is None:
        x, t, loss_shape = randn(r, C), np.array(r.randint(0, C)), ()
      else:
        x = randn(r, n_or_none, C)
        t = r.randint(0, C, size=n_or_none)
        loss_shape = (n_or_none,)
      opts = {}
      if p is not None:
        opts["p"] = p
      if margin is not None:
        opts["margin"] = margin
      if weight:
        opts["weight"] = r.uniform(0.2, 2.0, size=C)
      g.loss(n, L, red, dtype, x, t, tdtype=tdtype, options=opts, compute_grad=compute_grad,
             grad_output=grad_output(r, red, loss_shape) if go else None)

    for red in REDUCTIONS:
      add("basic", red, 4)
      add("nograd", red, 3, compute_grad=False)
      add("p2_weight_grad_output", red, 4, p=2, weight=True, go=True)
      add("unbatched", red, None)
      g.loss(f"{L}/empty_batch/{dtype}/{red}", L, red, dtype, np.zeros((0, 3)), np.zeros((0,)),
             tdtype="int64")
    add("p2", "mean", 4, p=2)
    add("weight", "sum", 4, weight=True)
    add("margin_0.5", "none", 4, margin=0.5, p=1, go=True)
    add("int32_target", "mean", 3, tdtype="int32", weight=True)
    b = f"{L}/%s/{dtype}/%s"
    r = g.rng(f"{L}/edges/{dtype}")
    # Ties: margin - x_y + x_i == 0 exactly (no gradient), and z > 0 nearby.
    x = np.array([[1.0, 0.0, 2.0, 0.5], [0.5, 0.5, 0.5, 0.5], [2.0, 1.0, 1.0, -3.0]])
    t = np.array([2, 1, 0])
    g.loss(b % ("ties", "none"), L, "none", dtype, x, t, tdtype="int64")
    g.loss(b % ("ties_p2", "none"), L, "none", dtype, x, t, tdtype="int64", options={"p": 2})
    g.loss(b % ("margin_0_ties", "sum"), L, "sum", dtype, x, t, tdtype="int64",
           options={"margin": 0.0})
    g.loss(b % ("negative_margin", "mean"), L, "mean", dtype, randn(r, 4, 3),
           np.array([0, 1, 2, 0]), tdtype="int64", options={"margin": -0.5})
    g.loss(b % ("large_margin_p2", "none"), L, "none", dtype, randn(r, 3, 4), np.array([3, 1, 0]),
           tdtype="int64",
           options={"margin": 4.0, "p": 2, "weight": np.array([1.0, 0.5, 2.0, 3.0])})
    # Shapes PyTorch accepts: one index per sample, at most one dimension.
    g.loss(b % ("unbatched_target_1", "none"), L, "none", dtype, randn(r, 4), np.array([2]),
           tdtype="int64", grad_output=np.array([1.5]))
    g.loss(b % ("unbatched_target_1", "mean"), L, "mean", dtype, randn(r, 4), np.array([3]),
           tdtype="int32")
    g.loss(b % ("batch_of_one_scalar_target", "none"), L, "none", dtype, randn(r, 1, 4),
           np.array(1), tdtype="int64", grad_output=np.array(-0.75))
    g.loss(b % ("batch_of_one", "mean"), L, "mean", dtype, randn(r, 1, 4), np.array([0]),
           tdtype="int64", options={"p": 2})
    g.loss(b % ("one_class", "none"), L, "none", dtype, randn(r, 3, 1), np.array([0, 0, 0]),
           tdtype="int64")
    g.loss(b % ("scalar_input", "sum"), L, "sum", dtype, np.array(0.7), np.array(0),
           tdtype="int64")
    g.loss(b % ("nonfinite", "none"), L, "none", dtype,
           np.array([[NAN, 1.0, 2.0], [0.0, NAN, 2.0], [0.0, INF, 2.0], [-INF, 0.0, 1.0]]),
           np.array([1, 1, 0, 2]), tdtype="int64")
    g.loss(b % ("nan_margin", "sum"), L, "sum", dtype, randn(r, 2, 3), np.array([0, 2]),
           tdtype="int64", options={"margin": "nan"})
    g.loss(b % ("float32_weight", "sum"), L, "sum", dtype, randn(r, 3, 4), np.array([0, 3, 3]),
           tdtype="int64", options={"weight": Stored32(np.array([0.25, 1.0, 2.0, 0.5]))})


def multilabel_margin_cases(g):
  L = "multilabel_margin"
  C = 5
  for dtype in DTYPES:
    def add(variant, red, n_or_none, *, go=False, compute_grad=True, tdtype="int64", scale=1.0):
      n = f"{L}/{variant}/{dtype}/{red}"
      r = g.rng(n)
      if n_or_none is None:
        x, t, loss_shape = randn(r, C) * scale, multilabel_targets(r, 1, C)[0], ()
      else:
        x = randn(r, n_or_none, C) * scale
        t = multilabel_targets(r, n_or_none, C)
        loss_shape = (n_or_none,)
      g.loss(n, L, red, dtype, x, t, tdtype=tdtype, compute_grad=compute_grad,
             grad_output=grad_output(r, red, loss_shape) if go else None)

    for red in REDUCTIONS:
      add("basic", red, 4)
      add("nograd", red, 3, compute_grad=False)
      add("grad_output", red, 5, go=True)
      add("unbatched", red, None)
      g.loss(f"{L}/empty_batch/{dtype}/{red}", L, red, dtype, np.zeros((0, 3)), np.zeros((0, 3)),
             tdtype="int64")
    add("int32_target", "sum", 4, tdtype="int32")
    add("wide_scores", "mean", 4, scale=0.2)
    b = f"{L}/%s/{dtype}/%s"
    r = g.rng(f"{L}/edges/{dtype}")
    # Ties (1 - (x_j - x_i) == 0), a label given twice, a -1 first, values
    # after the -1, every class a label.
    x = np.array([[0.5, 1.5, 0.5, -1.0], [1.0, 0.0, 0.25, 0.0], [2.0, 1.0, 1.0, 1.0],
                  [0.1, -0.3, 0.7, 0.2]])
    t = np.array([[1, 3, -1, 1], [0, 0, -1, 3], [-1, 0, 1, 2], [3, 2, 1, 0]])
    g.loss(b % ("ties_duplicates_terminator", "none"), L, "none", dtype, x, t, tdtype="int64")
    g.loss(b % ("ties_duplicates_terminator", "sum"), L, "sum", dtype, x, t, tdtype="int64")
    t_ignored = np.array([[2, -1, 3, 3], [1, -1, -1, -1], [3, 3, 3, 3], [0, -1, 0, 1]])
    g.loss(b % ("after_terminator_ignored", "none"), L, "none", dtype, randn(r, 4, 4), t_ignored,
           tdtype="int64", grad_output=r.uniform(-2, 2, size=4))
    g.loss(b % ("unbatched_int32", "sum"), L, "sum", dtype, randn(r, 4), np.array([3, 0, -1, 2]),
           tdtype="int32", grad_output=np.array(2.5))
    g.loss(b % ("batch_of_one", "mean"), L, "mean", dtype, randn(r, 1, 6),
           np.array([[5, 1, -1, 0, 0, 0]]), tdtype="int64")
    g.loss(b % ("one_class", "none"), L, "none", dtype, randn(r, 2, 1), np.array([[0], [-1]]),
           tdtype="int64")
    g.loss(b % ("scalar_input", "mean"), L, "mean", dtype, np.array(-0.3), np.array(0),
           tdtype="int64")
    g.loss(b % ("nonfinite", "none"), L, "none", dtype,
           np.array([[NAN, 1.0, 2.0], [0.0, INF, 2.0], [-INF, 0.0, 1.0]]),
           np.array([[1, -1, 0], [0, -1, 2], [0, 2, -1]]), tdtype="int64")


def cosine_embedding_cases(g):
  L = "cosine_embedding"
  D = 6
  for dtype in DTYPES:
    def add(variant, red, n_or_none, *, margin=None, go=False, compute_grad=True, tdtype=None):
      n = f"{L}/{variant}/{dtype}/{red}"
      r = g.rng(n)
      if n_or_none is None:
        shape, loss_shape = (D,), ()
        t = np.array(1.0 if r.randint(0, 2) else -1.0)
      else:
        shape, loss_shape = (n_or_none, D), (n_or_none,)
        t = np.where(r.randint(0, 2, size=n_or_none) == 1, 1.0, -1.0)
      x1 = randn(r, *shape)
      x2 = x1 * 0.5 + randn(r, *shape) * 0.8  # a spread of cosines
      opts = {"input2": x2}
      if margin is not None:
        opts["margin"] = margin
      g.loss(n, L, red, dtype, x1, t, tdtype=tdtype, options=opts, compute_grad=compute_grad,
             grad_output=grad_output(r, red, loss_shape) if go else None)

    for red in REDUCTIONS:
      add("basic", red, 5)
      add("nograd", red, 4, compute_grad=False)
      add("margin_negative_grad_output", red, 4, margin=-0.5, go=True)
      add("unbatched", red, None)
      g.loss(f"{L}/empty_batch/{dtype}/{red}", L, red, dtype, np.zeros((0, 3)), np.zeros((0,)),
             options={"input2": np.zeros((0, 3))})
    add("margin_0.3", "mean", 6, margin=0.3)
    add("int64_target", "none", 4, tdtype="int64", go=True)
    b = f"{L}/%s/{dtype}/%s"
    r = g.rng(f"{L}/edges/{dtype}")
    # Target values other than +1 / -1 give 0.
    g.loss(b % ("other_target_values", "none"), L, "none", dtype, randn(r, 5, 3),
           np.array([1.0, 0.0, 2.0, -1.0, 0.5]), options={"input2": randn(r, 5, 3)},
           grad_output=r.uniform(0.5, 2, size=5))
    g.loss(b % ("int32_target_other_values", "sum"), L, "sum", dtype, randn(r, 4, 3),
           np.array([1, -1, 0, 3]), tdtype="int32",
           options={"input2": randn(r, 4, 3), "margin": 0.1})
    # Zero vectors: finite through EPSILON; a huge gradient for x1 = 0.
    x1 = np.array([[0.0, 0.0, 0.0], [1.0, -2.0, 0.5], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    x2 = np.array([[1.0, 2.0, -1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.5, 0.5, 0.5]])
    g.loss(b % ("zero_vectors", "none"), L, "none", dtype, x1, np.array([1.0, -1.0, 1.0, -1.0]),
           options={"input2": x2, "margin": -0.25})
    # Parallel and antiparallel; ties cos == margin (the gradient passes).
    x1 = np.array([[1.0, 2.0], [1.0, 2.0], [0.0, 1.0], [3.0, 0.0]])
    x2 = np.array([[2.0, 4.0], [-1.0, -2.0], [1.0, 0.0], [0.0, 2.0]])
    g.loss(b % ("parallel_and_ties", "none"), L, "none", dtype, x1,
           np.array([1.0, -1.0, -1.0, -1.0]), options={"input2": x2})
    g.loss(b % ("parallel_and_ties", "sum"), L, "sum", dtype, x1,
           np.array([-1.0, 1.0, -1.0, -1.0]), options={"input2": x2, "margin": 0.0})
    g.loss(b % ("unbatched_negative", "none"), L, "none", dtype, randn(r, 4), np.array(-1.0),
           options={"input2": randn(r, 4), "margin": -1.0}, grad_output=np.array(0.5))
    g.loss(b % ("batch_of_one", "mean"), L, "mean", dtype, randn(r, 1, 5), np.array([1.0]),
           options={"input2": randn(r, 1, 5)})
    g.loss(b % ("no_features", "none"), L, "none", dtype, np.zeros((3, 0)),
           np.array([1.0, -1.0, 1.0]), options={"input2": np.zeros((3, 0))})
    g.loss(b % ("large_dim", "mean"), L, "mean", dtype, randn(r, 3, 200),
           np.array([1.0, -1.0, -1.0]), options={"input2": randn(r, 3, 200), "margin": -0.05})
  r = g.rng(f"{L}/mixed")
  g.loss(f"{L}/mixed_input2_float64/float32/sum", L, "sum", "float32", randn(r, 3, 4),
         np.array([1.0, -1.0, 1.0]), options={"input2": Stored64(randn(r, 3, 4))})
  g.loss(f"{L}/mixed_float32_target_input2/float64/none", L, "none", "float64", randn(r, 3, 4),
         Stored32(np.array([1.0, -1.0, -1.0])), options={"input2": Stored32(randn(r, 3, 4))})


def triplet_margin_cases(g):
  L = "triplet_margin"
  D = 5
  for dtype in DTYPES:
    def add(variant, red, shape, *, go=False, compute_grad=True, **opts):
      n = f"{L}/{variant}/{dtype}/{red}"
      r = g.rng(n)
      a = randn(r, *shape)
      # Positives a little closer than negatives on average: a mix of active
      # and inactive samples.
      o = {"positive": a + randn(r, *shape) * 0.7, "negative": a + randn(r, *shape)}
      o.update(opts)
      g.loss(n, L, red, dtype, a, None, options=o, compute_grad=compute_grad,
             grad_output=grad_output(r, red, per_sample_shape(red, shape)) if go else None)

    for red in REDUCTIONS:
      add("basic", red, (6, D))
      add("nograd", red, (4, D), compute_grad=False)
      add("swap_grad_output", red, (8, D), swap=True, margin=1.5, go=True)
      add("unbatched", red, (D,), margin=2.0)
      g.loss(f"{L}/empty_batch/{dtype}/{red}", L, red, dtype, np.zeros((0, 3)), None,
             options={"positive": np.zeros((0, 3)), "negative": np.zeros((0, 3))})
    b = f"{L}/%s/{dtype}/%s"
    r = g.rng(f"{L}/edges/{dtype}")

    def edge(variant, red, a, pos, neg, go=None, **opts):
      o = {"positive": pos, "negative": neg}
      o.update(opts)
      g.loss(b % (variant, red), L, red, dtype, a, None, options=o, grad_output=go)

    def triple(*shape, neg_scale=1.0):
      a = randn(r, *shape)
      return a, a + randn(r, *shape) * 0.7, a + randn(r, *shape) * neg_scale

    # Clamp tie: margin + d(a, p) - d(a, n) == 0 exactly; the gradient passes.
    a = np.array([[0.0, 0.0], [1.0, 1.0]])
    pos = np.array([[1.0, 0.0], [1.0, 2.0]])
    neg = np.array([[0.0, 1.0], [2.0, 1.0]])
    edge("clamp_tie", "sum", a, pos, neg, eps=0.0, margin=0.0)
    edge("clamp_tie_p1", "none", a, pos, neg, eps=0.0, margin=0.0, p=1.0)
    # Swap ties: positive == anchor makes d(a, n) == d(p, n): half the
    # gradient reaches d(a, n).
    a = randn(r, 3, 4)
    neg = a + randn(r, 3, 4)
    pos = a.copy()
    pos[2] += 0.5  # one sample without the tie
    edge("swap_tie", "none", a, pos, neg, swap=True, margin=5.0)
    edge("swap_tie_eps0", "sum", a, pos, neg, swap=True, margin=5.0, eps=0.0)
    # Shapes: any rank, the last dimension holds the features.
    edge("scalar_anchor", "none", np.array(0.3), np.array(-0.4), np.array(1.2), margin=2.0)
    edge("3d", "none", *triple(2, 3, 4), go=r.uniform(-1, 1, size=(2, 3)))
    edge("3d_swap", "mean", *triple(2, 3, 4), swap=True)
    edge("batch_of_one", "mean", *triple(1, 6), margin=3.0)
    edge("no_features", "none", np.zeros((3, 0)), np.zeros((3, 0)), np.zeros((3, 0)))
    edge("no_features_pinf", "sum", np.zeros((2, 0)), np.zeros((2, 0)), np.zeros((2, 0)),
         p="inf", margin=0.5)
    edge("negative_margin", "none", *triple(4, 3), margin=-1.0)
    edge("nonfinite", "none", np.array([[NAN, 0.0], [INF, 0.0], [1.0, 2.0]]),
         np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 2.0]]),
         np.array([[0.0, 1.0], [0.0, 1.0], [-INF, 0.0]]))
    if dtype != "float64":
      continue
    # Options and norms: arithmetic that float32 adds nothing to.
    edge("margin_2", "sum", *triple(5, 4), margin=2.0)
    edge("p1", "mean", *triple(6, 4), p=1.0, margin=0.5)
    edge("p3", "none", *triple(5, 4), p=3.0, go=r.uniform(-2, 2, size=5))
    for p in (0.0, 0.5, 1.5, "inf", "-inf", -1.0):
      edge(f"p{p}", "none", *triple(5, 4), p=p, margin=1.5)
    edge("p4_swap", "sum", *triple(5, 4, neg_scale=2.0), p=4.0, swap=True, margin=3.0)
    edge("p1_swap", "mean", *triple(5, 4, neg_scale=2.0), p=1.0, swap=True, margin=3.0)
    edge("pinf_swap", "none", *triple(5, 4, neg_scale=2.0), p="inf", swap=True, margin=3.0)
    edge("eps_0", "none", *triple(4, 3), eps=0.0)
    edge("eps_1e-2_margin_0", "sum", *triple(4, 3), eps=1e-2, margin=0.0)
    edge("eps_negative", "mean", *triple(4, 3), eps=-0.5)
    # Exact zeros in a - p + eps (eps = 0 and a == p in some or all elements):
    # p >= 1 masks the gradient where the norm is 0, p < 1 at zero elements,
    # inf shares it between equal maxima, p = 0 has none.
    a = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0], [1.0, -1.0, 0.0], [2.0, 2.0, -2.0]])
    pos = np.array([[1.0, 2.0, 3.0], [0.5, 0.0, 2.0], [2.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    neg = np.array([[1.0, 0.0, 3.0], [2.0, 2.0, 2.0], [1.0, -1.0, 1.0], [1.0, 1.0, 1.0]])
    for p in (2.0, 1.5, 0.5, 1.0, "inf", 0.0, 3.0):
      edge(f"zero_differences_p{p}", "none", a, pos, neg, eps=0.0, margin=3.0, p=p,
           go=r.uniform(0.5, 2.0, size=4))
  r = g.rng(f"{L}/mixed")
  a = randn(r, 3, 4)
  g.loss(f"{L}/mixed_positive_float64/float32/mean", L, "mean", "float32", a, None,
         options={"positive": Stored64(a + randn(r, 3, 4) * 0.5),
                  "negative": Stored32(a + randn(r, 3, 4))})


def error_cases(g):
  r = g.rng("margin/errors")
  x = randn(r, 3, 4)
  count = [0]

  def E(loss, variant, red, x, t, **kw):
    dtype = DTYPES[count[0] % 2]
    count[0] += 1
    g.error(f"{loss}/error_{variant}/{dtype}/{red}", loss, red, dtype, x, t, **kw)

  L = "multi_margin"
  E(L, "target_out_of_range", "mean", x, np.array([0, 4, 1]), tdtype="int64")
  E(L, "target_negative", "sum", x, np.array([0, -1, 1]), tdtype="int32")
  E(L, "target_out_of_range_unbatched", "none", x[0], np.array(4), tdtype="int64")
  E(L, "target_out_of_range_scalar_input", "none", np.array(0.5), np.array(1), tdtype="int64")
  E(L, "p3", "mean", x, np.array([0, 1, 2]), tdtype="int64", options={"p": 3})
  E(L, "p0", "mean", x, np.array([0, 1, 2]), tdtype="int64", options={"p": 0})
  E(L, "weight_wrong_length", "mean", x, np.array([0, 1, 2]), tdtype="int64",
    options={"weight": np.ones(3)})
  E(L, "target_shape_mismatch", "none", x, np.array([0, 1]), tdtype="int64")
  E(L, "target_2d", "none", x, np.array([[0], [1], [2]]), tdtype="int64")
  E(L, "float_target", "mean", x, np.array([0.0, 1.0, 2.0]))
  E(L, "input_3d", "mean", randn(r, 2, 3, 4), np.array([0, 1]), tdtype="int64")
  E(L, "no_classes", "none", np.zeros((3, 0)), np.array([0, 0, 0]), tdtype="int64")
  E(L, "grad_output_shape", "none", x, np.array([0, 1, 2]), tdtype="int64",
    grad_output=np.ones(4))
  L = "multilabel_margin"
  E(L, "label_out_of_range", "mean", x, np.array([[0, 4, -1, 0], [1, -1, 0, 0], [2, -1, 0, 0]]),
    tdtype="int64")
  E(L, "label_minus_2", "sum", x, np.array([[0, -2, 1, 0], [1, -1, 0, 0], [2, -1, 0, 0]]),
    tdtype="int64")
  E(L, "out_of_range_after_terminator", "none", x,
    np.array([[0, -1, 7, 0], [1, -1, 0, 0], [2, -1, 0, 0]]), tdtype="int32")
  E(L, "minus_2_after_terminator", "none", x,
    np.array([[0, -1, -2, 0], [1, -1, 0, 0], [2, -1, 0, 0]]), tdtype="int64")
  E(L, "target_shape_mismatch", "mean", x, np.array([[0, -1, 0], [1, -1, 0], [2, -1, 0]]),
    tdtype="int64")
  E(L, "unbatched_target_2d", "mean", x[0], np.array([[0, 1, -1, 0]]), tdtype="int64")
  E(L, "batch_of_one_target_1d", "mean", x[:1], np.array([0, 1, -1, 0]), tdtype="int64")
  E(L, "float_target", "mean", x, np.zeros((3, 4)))
  E(L, "no_classes", "none", np.zeros((2, 0)), np.zeros((2, 0)), tdtype="int64")
  L = "multilabel_soft_margin"
  E(L, "target_shape_mismatch", "mean", x, np.zeros((3, 1)))
  E(L, "weight_wrong_length", "sum", x, np.zeros((3, 4)), options={"weight": np.ones(3)})
  E(L, "weight_2d", "sum", x, np.zeros((3, 4)), options={"weight": np.ones((3, 4))})
  E(L, "scalar_input", "mean", np.array(0.5), np.array(1.0))
  E(L, "int_target", "mean", x, np.zeros((3, 4)), tdtype="int64")
  E(L, "missing_target", "none", x, None)
  L = "cosine_embedding"
  t3 = np.array([1.0, -1.0, 1.0])
  E(L, "missing_input2", "mean", x, t3)
  E(L, "input2_shape_mismatch", "mean", x, t3, options={"input2": randn(r, 1, 4)})
  E(L, "input2_int", "mean", x, t3, options={"input2": Stored(np.ones((3, 4)), "int64")})
  E(L, "target_shape_mismatch", "none", x, np.array([1.0]), options={"input2": randn(r, 3, 4)})
  E(L, "scalar_target_for_batch", "none", x, np.array(1.0), options={"input2": randn(r, 3, 4)})
  E(L, "input_3d", "mean", randn(r, 1, 3, 4), np.array([[1.0] * 3]),
    options={"input2": randn(r, 1, 3, 4)})
  E(L, "scalar_input", "mean", np.array(1.0), np.array(1.0), options={"input2": np.array(1.0)})
  E(L, "missing_target", "mean", x, None, options={"input2": randn(r, 3, 4)})
  L = "triplet_margin"
  pn = {"positive": randn(r, 3, 4), "negative": randn(r, 3, 4)}
  E(L, "target_given", "mean", x, np.zeros(3), options=pn)
  E(L, "target_given_like_input", "none", x, np.zeros((3, 4)), options=pn)
  E(L, "missing_positive", "mean", x, None, options={"negative": randn(r, 3, 4)})
  E(L, "missing_negative", "sum", x, None, options={"positive": randn(r, 3, 4)})
  E(L, "positive_shape_mismatch", "none", x, None,
    options={"positive": randn(r, 3, 1), "negative": randn(r, 3, 4)})
  E(L, "negative_broadcastable", "mean", x, None,
    options={"positive": randn(r, 3, 4), "negative": randn(r, 1, 4)})
  E(L, "positive_unbatched", "mean", x, None,
    options={"positive": randn(r, 4), "negative": randn(r, 3, 4)})
  E(L, "grad_output_shape", "none", x, None, options=pn, grad_output=np.ones((3, 4)))


_GOLDEN = None  # the generator's module, set by cases()


def Stored(values, dtype):
  """A tensor with its own storage dtype (the generator's Stored class)."""
  return _GOLDEN.Stored(values, dtype)


def Stored32(values):
  return Stored(values, "float32")


def Stored64(values):
  return Stored(values, "float64")


def cases(g):
  global _GOLDEN
  _GOLDEN = sys.modules[type(g).__module__]
  multilabel_soft_margin_cases(g)
  multi_margin_cases(g)
  multilabel_margin_cases(g)
  cosine_embedding_cases(g)
  triplet_margin_cases(g)
  error_cases(g)
