"""LossClient against a live loss_server: torch's signatures, numpy and torch
in and out, the one error type, the 64 MiB default, streams, ListLosses and
health."""

import inspect
import queue
import re

import grpc
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import lossservice
from lossservice import requests as rq

CLIENT_ONLY = {"grad", "grad_output", "request_id"}
DEPRECATED = {"size_average", "reduce"}


@pytest.mark.parametrize("builder", rq.LOSSES, ids=lambda b: b.__name__)
def test_signature_is_torchs(builder):
  """Names, order, defaults and positional-ness as torch.nn.functional, minus
  the deprecated arguments: what torch takes positionally before the first
  deprecated one is positional here too, the rest keyword-only."""
  mine = inspect.signature(builder).parameters
  if builder.__name__ == "rmse_loss":  # not in torch: sqrt(mse_loss + eps)
    assert list(mine) == ["input", "target", "eps", "reduction"] + sorted(CLIENT_ONLY, key=[
        "grad", "grad_output", "request_id"].index)
    return
  theirs = inspect.signature(getattr(F, builder.__name__)).parameters
  kept = [n for n in theirs if n not in DEPRECATED]
  assert [n for n in mine if n not in CLIENT_ONLY] == kept
  positional = True
  for name, p in theirs.items():
    if name in DEPRECATED:
      positional = False
      continue
    assert mine[name].default == p.default, name
    kind = mine[name].kind
    assert kind == (inspect.Parameter.POSITIONAL_OR_KEYWORD if positional
                    else inspect.Parameter.KEYWORD_ONLY), name
  for name in CLIENT_ONLY:
    assert mine[name].kind == inspect.Parameter.KEYWORD_ONLY


def test_methods_have_the_builders_signature_and_a_timeout():
  for builder in rq.LOSSES:
    method = getattr(lossservice.LossClient, builder.__name__)
    params = list(inspect.signature(method).parameters)
    assert params == ["self"] + list(inspect.signature(builder).parameters) + ["timeout"]
    assert method.__doc__.startswith(builder.__doc__)


def test_numpy_in_numpy_out_in_the_inputs_dtype(client):
  x32 = np.array([[0.5, 1.5, -1.0]], dtype=np.float32)
  y32 = np.zeros((1, 3), dtype=np.float32)
  loss, grad = client.mse_loss(x32, y32, grad=True)
  assert isinstance(loss, np.ndarray) and loss.shape == () and loss.dtype == np.float32
  assert grad.shape == (1, 3) and grad.dtype == np.float32 and grad.flags.writeable
  want = F.mse_loss(torch.from_numpy(x32), torch.from_numpy(y32))
  assert loss == want.numpy()
  loss64 = client.mse_loss(x32.astype(np.float64), y32, reduction="sum")
  assert loss64.dtype == np.float64 and loss64 == (0.25 + 2.25 + 1.0)
  # Python lists carry no dtype: floats (and ints, for float arguments) are float64.
  assert client.l1_loss([1, 2, 3], [1.5, 2.0, 2.0], reduction="none").tolist() == [0.5, 0, 1]


def test_non_contiguous_and_big_endian_arrays(client):
  x = np.arange(12, dtype=">f8").reshape(3, 4)[:, ::2]  # strided, big-endian
  y = np.zeros((3, 2))
  got = client.l1_loss(x, y, reduction="none")
  assert got.tolist() == x.astype(np.float64).tolist()


def test_torch_in_torch_out_equal_to_torch(client):
  torch.manual_seed(0)
  logits = torch.randn(4, 5, requires_grad=True)
  labels = torch.tensor([1, 0, 4, 2])
  weight = torch.tensor([1.0, 2.0, 0.5, 1.0, 1.5])
  loss, grad = client.cross_entropy(logits, labels, weight, label_smoothing=0.1, grad=True)
  assert isinstance(loss, torch.Tensor) and isinstance(grad, torch.Tensor)
  want = F.cross_entropy(logits, labels, weight, label_smoothing=0.1)
  want.backward()
  torch.testing.assert_close(loss, want.detach(), rtol=1e-5, atol=1e-6)
  torch.testing.assert_close(grad, logits.grad, rtol=1e-5, atol=1e-6)
  out = client.softmax(logits.detach(), dim=1)
  torch.testing.assert_close(out, torch.softmax(logits.detach(), dim=1), rtol=1e-5, atol=1e-7)


