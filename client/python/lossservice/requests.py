"""Evaluation requests, one builder per loss, named and defaulted as in
torch.nn.functional (without the deprecated size_average and reduce).

Each LossClient method of the same name builds its request here and sends it;
build them directly to send many over one stream:

  from lossservice import requests as rq
  for loss in client.evaluate_many([rq.mse_loss(x, y), rq.l1_loss(x, y)]):
    ...

Every builder also takes, keyword-only:
  grad=False         also return d(loss)/d(first argument): (loss, grad)
  grad_output=None   upstream gradient, shaped like the loss (default ones)
  request_id=None    echoed by the server and logged; default a random one
"""

import secrets

import grpc

from lossservice._errors import LossServiceError
from lossservice._tensors import ANY, FLOAT, INDEX, is_torch, to_proto
from lossservice.v1 import loss_service_pb2 as pb

_REDUCTIONS = {
    "mean": pb.REDUCTION_MEAN,
    "sum": pb.REDUCTION_SUM,
    "none": pb.REDUCTION_NONE,
    "batchmean": pb.REDUCTION_BATCHMEAN,
}


def new_request_id():
  return secrets.token_hex(8)


class Request:
  """One EvaluateRequest and how to answer it: `message` is the proto,
  `grad` whether the gradient comes back, `torch_out` whether the results
  are torch tensors (the first argument was one)."""

  __slots__ = ("message", "grad", "torch_out")

  def __init__(self, message, grad, torch_out):
    self.message = message
    self.grad = grad
    self.torch_out = torch_out

  @property
  def request_id(self):
    return self.message.request_id

  def __repr__(self):
    return (f"Request({self.message.WhichOneof('loss')}, request_id={self.request_id!r}, "
            f"grad={self.grad})")


def _request(loss, options, input, target, reduction, grad, grad_output, request_id,
             *, target_kind=FLOAT):
  """Builds the EvaluateRequest; options are the loss message's fields
  (tensors given as arrays, with their kind: {name: (value, kind)})."""
  request_id = request_id or new_request_id()
  try:
    if reduction not in _REDUCTIONS:
      raise LossServiceError(
          grpc.StatusCode.INVALID_ARGUMENT,
          f"reduction: {reduction!r} is not one of " + ", ".join(map(repr, _REDUCTIONS)))
    q = pb.EvaluateRequest(reduction=_REDUCTIONS[reduction], compute_grad=bool(grad),
                           request_id=request_id)
    q.input.CopyFrom(to_proto(input, "input", FLOAT))
    if target is not None:
      q.target.CopyFrom(to_proto(target, "target", target_kind))
    if grad_output is not None:
      q.grad_output.CopyFrom(to_proto(grad_output, "grad_output", FLOAT))
    m = getattr(q, loss)
    m.SetInParent()
    for field, value in options.items():
      if value is None:
        continue
      if isinstance(value, tuple):  # a tensor with its kind
        getattr(m, field).CopyFrom(to_proto(value[0], f"{loss}.{field}", value[1]))
      else:
        setattr(m, field, value)
  except LossServiceError as e:
    raise LossServiceError(e.code, e.message, request_id) from None
  except (TypeError, ValueError) as e:
    raise LossServiceError(grpc.StatusCode.INVALID_ARGUMENT, f"{loss}: {e}", request_id) from None
  return Request(q, bool(grad), is_torch(input))


def _f(value):
  """A floating option tensor."""
  return None if value is None else (value, FLOAT)


def _i(value):
  """An index option tensor."""
  return None if value is None else (value, INDEX)


# --- regression ---

def mse_loss(input, target, *, reduction="mean", grad=False, grad_output=None,
             request_id=None):
  """torch.nn.functional.mse_loss: (input - target)^2."""
  return _request("mse", {}, input, target, reduction, grad, grad_output, request_id)


