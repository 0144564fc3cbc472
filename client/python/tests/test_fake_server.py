"""LossClient's retries against a small in-process LossService (grpc.server)
that fails on demand, as a real server cannot be made to. (TLS, mutual TLS
and tokens against loss_server itself: test_security.py.)"""

import threading
from concurrent import futures

import grpc
import numpy as np
import pytest

import lossservice
from lossservice.v1 import loss_service_pb2 as pb
from lossservice.v1 import loss_service_pb2_grpc as pb_grpc


class FakeLossService(pb_grpc.LossServiceServicer):
  """Evaluate answers a float32 scalar 1.5 after failing the first
  `fail_first` calls with UNAVAILABLE."""

  def __init__(self):
    self.lock = threading.Lock()
    self.calls = 0
    self.fail_first = 0

  def Evaluate(self, request, context):
    with self.lock:
      self.calls += 1
      if self.fail_first > 0:
        self.fail_first -= 1
        context.abort(grpc.StatusCode.UNAVAILABLE, "not yet")
    return pb.EvaluateResponse(
        loss=pb.Tensor(dtype=pb.DATA_TYPE_FLOAT32, raw_data=np.float32(1.5).tobytes()),
        request_id=request.request_id)


@pytest.fixture
def serve():
  """serve() -> (service, address) of a plaintext fake on 127.0.0.1:0."""
  servers = []

  def start():
    service = FakeLossService()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    pb_grpc.add_LossServiceServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    servers.append(server)
    return service, f"127.0.0.1:{port}"

  yield start
  for s in servers:
    s.stop(0)


def call(address, **options):
  with lossservice.LossClient(address, timeout=10, **options) as client:
    return client.mse_loss(np.ones(2, np.float32), np.ones(2, np.float32), request_id="fake-1")


def test_retries_unavailable(serve):
  service, address = serve()
  service.fail_first = 2
  assert call(address) == 1.5
  assert service.calls == 3


def test_no_retry_when_disabled(serve):
  service, address = serve()
  service.fail_first = 2
  with pytest.raises(lossservice.LossServiceError) as e:
    call(address, retry=False)
  assert (e.value.code, e.value.message) == (grpc.StatusCode.UNAVAILABLE, "not yet")
  assert service.calls == 1


def test_gives_up_after_five_attempts(serve):
  service, address = serve()
  service.fail_first = 10
  with pytest.raises(lossservice.LossServiceError) as e:
    call(address)
  assert e.value.code == grpc.StatusCode.UNAVAILABLE
  assert service.calls == 5


def test_a_service_config_of_ones_own(serve):
  service, address = serve()
  service.fail_first = 10
  config = {"methodConfig": [{
      "name": [{"service": "lossservice.v1.LossService"}],
      "retryPolicy": {"maxAttempts": 2, "initialBackoff": "0.01s", "maxBackoff": "0.01s",
                      "backoffMultiplier": 1, "retryableStatusCodes": ["UNAVAILABLE"]}}]}
  with pytest.raises(lossservice.LossServiceError) as e:
    call(address, service_config=config)
  assert e.value.code == grpc.StatusCode.UNAVAILABLE
  assert service.calls == 2