def test_errors_carry_code_message_and_request_id(client):
  x, y = np.zeros((2, 3), np.float32), np.zeros((3, 2), np.float32)
  with pytest.raises(lossservice.LossServiceError) as e:
    client.mse_loss(x, y, request_id="req-7")
  assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
  assert "[2, 3]" in e.value.message and "[3, 2]" in e.value.message
  assert e.value.request_id == "req-7"
  assert str(e.value) == f"INVALID_ARGUMENT: {e.value.message} (request_id req-7)"

  with pytest.raises(lossservice.LossServiceError) as e:
    client.nll_loss(np.zeros((2, 3), np.float32), np.array([0, 3]))
  assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
  assert re.fullmatch(r"[0-9a-f]{16}", e.value.request_id)


def test_local_mistakes_are_the_same_error(client):
  x = np.zeros(3, np.float32)
  with pytest.raises(lossservice.LossServiceError) as e:
    client.mse_loss(x, x, reduction="avg", request_id="r1")
  assert (e.value.code, e.value.request_id) == (grpc.StatusCode.INVALID_ARGUMENT, "r1")
  assert e.value.message == "reduction: 'avg' is not one of 'mean', 'sum', 'none', 'batchmean'"
  with pytest.raises(lossservice.LossServiceError) as e:
    client.mse_loss(x.astype(np.float16), x)
  assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
  assert e.value.message.startswith("input: dtype float16 is not supported")


def test_activation_errors(client):
  with pytest.raises(lossservice.LossServiceError) as e:
    client.softmax(np.zeros((2, 3), np.float32), dim=2)
  assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT and e.value.request_id is None


def test_deadline(client):
  with pytest.raises(lossservice.LossServiceError) as e:
    client.mse_loss(np.zeros(1000000, np.float32), np.zeros(1000000, np.float32),
                    timeout=1e-6)
  assert e.value.code == grpc.StatusCode.DEADLINE_EXCEEDED


def test_two_million_float_gradient_arrives_with_the_defaults(client, address):
  n = 2_000_000
  x = (np.arange(n) % 1000).astype(np.float32) / 500
  y = np.full(n, 0.25, np.float32)
  loss, grad = client.mse_loss(x, y, grad=True)
  assert grad.shape == (n,) and grad.nbytes > 4 * 1024 * 1024
  np.testing.assert_allclose(grad, 2 * (x - y) / n, rtol=1e-6)
  assert lossservice.DEFAULT_MAX_MESSAGE_BYTES == 64 * 1024 * 1024
  # gRPC's own 4 MiB limit refuses the same call.
  with lossservice.LossClient(address, max_message_bytes=4 * 1024 * 1024) as small:
    with pytest.raises(lossservice.LossServiceError) as e:
      small.mse_loss(x, y, grad=True)
  assert e.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_evaluate_many_in_order_with_in_band_errors(client):
  x, y = np.array([0.5, 1.5], np.float32), np.ones(2, np.float32)
  batch = [rq.mse_loss(x, y, reduction="sum"), rq.mse_loss(x, np.ones(3, np.float32)),
           rq.l1_loss(x, y, reduction="sum", grad=True)]
  first, error, (l1, grad) = client.evaluate_many(batch, return_exceptions=True)
  assert first == 0.5
  assert isinstance(error, lossservice.LossServiceError)
  assert error.code == grpc.StatusCode.INVALID_ARGUMENT
  assert error.request_id == batch[1].request_id
  assert l1 == 1.0 and grad.tolist() == [-1.0, 1.0]
  # Without return_exceptions the first error is raised.
  answers = client.evaluate_many(batch)
  assert next(answers) == 0.5
  with pytest.raises(lossservice.LossServiceError) as e:
    next(answers)
  assert e.value.request_id == batch[1].request_id


