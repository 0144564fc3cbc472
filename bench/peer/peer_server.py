#!/usr/bin/python3
"""A Python grpcio + PyTorch server of the lossservice contract, for comparison.

This is what a Python team would write in an afternoon: grpcio's thread-pool
server, the generated messages, torch.nn.functional for the losses and
autograd for the gradients. bench/bench_service.sh runs the same load against
it and against loss_server; it is not a reference for correctness (the
goldens and tools/parity.py are).

The stubs are generated at start-up into a temporary directory with protoc and
Debian's grpc_python_plugin (python3-grpc-tools is too old for proto3
`optional`); nothing generated is kept.

  bench/peer/peer_server.py --address 127.0.0.1:0 --workers 8
prints "listening on 127.0.0.1:PORT" once it serves.
"""
import argparse
import concurrent.futures
import importlib
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import torch
import torch.nn.functional as F

import grpc

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROTO = "lossservice/v1/loss_service.proto"


def load_stubs():
    out = tempfile.mkdtemp(prefix="lossservice_peer_")
    subprocess.run(
        ["protoc", "-I", os.path.join(ROOT, "proto"), f"--python_out={out}",
         f"--grpc_python_out={out}", "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin",
         PROTO],
        check=True)
    for d in ("lossservice", "lossservice/v1"):
        open(os.path.join(out, d, "__init__.py"), "a").close()
    sys.path.insert(0, out)
    pb = importlib.import_module("lossservice.v1.loss_service_pb2")
    rpc = importlib.import_module("lossservice.v1.loss_service_pb2_grpc")
    return pb, rpc


pb, rpc = load_stubs()
# torch.from_numpy over a message's bytes is read-only, which is what we want.
warnings.filterwarnings("ignore", message="The given NumPy array is not writable")

NP = {pb.DATA_TYPE_FLOAT32: np.float32, pb.DATA_TYPE_FLOAT64: np.float64,
      pb.DATA_TYPE_INT64: np.int64, pb.DATA_TYPE_INT32: np.int32}
TO_PROTO = {torch.float32: pb.DATA_TYPE_FLOAT32, torch.float64: pb.DATA_TYPE_FLOAT64}
REDUCTIONS = {pb.REDUCTION_UNSPECIFIED: "mean", pb.REDUCTION_MEAN: "mean",
              pb.REDUCTION_SUM: "sum", pb.REDUCTION_NONE: "none",
              pb.REDUCTION_BATCHMEAN: "batchmean"}


class BadRequest(Exception):
    pass


def to_torch(t, name):
    shape = tuple(t.shape)
    if t.raw_data:
        if t.dtype not in NP:
            raise BadRequest(f"{name}: raw_data needs dtype")
        a = np.frombuffer(t.raw_data, dtype=NP[t.dtype])
    elif len(t.float_values):
        a = np.asarray(t.float_values, dtype=np.float32)
    elif len(t.double_values):
        a = np.asarray(t.double_values, dtype=np.float64)
    elif len(t.int64_values):
        a = np.asarray(t.int64_values, dtype=np.int64)
    elif len(t.int32_values):
        a = np.asarray(t.int32_values, dtype=np.int32)
    else:
        a = np.zeros(0, dtype=NP.get(t.dtype, np.float32))
    try:
        # No copy: the tensor reads the message's bytes (it is never written).
        return torch.from_numpy(a).reshape(shape)
    except RuntimeError as e:
        raise BadRequest(f"{name}: {e}")


def to_proto(x, raw, out):
    x = x.detach().contiguous()
    out.shape[:] = list(x.shape)
    out.dtype = TO_PROTO[x.dtype]
    if raw:
        out.raw_data = x.numpy().tobytes()
    elif x.dtype == torch.float64:
        out.double_values[:] = x.reshape(-1).tolist()
    else:
        out.float_values[:] = x.reshape(-1).tolist()


def opt(msg, field, default):
    return getattr(msg, field) if msg.HasField(field) else default


