"""LossClient: a channel to a lossservice server and one method per loss."""

import collections
import functools
import inspect
import json
import os

import grpc

from lossservice import requests as _rq
from lossservice._errors import LossServiceError
from lossservice._tensors import FLOAT, from_proto, is_torch, to_proto
from lossservice.v1 import loss_service_pb2 as pb
from lossservice.v1 import loss_service_pb2_grpc as pb_grpc

#: Largest message sent and received by default, in bytes (gRPC's own
#: receive default is 4 MiB, less than a 2M-float gradient).
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024

#: The channel's service config by default: calls that fail with UNAVAILABLE
#: are retried, up to 5 attempts, backoff from 0.1 s doubling to 2 s.
RETRY_SERVICE_CONFIG = {
    "methodConfig": [{
        "name": [{"service": "lossservice.v1.LossService"}],
        "retryPolicy": {
            "maxAttempts": 5,
            "initialBackoff": "0.1s",
            "maxBackoff": "2s",
            "backoffMultiplier": 2,
            "retryableStatusCodes": ["UNAVAILABLE"],
        },
    }]
}

_DEFAULT = object()  # "the client's timeout"
_REDUCTION_NAMES = {v: k for k, v in _rq._REDUCTIONS.items()}


def _pem(value, name):
  """PEM bytes, given as bytes or as the path of a file."""
  if value is None or isinstance(value, bytes):
    return value
  if isinstance(value, (str, os.PathLike)):
    try:
      with open(value, "rb") as f:
        return f.read()
    except OSError as e:
      raise LossServiceError(grpc.StatusCode.INVALID_ARGUMENT,
                             f"{name}: cannot read {value}: {e.strerror}") from None
  raise LossServiceError(grpc.StatusCode.INVALID_ARGUMENT,
                         f"{name}: PEM bytes or a file path, not {type(value).__name__}")


def channel_options(*, max_message_bytes=DEFAULT_MAX_MESSAGE_BYTES, retry=True,
                    service_config=None, tls_server_name=None, options=()):
  """The gRPC channel options a LossClient uses; `options` (pairs) override
  them."""
  merged = {"grpc.max_send_message_length": max_message_bytes,
            "grpc.max_receive_message_length": max_message_bytes}
  if service_config is not None:
    merged["grpc.enable_retries"] = 1
    merged["grpc.service_config"] = (service_config if isinstance(service_config, str)
                                     else json.dumps(service_config))
  elif retry:
    merged["grpc.enable_retries"] = 1
    merged["grpc.service_config"] = json.dumps(RETRY_SERVICE_CONFIG)
  if tls_server_name:
    merged["grpc.ssl_target_name_override"] = tls_server_name
  merged.update(dict(options))
  return list(merged.items())


# grpc.health.v1 by hand (its Python package is not part of grpcio):
#   message HealthCheckRequest { string service = 1; }
#   message HealthCheckResponse { ServingStatus status = 1; }
_SERVING_STATUS = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}


def _varint(n):
  out = bytearray()
  while n >= 0x80:
    out.append((n & 0x7F) | 0x80)
    n >>= 7
  out.append(n)
  return bytes(out)


def _health_request(service):
  data = service.encode()
  return b"\x0a" + _varint(len(data)) + data if data else b""


def _read_varint(data, i):
  """(value, next index) of the varint at data[i]."""
  value, shift = 0, 0
  while True:
    byte = data[i]
    i += 1
    value |= (byte & 0x7F) << shift
    shift += 7
    if byte < 0x80:
      return value, i


def _health_status(data):
  """The status field of a HealthCheckResponse (0 when absent)."""
  status, i = 0, 0
  while i < len(data):
    key, i = _read_varint(data, i)
    if key & 7 != 0:
      raise ValueError("unexpected HealthCheckResponse field")
    value, i = _read_varint(data, i)
    if key >> 3 == 1:
      status = value
  return status


class LossInfo(collections.namedtuple(
    "LossInfo", "name field_number input target options reductions has_grad")):
  """One loss as ListLosses describes it; reductions as strings ("mean", ...)."""


