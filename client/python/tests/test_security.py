"""LossClient and loss_client against loss_server processes started with TLS
(--tls_cert, --tls_key), mutual TLS (--tls_client_ca) and a bearer token
(--auth_token_file): what connects, what is refused and with which code.
Certificates from tests/make_test_certs.sh (openssl)."""

import os
import re
import shutil
import subprocess
import tempfile

import grpc
import numpy as np
import pytest

import lossservice

from conftest import REPO, Server, binary

TOKEN = "s3cret-token"
# mse([0.5, 1.5], [1, 1]) = (0.25 + 0.25) / 2, exact in float32.
INPUT = np.array([0.5, 1.5], np.float32)
TARGET = np.array([1.0, 1.0], np.float32)
LOSS = 0.25


@pytest.fixture(scope="module")
def certs():
  """The test certificates, and the token file (whitespace around the token,
  which the server ignores)."""
  d = tempfile.mkdtemp(prefix="lossservice_security_")
  subprocess.run([os.path.join(REPO, "tests", "make_test_certs.sh"), d], check=True)
  with open(os.path.join(d, "token"), "w") as f:
    f.write(f"  {TOKEN}\n\t\n")
  with open(os.path.join(d, "wrong_token"), "w") as f:
    f.write("not-the-token\n")
  yield d
  shutil.rmtree(d)


def path(certs, name):
  return os.path.join(certs, name)


def read(certs, name):
  with open(path(certs, name), "rb") as f:
    return f.read()


def tls_flags(certs):
  return [f"--tls_cert={path(certs, 'server.pem')}", f"--tls_key={path(certs, 'server.key')}"]


@pytest.fixture(scope="module")
def tls_server(certs):
  s = Server(*tls_flags(certs))
  yield s.address
  s.stop()


@pytest.fixture(scope="module")
def mtls_server(certs):
  s = Server(*tls_flags(certs), f"--tls_client_ca={path(certs, 'ca.pem')}")
  yield s.address
  s.stop()


@pytest.fixture(scope="module")
def token_server(certs):
  s = Server(f"--auth_token_file={path(certs, 'token')}")
  yield s.address
  s.stop()


def mse(address, request_id=None, **options):
  with lossservice.LossClient(address, timeout=20, **options) as client:
    return client.mse_loss(INPUT, TARGET, request_id=request_id)


def refusal(address, **options):
  """The LossServiceError of a call that must fail (refusals not retried)."""
  with pytest.raises(lossservice.LossServiceError) as e:
    mse(address, retry=False, **options)
  return e.value


# --- --tls_cert, --tls_key ----------------------------------------------------


def test_tls_with_the_test_ca_as_roots(tls_server, certs):
  # As a file path and as PEM bytes.
  loss = mse(tls_server, tls=True, root_certificates=path(certs, "ca.pem"))
  assert loss.dtype == np.float32 and loss == LOSS
  assert mse(tls_server, tls=True, root_certificates=read(certs, "ca.pem")) == LOSS
  assert mse(tls_server, tls=True, root_certificates=read(certs, "ca.pem"),
             tls_server_name="localhost") == LOSS
  with lossservice.LossClient(tls_server, tls=True, root_certificates=read(certs, "ca.pem")) as c:
    assert c.health() == "SERVING"


@pytest.mark.parametrize("options", [
    {"tls": True},  # the test CA is not among gRPC's default roots
    {"tls": True, "tls_server_name": "other.example"},  # not the certificate's name
    {},  # plaintext to a TLS port
], ids=["default_roots", "wrong_server_name", "plaintext"])
def test_tls_refuses_what_it_cannot_verify(tls_server, certs, options):
  if "tls_server_name" in options:
    options = dict(options, root_certificates=read(certs, "ca.pem"))
  assert refusal(tls_server, **options).code == grpc.StatusCode.UNAVAILABLE


# --- --tls_client_ca: client certificates required and verified -------------


def test_mutual_tls_with_the_clients_certificate(mtls_server, certs):
  assert mse(mtls_server, tls=True, root_certificates=read(certs, "ca.pem"),
             private_key=path(certs, "client.key"),
             certificate_chain=path(certs, "client.pem")) == LOSS


@pytest.mark.parametrize("client", [None, "other_client"], ids=["no_certificate", "other_ca"])
def test_mutual_tls_refuses_other_clients(mtls_server, certs, client):
  options = {"tls": True, "root_certificates": read(certs, "ca.pem")}
  if client:
    options.update(private_key=read(certs, f"{client}.key"),
                   certificate_chain=read(certs, f"{client}.pem"))
  assert refusal(mtls_server, **options).code == grpc.StatusCode.UNAVAILABLE


# --- --auth_token_file -----------------------------------------------------------