def l1_loss(input, target, *, reduction="mean", grad=False, grad_output=None, request_id=None):
  """torch.nn.functional.l1_loss: |input - target|."""
  return _request("l1", {}, input, target, reduction, grad, grad_output, request_id)


def rmse_loss(input, target, eps=1e-7, *, reduction="mean", grad=False, grad_output=None,
              request_id=None):
  """sqrt(mse_loss(input, target) + eps); reduction "mean" only."""
  return _request("rmse", {"eps": float(eps)}, input, target, reduction, grad, grad_output,
                  request_id)


def huber_loss(input, target, reduction="mean", delta=1.0, *, grad=False, grad_output=None,
               request_id=None):
  """torch.nn.functional.huber_loss."""
  return _request("huber", {"delta": float(delta)}, input, target, reduction, grad,
                  grad_output, request_id)


def smooth_l1_loss(input, target, *, reduction="mean", beta=1.0, grad=False, grad_output=None,
                   request_id=None):
  """torch.nn.functional.smooth_l1_loss."""
  return _request("smooth_l1", {"beta": float(beta)}, input, target, reduction, grad,
                  grad_output, request_id)


# --- classification ---

def cross_entropy(input, target, weight=None, *, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0, grad=False, grad_output=None, request_id=None):
  """torch.nn.functional.cross_entropy: logits (C), (N, C) or (N, C, d1, ...);
  target class indices (int64 / int32) or class probabilities (float)."""
  return _request("cross_entropy",
                  {"weight": _f(weight), "ignore_index": int(ignore_index),
                   "label_smoothing": float(label_smoothing)},
                  input, target, reduction, grad, grad_output, request_id, target_kind=ANY)


def nll_loss(input, target, weight=None, *, ignore_index=-100, reduction="mean", grad=False,
             grad_output=None, request_id=None):
  """torch.nn.functional.nll_loss: log-probabilities and class indices."""
  return _request("nll", {"weight": _f(weight), "ignore_index": int(ignore_index)}, input,
                  target, reduction, grad, grad_output, request_id, target_kind=INDEX)


def binary_cross_entropy(input, target, weight=None, *, reduction="mean", grad=False,
                         grad_output=None, request_id=None):
  """torch.nn.functional.binary_cross_entropy: probabilities in [0, 1]."""
  return _request("bce", {"weight": _f(weight)}, input, target, reduction, grad, grad_output,
                  request_id)


def binary_cross_entropy_with_logits(input, target, weight=None, *, reduction="mean",
                                     pos_weight=None, grad=False, grad_output=None,
                                     request_id=None):
  """torch.nn.functional.binary_cross_entropy_with_logits."""
  return _request("bce_with_logits", {"weight": _f(weight), "pos_weight": _f(pos_weight)},
                  input, target, reduction, grad, grad_output, request_id)


def kl_div(input, target, *, reduction="mean", log_target=False, grad=False, grad_output=None,
           request_id=None):
  """torch.nn.functional.kl_div: input log-probabilities. Note torch's
  reduction "mean" averages over elements; "batchmean" is the KL divergence."""
  return _request("kl_div", {"log_target": bool(log_target)}, input, target, reduction, grad,
                  grad_output, request_id)


def poisson_nll_loss(input, target, log_input=True, full=False, *, eps=1e-8, reduction="mean",
                     grad=False, grad_output=None, request_id=None):
  """torch.nn.functional.poisson_nll_loss."""
  return _request("poisson_nll",
                  {"log_input": bool(log_input), "full": bool(full), "eps": float(eps)}, input,
                  target, reduction, grad, grad_output, request_id)


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean", *,
                      grad=False, grad_output=None, request_id=None):
  """torch.nn.functional.gaussian_nll_loss."""
  return _request("gaussian_nll", {"var": _f(var), "full": bool(full), "eps": float(eps)},
                  input, target, reduction, grad, grad_output, request_id)


# --- margins and embeddings ---

