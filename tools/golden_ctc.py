"""Golden cases of the ctc loss (torch.nn.CTCLoss), loaded by tools/gen_golden.py.

log_probs are log_softmax of random logits, (T, N, C) or unbatched (T, C).
Targets are class indices (int64, a few int32); input_lengths and
target_lengths are option tensors (int64 unless given as Stored int32).
"""

import sys

import numpy as np
import torch.nn.functional as F

from gen_golden import DTYPES, REDUCTIONS, log_softmax_np, loss_grad_output

# Stored must be the class of the running generator (gen_golden.py runs as
# __main__, so `from gen_golden import Stored` would be a second, different
# class that its isinstance checks do not recognise); set by cases(g).
Stored = None


def _ctc(reduction, opts, torch_of):
  def f(x, t):
    return F.ctc_loss(x, t, torch_of(opts["input_lengths"]), torch_of(opts["target_lengths"]),
                      blank=opts.get("blank", 0), reduction=reduction,
                      zero_infinity=opts.get("zero_infinity", False))
  return f


LOSS_FNS = {"ctc": _ctc}


def log_probs(rng, *shape, scale=1.5):
  return log_softmax_np(rng.standard_normal(shape) * scale, -1)


def labels(rng, c, n, blank=0):
  """n labels in [0, c) other than blank."""
  choices = [k for k in range(c) if k != blank]
  return np.array([choices[i] for i in rng.randint(0, len(choices), size=n)], dtype=np.int64)


def padded(rng, c, lengths, s, blank=0, pad=0):
  t = np.full((len(lengths), s), pad, dtype=np.int64)
  for b, n in enumerate(lengths):
    t[b, :n] = labels(rng, c, n, blank)
  return t


def concatenated(rng, c, lengths, blank=0):
  return labels(rng, c, int(sum(lengths)), blank)


def loss_shape(n, reduction, batched=True):
  if reduction != "none":
    return ()
  return (n,) if batched else ()


# Variants run for every dtype and reduction; the others for both dtypes and
# one reduction each, in rotation.
EVERY_REDUCTION = ("basic", "grad_output", "concatenated", "unbatched", "target_length_0",
                   "impossible", "impossible_zero_infinity", "int32")