def _remote(builder):
  """A LossClient method that builds its request with `builder` and sends it;
  it takes the builder's arguments and a keyword-only timeout."""

  @functools.wraps(builder)
  def method(self, *args, timeout=_DEFAULT, **kwargs):
    return self.evaluate(builder(*args, **kwargs), timeout=timeout)

  params = list(inspect.signature(builder).parameters.values())
  params.insert(0, inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD))
  params.append(inspect.Parameter("timeout", inspect.Parameter.KEYWORD_ONLY, default=_DEFAULT))
  method.__signature__ = inspect.Signature(params)
  del method.__wrapped__
  method.__doc__ = (builder.__doc__ or "") + (
      "\n\nReturns the loss, or (loss, grad) with grad=True: numpy arrays, torch tensors if "
      "the first argument is one. Raises LossServiceError.")
  return method


class LossClient:
  """A connection to a lossservice server.

    client = LossClient("localhost:50051")
    loss, grad = client.cross_entropy(logits, labels, grad=True)

  address: host:port. timeout: seconds per call (None: no deadline; every
  method also takes timeout=). tls: connect with TLS, verifying the server
  with root_certificates (PEM bytes or a file path; default gRPC's roots);
  private_key and certificate_chain: the client's certificate, for mutual
  TLS; tls_server_name: the name the server's certificate carries, if not
  the address's host. token: sent as "authorization: Bearer <token>" on every
  call. max_message_bytes: the send and receive limit (default 64 MiB).
  retry: retry UNAVAILABLE (RETRY_SERVICE_CONFIG). service_config: a service
  config of your own (a dict or JSON) instead, e.g. round_robin over a
  headless Service. options: more gRPC channel options (they win). Thread-safe;
  close() (or a with block) releases the channel.
  """

  def __init__(self, address, *, timeout=30.0, tls=False, root_certificates=None,
               private_key=None, certificate_chain=None, tls_server_name=None, token=None,
               max_message_bytes=DEFAULT_MAX_MESSAGE_BYTES, retry=True, service_config=None,
               options=()):
    self.address = address
    self.timeout = timeout
    opts = channel_options(max_message_bytes=max_message_bytes, retry=retry,
                           service_config=service_config, tls_server_name=tls_server_name,
                           options=options)
    if tls:
      credentials = grpc.ssl_channel_credentials(
          root_certificates=_pem(root_certificates, "root_certificates"),
          private_key=_pem(private_key, "private_key"),
          certificate_chain=_pem(certificate_chain, "certificate_chain"))
      self._channel = grpc.secure_channel(address, credentials, options=opts)
    else:
      self._channel = grpc.insecure_channel(address, options=opts)
    self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
    self._stub = pb_grpc.LossServiceStub(self._channel)

  def close(self):
    self._channel.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()

  def _timeout(self, timeout):
    return self.timeout if timeout is _DEFAULT else timeout

  # --- the losses, named as in torch.nn.functional ---

  mse_loss = _remote(_rq.mse_loss)
  l1_loss = _remote(_rq.l1_loss)
  rmse_loss = _remote(_rq.rmse_loss)
  huber_loss = _remote(_rq.huber_loss)
  smooth_l1_loss = _remote(_rq.smooth_l1_loss)
  cross_entropy = _remote(_rq.cross_entropy)
  nll_loss = _remote(_rq.nll_loss)
  binary_cross_entropy = _remote(_rq.binary_cross_entropy)
  binary_cross_entropy_with_logits = _remote(_rq.binary_cross_entropy_with_logits)
  kl_div = _remote(_rq.kl_div)
  poisson_nll_loss = _remote(_rq.poisson_nll_loss)
  gaussian_nll_loss = _remote(_rq.gaussian_nll_loss)
  soft_margin_loss = _remote(_rq.soft_margin_loss)
  multilabel_soft_margin_loss = _remote(_rq.multilabel_soft_margin_loss)
  multi_margin_loss = _remote(_rq.multi_margin_loss)
  multilabel_margin_loss = _remote(_rq.multilabel_margin_loss)
  hinge_embedding_loss = _remote(_rq.hinge_embedding_loss)
  margin_ranking_loss = _remote(_rq.margin_ranking_loss)
  cosine_embedding_loss = _remote(_rq.cosine_embedding_loss)
  triplet_margin_loss = _remote(_rq.triplet_margin_loss)
  ctc_loss = _remote(_rq.ctc_loss)

  # --- activations: the input's shape and dtype ---

  def sigmoid(self, input, *, timeout=_DEFAULT):
    """torch.sigmoid."""
    return self._activate(pb.ACTIVATION_SIGMOID, input, None, None, timeout)

  def softmax(self, input, dim=-1, *, timeout=_DEFAULT):
    """torch.nn.functional.softmax over dim (default the last)."""
    return self._activate(pb.ACTIVATION_SOFTMAX, input, dim, None, timeout)

  def log_softmax(self, input, dim=-1, *, timeout=_DEFAULT):
    """torch.nn.functional.log_softmax over dim (default the last)."""
    return self._activate(pb.ACTIVATION_LOG_SOFTMAX, input, dim, None, timeout)

  def logit(self, input, eps=None, *, timeout=_DEFAULT):
    """torch.logit: log(p / (1 - p)), p clamped to [eps, 1 - eps] when eps is set."""
    return self._activate(pb.ACTIVATION_LOGIT, input, None, eps, timeout)

  def _activate(self, activation, input, dim, eps, timeout):
    q = pb.ActivateRequest(activation=activation, input=to_proto(input, "input", FLOAT))
    if dim is not None:
      q.dim = int(dim)
    if eps is not None:
      q.eps = float(eps)
    try:
      response = self._stub.Activate(q, timeout=self._timeout(timeout), metadata=self._metadata)
    except grpc.RpcError as e:
      raise LossServiceError.from_rpc_error(e) from None
    return from_proto(response.output, "output", is_torch(input))

  # --- general forms ---

  def evaluate(self, request, *, timeout=_DEFAULT):
    """Sends one lossservice.requests Request; returns loss or (loss, grad)."""
    try:
      response = self._stub.Evaluate(request.message, timeout=self._timeout(timeout),
                                     metadata=self._metadata)
    except grpc.RpcError as e:
      raise LossServiceError.from_rpc_error(e, request.request_id) from None
    return self._answer(request, response)

  @staticmethod
  def _answer(request, response):
    try:
      loss = from_proto(response.loss, "loss", request.torch_out)
      if not request.grad:
        return loss
      return loss, from_proto(response.grad, "grad", request.torch_out)
    except LossServiceError as e:
      raise LossServiceError(e.code, e.message, request.request_id) from None

  def evaluate_many(self, requests, *, timeout=_DEFAULT, return_exceptions=False):
    """Sends lossservice.requests Requests over one EvaluateStream and yields
    each answer in order, as it arrives (requests may be a generator that
    builds the next request from the previous answer). A request the server
    refuses raises its LossServiceError, or with return_exceptions=True is
    yielded as one while the stream goes on. What the requests iterable raises
    (e.g. a builder's LossServiceError) is raised after the answers to the
    requests before it. timeout covers the whole stream.
    """
    sent = collections.deque()
    failure = []  # what the caller's iterable raised; re-raised once its answers are out

    def messages():  # consumed on a gRPC thread
      try:
        for request in requests:
          sent.append(request)
          yield request.message
      except Exception as e:  # pylint: disable=broad-except
        failure.append(e)

    responses = self._stub.EvaluateStream(messages(), timeout=self._timeout(timeout),
                                          metadata=self._metadata)
    try:
      for response in responses:
        request = sent.popleft()
        if response.WhichOneof("result") == "error":
          error = LossServiceError.from_code_number(response.error.code, response.error.message,
                                                    response.error.request_id or
                                                    request.request_id)
          if not return_exceptions:
            raise error
          yield error
        else:
          yield self._answer(request, response.response)
    except grpc.RpcError as e:
      raise LossServiceError.from_rpc_error(e) from None
    finally:
      responses.cancel()
    if failure:
      raise failure[0]

  def health(self, service="", *, timeout=_DEFAULT):
    """grpc.health.v1.Health/Check: "SERVING", "NOT_SERVING", "UNKNOWN" or
    "SERVICE_UNKNOWN" for service ("" is the whole server)."""
    check = self._channel.unary_unary("/grpc.health.v1.Health/Check",
                                      request_serializer=_health_request,
                                      response_deserializer=_health_status)
    try:
      status = check(service, timeout=self._timeout(timeout), metadata=self._metadata)
    except grpc.RpcError as e:
      raise LossServiceError.from_rpc_error(e) from None
    return _SERVING_STATUS.get(status, f"status {status}")

  def list_losses(self, *, timeout=_DEFAULT):
    """Every loss the server has, as LossInfo tuples, in field-number order."""
    try:
      response = self._stub.ListLosses(pb.ListLossesRequest(), timeout=self._timeout(timeout),
                                       metadata=self._metadata)
    except grpc.RpcError as e:
      raise LossServiceError.from_rpc_error(e) from None
    return [LossInfo(l.name, l.field_number, l.input, l.target, list(l.options),
                     [_REDUCTION_NAMES.get(r, str(r)) for r in l.reductions], l.has_grad)
            for l in response.losses]