def soft_margin_loss(input, target, *, reduction="mean", grad=False, grad_output=None,
                     request_id=None):
  """torch.nn.functional.soft_margin_loss: target +1 / -1."""
  return _request("soft_margin", {}, input, target, reduction, grad, grad_output, request_id)


def multilabel_soft_margin_loss(input, target, weight=None, *, reduction="mean", grad=False,
                                grad_output=None, request_id=None):
  """torch.nn.functional.multilabel_soft_margin_loss: target 0 / 1."""
  return _request("multilabel_soft_margin", {"weight": _f(weight)}, input, target, reduction,
                  grad, grad_output, request_id)


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, *, reduction="mean",
                      grad=False, grad_output=None, request_id=None):
  """torch.nn.functional.multi_margin_loss: class indices; p is 1 or 2."""
  return _request("multi_margin", {"p": int(p), "margin": float(margin), "weight": _f(weight)},
                  input, target, reduction, grad, grad_output, request_id, target_kind=INDEX)


def multilabel_margin_loss(input, target, *, reduction="mean", grad=False, grad_output=None,
                           request_id=None):
  """torch.nn.functional.multilabel_margin_loss: class indices ended by -1."""
  return _request("multilabel_margin", {}, input, target, reduction, grad, grad_output,
                  request_id, target_kind=INDEX)


def hinge_embedding_loss(input, target, margin=1.0, *, reduction="mean", grad=False,
                         grad_output=None, request_id=None):
  """torch.nn.functional.hinge_embedding_loss: target +1 / -1."""
  return _request("hinge_embedding", {"margin": float(margin)}, input, target, reduction, grad,
                  grad_output, request_id)


def margin_ranking_loss(input1, input2, target, margin=0, *, reduction="mean", grad=False,
                        grad_output=None, request_id=None):
  """torch.nn.functional.margin_ranking_loss; the gradient is d/d(input1)."""
  return _request("margin_ranking", {"input2": _f(input2), "margin": float(margin)}, input1,
                  target, reduction, grad, grad_output, request_id)


def cosine_embedding_loss(input1, input2, target, margin=0, *, reduction="mean", grad=False,
                          grad_output=None, request_id=None):
  """torch.nn.functional.cosine_embedding_loss; the gradient is d/d(input1)."""
  return _request("cosine_embedding", {"input2": _f(input2), "margin": float(margin)}, input1,
                  target, reduction, grad, grad_output, request_id)


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False, *,
                        reduction="mean", grad=False, grad_output=None, request_id=None):
  """torch.nn.functional.triplet_margin_loss; the gradient is d/d(anchor)."""
  return _request("triplet_margin",
                  {"positive": _f(positive), "negative": _f(negative), "margin": float(margin),
                   "p": float(p), "eps": float(eps), "swap": bool(swap)},
                  anchor, None, reduction, grad, grad_output, request_id)


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean",
             zero_infinity=False, *, grad=False, grad_output=None, request_id=None):
  """torch.nn.functional.ctc_loss: log_probs (T, N, C) or (T, C); the gradient
  is d/d(log_probs), as torch's autograd gives it."""
  return _request("ctc",
                  {"input_lengths": _i(input_lengths), "target_lengths": _i(target_lengths),
                   "blank": int(blank), "zero_infinity": bool(zero_infinity)},
                  log_probs, targets, reduction, grad, grad_output, request_id,
                  target_kind=INDEX)


#: Every builder, by its torch.nn.functional name, in the proto's order.
LOSSES = (mse_loss, l1_loss, rmse_loss, huber_loss, smooth_l1_loss, cross_entropy, nll_loss,
          binary_cross_entropy, binary_cross_entropy_with_logits, kl_div, poisson_nll_loss,
          gaussian_nll_loss, soft_margin_loss, multilabel_soft_margin_loss, multi_margin_loss,
          multilabel_margin_loss, hinge_embedding_loss, margin_ranking_loss,
          cosine_embedding_loss, triplet_margin_loss, ctc_loss)