def cases(g):
  global Stored
  Stored = sys.modules[type(g).__module__].Stored
  rotation = {}
  for dtype in DTYPES:
    for red in REDUCTIONS:
      base = f"ctc/%s/{dtype}/{red}"

      def add(variant, x, t, il, tl, *, tdtype="int64", go=False, compute_grad=True,
              batched=True, **opts):
        if variant not in EVERY_REDUCTION:
          k = rotation.setdefault(variant, len(rotation))
          if REDUCTIONS[k % len(REDUCTIONS)] != red:
            return
        n = base % variant
        options = {"input_lengths": il, "target_lengths": tl}
        options.update(opts)
        grad_output = None
        if go:
          grad_output = loss_grad_output(g.rng(n + "/go"), loss_shape(x.shape[1] if batched else 1,
                                                                        red, batched), red)
        g.loss(n, "ctc", red, dtype, x, t, tdtype=tdtype, options=options,
               compute_grad=compute_grad, grad_output=grad_output)

      # Padded targets, every input full length.
      r = g.rng(base % "basic")
      tl = [3, 2, 4]
      add("basic", log_probs(r, 8, 3, 5), padded(r, 5, tl, 4), [8, 8, 8], tl)
      r = g.rng(base % "nograd")
      tl = [2, 3]
      add("nograd", log_probs(r, 7, 2, 4), padded(r, 4, tl, 3), [7, 7], tl, compute_grad=False)
      r = g.rng(base % "grad_output")
      tl = [3, 1, 2]
      add("grad_output", log_probs(r, 6, 3, 4), padded(r, 4, tl, 3), [6, 5, 4], tl, go=True)
      # Concatenated targets; input lengths below T.
      r = g.rng(base % "concatenated")
      tl = [2, 4, 1, 3]
      add("concatenated", log_probs(r, 9, 4, 6), concatenated(r, 6, tl), [9, 6, 3, 7], tl)
      r = g.rng(base % "concatenated_grad_output")
      tl = [3, 2]
      add("concatenated_grad_output", log_probs(r, 8, 2, 5), concatenated(r, 5, tl), [5, 8], tl,
          go=True)
      # Padding holds values that are not labels (blank, -1, >= C): never read.
      r = g.rng(base % "input_lengths_below_t")
      tl = [2, 3, 1]
      t = padded(r, 5, tl, 5, pad=-1)
      t[2, 1] = 0
      t[0, 4] = 99
      add("input_lengths_below_t", log_probs(r, 10, 3, 5), t, [4, 7, 1], tl)
      # Unbatched (T, C): (S) concatenated with () lengths; (1, S) padded.
      r = g.rng(base % "unbatched")
      add("unbatched", log_probs(r, 7, 4), labels(r, 4, 3), np.array(7), np.array(3),
          batched=False)
      r = g.rng(base % "unbatched_grad_output")
      add("unbatched_grad_output", log_probs(r, 6, 5), labels(r, 5, 2), np.array(5),
          np.array(2), batched=False, go=True)
      r = g.rng(base % "unbatched_padded")
      t = np.zeros((1, 4), dtype=np.int64)
      t[0, :2] = labels(r, 5, 2)
      add("unbatched_padded", log_probs(r, 6, 5), t, np.array(6), np.array(2), batched=False)
      # Repeated labels need a blank between them: 1 1 2 2 needs 6 frames.
      r = g.rng(base % "repeated_labels")
      t = np.array([[1, 1, 2, 2], [3, 3, 3, 0]])
      add("repeated_labels", log_probs(r, 8, 2, 4), t, [6, 5], [4, 3])
      r = g.rng(base % "repeated_labels_tight")
      add("repeated_labels_tight", log_probs(r, 7, 1, 3), np.array([[1, 1, 1, 1]]), [7], [4])
      # Empty targets: mean divides by max(0, 1) = 1.
      r = g.rng(base % "target_length_0")
      tl = [0, 2, 0]
      add("target_length_0", log_probs(r, 5, 3, 4), padded(r, 4, tl, 2), [5, 4, 2], tl)
      r = g.rng(base % "target_length_0_concatenated")
      tl = [0, 3]
      add("target_length_0_concatenated", log_probs(r, 5, 2, 4), concatenated(r, 4, tl), [3, 5],
          tl, go=True)
      # Non-zero blank.
      r = g.rng(base % "blank_last")
      tl = [3, 2]
      add("blank_last", log_probs(r, 7, 2, 5), padded(r, 5, tl, 3, blank=4), [7, 6], tl,
          blank=4)
      r = g.rng(base % "blank_2_repeated")
      t = np.array([[1, 1, 3, 0], [0, 0, 4, 4]])
      add("blank_2_repeated", log_probs(r, 9, 2, 5), t, [9, 8], [4, 4], blank=2)
      # Impossible alignments: +inf loss, NaN gradient on t < input_length.
      r = g.rng(base % "impossible")
      t = np.array([[1, 1, 1], [1, 2, 3]])
      add("impossible", log_probs(r, 5, 2, 4), t, [4, 5], [3, 3])
      r = g.rng(base % "impossible_zero_infinity")
      add("impossible_zero_infinity", log_probs(r, 5, 2, 4), t, [4, 5], [3, 3],
          zero_infinity=True, go=True)
      r = g.rng(base % "too_long_zero_infinity")
      tl = [2, 6, 1]
      add("too_long_zero_infinity", log_probs(r, 5, 3, 6), concatenated(r, 6, tl), [5, 5, 3],
          tl, zero_infinity=True)
      r = g.rng(base % "zero_infinity_finite")
      tl = [2, 3]
      add("zero_infinity_finite", log_probs(r, 6, 2, 4), padded(r, 4, tl, 3), [6, 6], tl,
          zero_infinity=True)
      r = g.rng(base % "unbatched_impossible_zero_infinity")
      add("unbatched_impossible_zero_infinity", log_probs(r, 3, 4), np.array([2, 2, 3]),
          np.array(3), np.array(3), batched=False, zero_infinity=True)
      # INT32 targets and lengths.
      r = g.rng(base % "int32")
      tl = [3, 1, 2]
      add("int32", log_probs(r, 6, 3, 5), Stored(padded(r, 5, tl, 3), "int32"),
          Stored(np.array([6, 4, 5]), "int32"), Stored(np.array(tl), "int32"), tdtype="int32")
      r = g.rng(base % "int32_concatenated")
      tl = [2, 2]
      add("int32_concatenated", log_probs(r, 5, 2, 4), Stored(concatenated(r, 4, tl), "int32"),
          Stored(np.array([5, 5]), "int32"), Stored(np.array(tl), "int32"), tdtype="int32")

  # Larger, long sequences: the float32 reference is float64 of the rounded
  # inputs, so the recursion must not lose digits over T.
  for dtype, red in [("float32", red) for red in REDUCTIONS] + [("float64", "mean")]:
    n = f"ctc/long/{dtype}/{red}"
    r = g.rng(n)
    tl = [12, 20, 7, 15]
    g.loss(n, "ctc", red, dtype, log_probs(r, 50, 4, 20, scale=3.0), padded(r, 20, tl, 20),
           tdtype="int64", options={"input_lengths": [50, 45, 30, 50], "target_lengths": tl},
           grad_output=loss_grad_output(r, (4,) if red == "none" else (), red))
  # An empty batch: mean over no samples is NaN, sum is 0.
  for dtype, red in zip(("float32", "float64", "float32"), REDUCTIONS):
    g.loss(f"ctc/empty_batch/{dtype}/{red}", "ctc", red, dtype, np.zeros((4, 0, 3)),
           np.zeros((0,), dtype=np.int64), tdtype="int64",
           options={"input_lengths": np.zeros(0, dtype=np.int64),
                    "target_lengths": np.zeros(0, dtype=np.int64)})
  for dtype in DTYPES:
    # A -inf log-probability: the class's gradient is exp(-inf) - exp(-inf + nll + inf),
    # NaN in PyTorch.
    n = f"ctc/neg_inf_log_prob/{dtype}/sum"
    r = g.rng(n)
    x = log_probs(r, 5, 2, 4)
    x[1, 0, 3] = -np.inf
    x[2, 1, 1] = -np.inf
    g.loss(n, "ctc", "sum", dtype, x, np.array([[1, 2], [1, 2]]), tdtype="int64",
           options={"input_lengths": [5, 5], "target_lengths": [2, 2]})
    # Mixed grad_output dtype.
    n = f"ctc/mixed_grad_output/{dtype}/none"
    r = g.rng(n)
    other = "float32" if dtype == "float64" else "float64"
    g.loss(n, "ctc", "none", dtype, log_probs(r, 5, 2, 4), np.array([[1, 2], [3, 0]]),
           tdtype="int64", options={"input_lengths": [5, 4], "target_lengths": [2, 1]},
           grad_output=Stored(r.uniform(-2, 2, size=2), other))

  error_cases(g)