def tensor_opt(msg, field, dtype):
    return to_torch(getattr(msg, field), field).to(dtype) if msg.HasField(field) else None


def compute_loss(q, x, y):
    kind = q.WhichOneof("loss")
    p = getattr(q, kind) if kind else None
    red = REDUCTIONS.get(q.reduction)
    if red is None:
        raise BadRequest("unknown reduction")
    d = x.dtype
    if kind == "mse":
        return F.mse_loss(x, y.to(d), reduction=red)
    if kind == "l1":
        return F.l1_loss(x, y.to(d), reduction=red)
    if kind == "rmse":
        return torch.sqrt(F.mse_loss(x, y.to(d)) + opt(p, "eps", 1e-7))
    if kind == "huber":
        return F.huber_loss(x, y.to(d), reduction=red, delta=opt(p, "delta", 1.0))
    if kind == "smooth_l1":
        return F.smooth_l1_loss(x, y.to(d), reduction=red, beta=opt(p, "beta", 1.0))
    if kind == "cross_entropy":
        yy = y.long() if not y.is_floating_point() else y.to(d)
        return F.cross_entropy(x, yy, weight=tensor_opt(p, "weight", d), reduction=red,
                               ignore_index=opt(p, "ignore_index", -100),
                               label_smoothing=p.label_smoothing)
    if kind == "nll":
        return F.nll_loss(x, y.long(), weight=tensor_opt(p, "weight", d), reduction=red,
                          ignore_index=opt(p, "ignore_index", -100))
    if kind == "bce":
        return F.binary_cross_entropy(x, y.to(d), weight=tensor_opt(p, "weight", d), reduction=red)
    if kind == "bce_with_logits":
        return F.binary_cross_entropy_with_logits(
            x, y.to(d), weight=tensor_opt(p, "weight", d), reduction=red,
            pos_weight=tensor_opt(p, "pos_weight", d))
    if kind == "kl_div":
        return F.kl_div(x, y.to(d), reduction=red, log_target=p.log_target)
    if kind == "poisson_nll":
        return F.poisson_nll_loss(x, y.to(d), log_input=opt(p, "log_input", True), full=p.full,
                                  eps=opt(p, "eps", 1e-8), reduction=red)
    if kind == "gaussian_nll":
        return F.gaussian_nll_loss(x, y.to(d), tensor_opt(p, "var", d), full=p.full,
                                   eps=opt(p, "eps", 1e-6), reduction=red)
    if kind == "soft_margin":
        return F.soft_margin_loss(x, y.to(d), reduction=red)
    if kind == "multilabel_soft_margin":
        return F.multilabel_soft_margin_loss(x, y.to(d), weight=tensor_opt(p, "weight", d),
                                             reduction=red)
    if kind == "multi_margin":
        return F.multi_margin_loss(x, y.long(), p=opt(p, "p", 1), margin=opt(p, "margin", 1.0),
                                   weight=tensor_opt(p, "weight", d), reduction=red)
    if kind == "multilabel_margin":
        return F.multilabel_margin_loss(x, y.long(), reduction=red)
    if kind == "hinge_embedding":
        return F.hinge_embedding_loss(x, y.to(d), margin=opt(p, "margin", 1.0), reduction=red)
    if kind == "margin_ranking":
        return F.margin_ranking_loss(x, tensor_opt(p, "input2", d), y.to(d), margin=p.margin,
                                     reduction=red)
    if kind == "cosine_embedding":
        return F.cosine_embedding_loss(x, tensor_opt(p, "input2", d), y.to(d), margin=p.margin,
                                       reduction=red)
    if kind == "triplet_margin":
        return F.triplet_margin_loss(x, tensor_opt(p, "positive", d), tensor_opt(p, "negative", d),
                                     margin=opt(p, "margin", 1.0), p=opt(p, "p", 2.0),
                                     eps=opt(p, "eps", 1e-6), swap=p.swap, reduction=red)
    if kind == "ctc":
        return F.ctc_loss(x, y.long(), to_torch(p.input_lengths, "input_lengths").long(),
                          to_torch(p.target_lengths, "target_lengths").long(), blank=p.blank,
                          reduction=red, zero_infinity=p.zero_infinity)
    raise BadRequest("loss: no loss set")