def test_evaluate_many_raises_what_the_requests_raise_after_their_answers(client):
  def batch():
    yield rq.l1_loss([1.0, 2.0], [1.0, 4.0])
    yield rq.l1_loss([1.0], [1.0], reduction="avg", request_id="bad")

  answers = client.evaluate_many(batch())
  assert next(answers) == 1.0
  with pytest.raises(lossservice.LossServiceError) as e:
    next(answers)
  assert (e.value.code, e.value.request_id) == (grpc.StatusCode.INVALID_ARGUMENT, "bad")


def test_unreadable_certificates_are_the_same_error(tmp_path):
  with pytest.raises(lossservice.LossServiceError) as e:
    lossservice.LossClient("localhost:1", tls=True, root_certificates=str(tmp_path / "none.pem"))
  assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
  assert e.value.message.startswith("root_certificates: cannot read ")


def test_evaluate_many_drives_a_training_loop(client):
  """Each request is built from the previous answer, over one stream."""
  target = np.array([1.0, -2.0, 3.0])
  w = np.zeros(3)
  answers = queue.Queue()

  def steps():
    for _ in range(50):
      yield rq.mse_loss(w.copy(), target, grad=True)
      answers.get()  # the loop below has applied this step's gradient

  losses = []
  for loss, grad in client.evaluate_many(steps()):
    losses.append(float(loss))
    w -= 0.75 * grad  # grad = 2 (w - t) / 3: each step halves the error
    answers.put(None)
  assert len(losses) == 50
  assert losses[0] == pytest.approx(14 / 3)
  for before, after in zip(losses, losses[1:]):
    assert after == pytest.approx(before / 4, rel=1e-9)


def test_list_losses(client):
  losses = client.list_losses()
  assert len(losses) == 21
  assert [l.field_number for l in losses] == list(range(10, 31))
  by_name = {l.name: l for l in losses}
  assert by_name["cross_entropy"].reductions == ["mean", "sum", "none"]
  assert by_name["kl_div"].reductions == ["mean", "sum", "none", "batchmean"]
  assert by_name["rmse"].reductions == ["mean"]
  assert all(l.has_grad for l in losses)


def test_health(client):
  assert client.health() == "SERVING"
  assert client.health("lossservice.v1.LossService") == "SERVING"
  with pytest.raises(lossservice.LossServiceError) as e:
    client.health("no.such.Service")
  assert e.value.code == grpc.StatusCode.NOT_FOUND


def test_channel_options_by_default():
  options = dict(lossservice.channel_options())
  assert options["grpc.max_send_message_length"] == 64 * 1024 * 1024
  assert options["grpc.max_receive_message_length"] == 64 * 1024 * 1024
  assert options["grpc.enable_retries"] == 1
  import json
  policy = json.loads(options["grpc.service_config"])["methodConfig"][0]["retryPolicy"]
  assert policy["retryableStatusCodes"] == ["UNAVAILABLE"] and policy["maxAttempts"] == 5
  assert "grpc.service_config" not in dict(lossservice.channel_options(retry=False))
  # Options given by the caller win over these.
  assert dict(lossservice.channel_options(options=[("grpc.max_receive_message_length", 7)]))[
      "grpc.max_receive_message_length"] == 7


def test_a_stopped_server_is_unavailable():
  from conftest import Server
  s = Server()
  address = s.address
  s.stop()
  with lossservice.LossClient(address, timeout=10) as c:
    with pytest.raises(lossservice.LossServiceError) as e:
      c.mse_loss([1.0], [1.0])
  assert e.value.code == grpc.StatusCode.UNAVAILABLE