# Validation does not depend on the dtype: these few also run in float64.
FLOAT64_ERRORS = ("label_blank", "label_ge_c", "input_length_0", "input_length_above_t",
                  "target_length_above_s", "concatenated_too_short", "float_target")


def error_cases(g):
  for dtype in DTYPES:
    r = g.rng(f"ctc/errors/{dtype}")
    x = log_probs(r, 5, 2, 4)
    t = np.array([[1, 2, 3], [2, 2, 0]])
    ok = {"input_lengths": [5, 5], "target_lengths": [3, 2]}

    def E(variant, target, options, *, x=x, red="mean", tdtype="int64", **kw):
      if dtype == "float64" and variant not in FLOAT64_ERRORS:
        return
      g.error(f"ctc/error_{variant}/{dtype}/{red}", "ctc", red, dtype, x, target,
              tdtype=tdtype, options=options, **kw)

    E("label_blank", np.array([[1, 0, 3], [2, 2, 0]]), ok)
    E("label_blank_nonzero", t, dict(ok, blank=2))
    E("label_ge_c", np.array([[1, 4, 3], [2, 2, 0]]), ok)
    E("label_negative", np.array([[1, 2, 3], [-1, 2, 0]]), ok)
    E("label_ge_c_concatenated", np.array([1, 2, 3, 2, 7]), ok, red="sum")
    E("input_length_0", t, {"input_lengths": [5, 0], "target_lengths": [3, 2]})
    E("input_length_0_target_0", t, {"input_lengths": [0, 5], "target_lengths": [0, 2]},
      red="none")
    E("input_length_above_t", t, {"input_lengths": [6, 5], "target_lengths": [3, 2]})
    E("input_length_negative", t, {"input_lengths": [5, -1], "target_lengths": [3, 2]})
    E("target_length_negative", t, {"input_lengths": [5, 5], "target_lengths": [3, -1]})
    E("target_length_above_s", t, {"input_lengths": [5, 5], "target_lengths": [4, 2]})
    E("concatenated_too_short", np.array([1, 2, 3, 2]), ok)
    E("concatenated_too_long", np.array([1, 2, 3, 2, 2, 1]), ok)
    E("float_target", t.astype(np.float64), ok, tdtype=dtype)
    E("float_input_lengths", t, {"input_lengths": Stored(np.array([5.0, 5.0]), dtype),
                                 "target_lengths": [3, 2]})
    E("float_target_lengths", t, {"input_lengths": [5, 5],
                                  "target_lengths": Stored(np.array([3.0, 2.0]), dtype)})
    E("input_lengths_wrong_shape", t, {"input_lengths": [5, 5, 5], "target_lengths": [3, 2]})
    E("target_lengths_scalar_batched", t, {"input_lengths": [5, 5], "target_lengths": 3})
    E("input_lengths_2d", t, {"input_lengths": [[5], [5]], "target_lengths": [3, 2]})
    E("missing_input_lengths", t, {"target_lengths": [3, 2]})
    E("missing_target_lengths", t, {"input_lengths": [5, 5]})
    E("blank_equals_c", t, dict(ok, blank=4))
    E("blank_negative", t, dict(ok, blank=-1))
    E("padded_wrong_batch", np.array([[1, 2, 3], [2, 2, 1], [1, 1, 1]]), ok)
    E("target_3d", t.reshape(2, 3, 1), ok)
    E("missing_target", None, ok)
    E("input_1d", t, ok, x=x[:, 0, 0])
    E("input_4d", t, ok, x=x.reshape(5, 2, 2, 2))
    E("unbatched_lengths_shape_2", np.array([1, 2]),
      {"input_lengths": [5, 5], "target_lengths": [2, 2]}, x=x[:, 0])
    E("grad_output_wrong_shape", t, ok, red="none", grad_output=np.ones(3))
    E("grad_output_not_scalar", t, ok, red="sum", grad_output=np.ones(2))
    if dtype == "float32":
      g.error("ctc/error_integer_input/int64/mean", "ctc", "mean", "int64",
              np.zeros((5, 2, 4), dtype=np.int64), t, tdtype="int64", options=ok)