def test_the_right_token_is_accepted(token_server, client):
  assert mse(token_server, token=TOKEN, request_id="token-ok") == LOSS
  with lossservice.LossClient(token_server, timeout=20, token=TOKEN) as c:
    assert c.list_losses() == client.list_losses()  # as a server without a token lists them
    assert [float(l) for l in c.evaluate_many([lossservice.requests.mse_loss(INPUT, TARGET)])] \
        == [LOSS]


@pytest.mark.parametrize("token", [None, "wrong", TOKEN + "x", " " + TOKEN],
                         ids=["missing", "wrong", "longer", "leading_space"])
def test_missing_or_wrong_tokens_are_unauthenticated(token_server, token):
  e = refusal(token_server, token=token, request_id="token-1")
  assert e.code == grpc.StatusCode.UNAUTHENTICATED
  assert "bearer token" in e.message
  assert e.request_id == "token-1"
  assert str(e) == f"UNAUTHENTICATED: {e.message} (request_id token-1)"
  # A request id the client made up is reported too.
  e = refusal(token_server, token=token)
  assert e.code == grpc.StatusCode.UNAUTHENTICATED
  assert re.fullmatch(r"[0-9a-f]{16}", e.request_id)


def test_every_loss_service_rpc_needs_the_token(token_server):
  with lossservice.LossClient(token_server, timeout=20) as c:
    for call in (c.list_losses, lambda: c.sigmoid(INPUT),
                 lambda: list(c.evaluate_many([lossservice.requests.mse_loss(INPUT, TARGET)]))):
      with pytest.raises(lossservice.LossServiceError) as e:
        call()
      assert e.value.code == grpc.StatusCode.UNAUTHENTICATED


def test_health_needs_no_token(token_server):
  with lossservice.LossClient(token_server, timeout=20) as c:
    assert c.health() == "SERVING"
    assert c.health("lossservice.v1.LossService") == "SERVING"


# --- loss_client (the command line) against mutual TLS with a token -------------


@pytest.fixture(scope="module")
def secure_server(certs):
  s = Server(*tls_flags(certs), f"--tls_client_ca={path(certs, 'ca.pem')}",
             f"--auth_token_file={path(certs, 'token')}")
  yield s.address
  s.stop()


def loss_client(address, certs, *args, token_file="token"):
  flags = [f"--address={address}", "--tls", f"--root_certificates={path(certs, 'ca.pem')}",
           f"--client_key={path(certs, 'client.key')}",
           f"--client_cert={path(certs, 'client.pem')}"]
  if token_file:
    flags.append(f"--token_file={path(certs, token_file)}")
  return subprocess.run([binary("LOSS_CLIENT", "client", "loss_client"), *flags, *args],
                        capture_output=True, text=True, timeout=120)


def test_loss_client_with_tls_and_a_token(secure_server, certs):
  r = loss_client(secure_server, certs, "health")
  assert (r.returncode, r.stdout) == (0, "SERVING\n"), r.stderr
  r = loss_client(secure_server, certs, "examples")
  assert r.returncode == 0, r.stdout[-2000:] + r.stderr
  assert re.search(r"^examples: \d+ values agree, 0 differ, 0 listed losses without an example$",
                   r.stdout, re.M), r.stdout[-500:]


@pytest.mark.parametrize("token_file,hint", [
    (None, "loss_client: the server requires a bearer token: pass --token_file=FILE"),
    ("wrong_token", "loss_client: the server refused the token read from --token_file"),
], ids=["missing", "wrong"])
def test_loss_client_without_the_right_token(secure_server, certs, token_file, hint):
  # Health needs none.
  r = loss_client(secure_server, certs, "health", token_file=token_file)
  assert (r.returncode, r.stdout) == (0, "SERVING\n"), r.stderr
  for command, rpc in (["examples"], "examples: ListLosses"), (["list"], "ListLosses"):
    r = loss_client(secure_server, certs, *command, token_file=token_file)
    assert (r.returncode, r.stdout) == (1, ""), r.stderr
    first, second = r.stderr.splitlines()
    assert first.startswith(f"{rpc} failed: UNAUTHENTICATED: "), r.stderr
    assert "bearer token" in first, r.stderr
    assert second == hint
  r = loss_client(secure_server, certs, "evaluate", '{"mse": {}, "request_id": "cli-1", '
                  '"input": {"float_values": [1]}, "target": {"float_values": [1]}}',
                  token_file=token_file)
  assert r.returncode == 1, r.stderr
  assert re.fullmatch(r"Evaluate failed: UNAUTHENTICATED: .* \(request_id cli-1\)\n" +
                      re.escape(hint) + "\n", r.stderr), r.stderr