def evaluate(q):
    raw = bool(q.input.raw_data)
    x = to_torch(q.input, "input")
    if not x.is_floating_point():
        raise BadRequest("input must be FLOAT32 or FLOAT64")
    y = to_torch(q.target, "target") if q.HasField("target") else None
    x.requires_grad_(q.compute_grad)
    try:
        loss = compute_loss(q, x, y)
    except (RuntimeError, ValueError, IndexError, TypeError) as e:
        raise BadRequest(str(e))
    r = pb.EvaluateResponse(request_id=q.request_id)
    if q.compute_grad:
        go = to_torch(q.grad_output, "grad_output").to(x.dtype) if q.HasField("grad_output") \
            else torch.ones_like(loss)
        (grad,) = torch.autograd.grad(loss, x, go)
        to_proto(grad, raw, r.grad)
    to_proto(loss, raw, r.loss)
    return r


class Service(rpc.LossServiceServicer):
    def Evaluate(self, request, context):
        try:
            return evaluate(request)
        except BadRequest as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))

    def EvaluateStream(self, request_iterator, context):
        for q in request_iterator:
            try:
                yield pb.EvaluateStreamResponse(response=evaluate(q))
            except BadRequest as e:
                yield pb.EvaluateStreamResponse(error=pb.Error(
                    code=grpc.StatusCode.INVALID_ARGUMENT.value[0], message=str(e),
                    request_id=q.request_id))

    def Activate(self, request, context):
        try:
            x = to_torch(request.input, "input")
            a = request.activation
            dim = request.dim if request.HasField("dim") else -1
            if a == pb.ACTIVATION_SIGMOID:
                y = torch.sigmoid(x)
            elif a == pb.ACTIVATION_SOFTMAX:
                y = torch.softmax(x, dim)
            elif a == pb.ACTIVATION_LOG_SOFTMAX:
                y = torch.log_softmax(x, dim)
            elif a == pb.ACTIVATION_LOGIT:
                y = torch.logit(x, request.eps if request.HasField("eps") else None)
            else:
                raise BadRequest("activation: not set")
        except (BadRequest, RuntimeError, IndexError) as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        r = pb.ActivateResponse()
        to_proto(y, bool(request.input.raw_data), r.output)
        return r

    def ListLosses(self, request, context):
        r = pb.ListLossesResponse()
        for f in pb.EvaluateRequest.DESCRIPTOR.oneofs_by_name["loss"].fields:
            r.losses.add(name=f.name, field_number=f.number, has_grad=True)
        return r


def health_handler():
    # grpc.health.v1.Health/Check on raw bytes: HealthCheckResponse{SERVING}.
    check = grpc.unary_unary_rpc_method_handler(lambda request, context: b"\x08\x01")
    return grpc.method_handlers_generic_handler("grpc.health.v1.Health", {"Check": check})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--address", default="127.0.0.1:0")
    ap.add_argument("--workers", type=int, default=8, help="grpcio's handler threads")
    ap.add_argument("--torch_threads", type=int, default=os.cpu_count())
    ap.add_argument("--max_message_mb", type=int, default=64)
    args = ap.parse_args()
    torch.set_num_threads(args.torch_threads)
    limit = args.max_message_mb * 1024 * 1024
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=args.workers),
                         options=[("grpc.max_receive_message_length", limit),
                                  ("grpc.max_send_message_length", -1)])
    rpc.add_LossServiceServicer_to_server(Service(), server)
    server.add_generic_rpc_handlers((health_handler(),))
    port = server.add_insecure_port(args.address)
    server.start()
    print(f"listening on {args.address.rsplit(':', 1)[0]}:{port}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
