"""LossClient's TLS, mutual TLS, bearer token and retry options against a
small in-process LossService (grpc.server) that checks what arrives: the
token as the server's --auth_token_file checks it, the certificates as
tests/make_test_certs.sh makes them."""

import os
import subprocess
import tempfile
import threading
from concurrent import futures

import grpc
import numpy as np
import pytest

import lossservice
from lossservice.v1 import loss_service_pb2 as pb
from lossservice.v1 import loss_service_pb2_grpc as pb_grpc

from conftest import REPO


class FakeLossService(pb_grpc.LossServiceServicer):
  """Evaluate answers a float32 scalar 1.5 after failing the first
  `fail_first` calls with UNAVAILABLE; with `token` set, a call without
  "authorization: Bearer <token>" is UNAUTHENTICATED."""

  def __init__(self):
    self.lock = threading.Lock()
    self.calls = 0
    self.fail_first = 0
    self.token = None
    self.authorization = None

  def Evaluate(self, request, context):
    metadata = dict(context.invocation_metadata())
    with self.lock:
      self.calls += 1
      self.authorization = metadata.get("authorization")
      if self.fail_first > 0:
        self.fail_first -= 1
        context.abort(grpc.StatusCode.UNAVAILABLE, "not yet")
      if self.token and self.authorization != f"Bearer {self.token}":
        context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong token")
    return pb.EvaluateResponse(
        loss=pb.Tensor(dtype=pb.DATA_TYPE_FLOAT32, raw_data=np.float32(1.5).tobytes()),
        request_id=request.request_id)


@pytest.fixture(scope="module")
def certs():
  d = tempfile.mkdtemp(prefix="lossservice_certs_")
  subprocess.run([os.path.join(REPO, "tests", "make_test_certs.sh"), d], check=True)
  yield d
  subprocess.run(["rm", "-rf", d], check=True)


def read(certs, name):
  with open(os.path.join(certs, name), "rb") as f:
    return f.read()


@pytest.fixture
def serve(certs):
  """serve(security) -> (service, address); security: plaintext, tls, mtls."""
  servers = []

  def start(security="plaintext"):
    service = FakeLossService()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    pb_grpc.add_LossServiceServicer_to_server(service, server)
    if security == "plaintext":
      port = server.add_insecure_port("127.0.0.1:0")
    else:
      credentials = grpc.ssl_server_credentials(
          [(read(certs, "server.key"), read(certs, "server.pem"))],
          root_certificates=read(certs, "ca.pem") if security == "mtls" else None,
          require_client_auth=security == "mtls")
      port = server.add_secure_port("127.0.0.1:0", credentials)
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


def test_token_is_sent_as_a_bearer_on_every_call(serve):
  service, address = serve()
  service.token = "s3cret"
  assert call(address, token="s3cret") == 1.5
  assert service.authorization == "Bearer s3cret"
  for options in ({}, {"token": "wrong"}):
    with pytest.raises(lossservice.LossServiceError) as e:
      call(address, **options)
    assert e.value.code == grpc.StatusCode.UNAUTHENTICATED
    assert e.value.request_id == "fake-1"


def test_tls_with_the_servers_root_certificate(serve, certs):
  service, address = serve("tls")
  # As a file path and as PEM bytes.
  assert call(address, tls=True, root_certificates=os.path.join(certs, "ca.pem")) == 1.5
  assert call(address, tls=True, root_certificates=read(certs, "ca.pem"), token="t") == 1.5
  assert service.authorization == "Bearer t"
  assert call(address, tls=True, root_certificates=read(certs, "ca.pem"),
              tls_server_name="localhost") == 1.5


@pytest.mark.parametrize("options", [
    {"tls": True},  # the test CA is not among gRPC's default roots
    {"tls": True, "tls_server_name": "other.example"},  # the certificate's names differ
    {},  # plaintext to a TLS port
], ids=["default_roots", "wrong_name", "plaintext"])
def test_tls_refuses_what_it_cannot_verify(serve, certs, options):
  service, address = serve("tls")
  if "tls_server_name" in options:
    options = dict(options, root_certificates=read(certs, "ca.pem"))
  with pytest.raises(lossservice.LossServiceError) as e:
    call(address, retry=False, **options)
  assert e.value.code == grpc.StatusCode.UNAVAILABLE
  assert service.calls == 0


def test_mutual_tls_with_a_client_certificate(serve, certs):
  service, address = serve("mtls")
  assert call(address, tls=True, root_certificates=read(certs, "ca.pem"),
              private_key=os.path.join(certs, "client.key"),
              certificate_chain=os.path.join(certs, "client.pem")) == 1.5
  with pytest.raises(lossservice.LossServiceError) as e:
    call(address, tls=True, root_certificates=read(certs, "ca.pem"), retry=False)
  assert e.value.code == grpc.StatusCode.UNAVAILABLE
  assert service.calls == 1
