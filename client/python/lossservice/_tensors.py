"""numpy arrays (and torch tensors) <-> lossservice.v1.Tensor, as raw_data."""

import sys

import grpc
import numpy as np

from lossservice._errors import LossServiceError
from lossservice.v1 import loss_service_pb2 as pb

_TO_PROTO = {
    np.dtype(np.float32): pb.DATA_TYPE_FLOAT32,
    np.dtype(np.float64): pb.DATA_TYPE_FLOAT64,
    np.dtype(np.int64): pb.DATA_TYPE_INT64,
    np.dtype(np.int32): pb.DATA_TYPE_INT32,
}
_FROM_PROTO = {
    pb.DATA_TYPE_FLOAT32: np.dtype("<f4"),
    pb.DATA_TYPE_FLOAT64: np.dtype("<f8"),
    pb.DATA_TYPE_INT64: np.dtype("<i8"),
    pb.DATA_TYPE_INT32: np.dtype("<i4"),
}

# What an argument holds: "float" (inputs, float targets, weights, ...),
# "index" (class indices, CTC labels and lengths) or "any" (cross_entropy's
# target: indices or probabilities). Only Python lists and scalars, which
# carry no dtype, are converted by it: a list of ints for a "float" argument
# becomes float64.
FLOAT, INDEX, ANY = "float", "index", "any"


def is_torch(value):
  torch = sys.modules.get("torch")
  return torch is not None and isinstance(value, torch.Tensor)


def as_array(value, name, kind=ANY):
  """The value as a C-contiguous little-endian ndarray of a contract dtype."""
  if is_torch(value):
    value = value.detach().cpu().numpy()
  if isinstance(value, np.ndarray) or np.isscalar(value) and isinstance(value, np.generic):
    a = np.asarray(value)
  else:
    a = np.asarray(value)
    if kind == FLOAT and a.dtype.kind in "biu":
      a = a.astype(np.float64)
  if a.dtype.kind in "biu" and a.dtype not in _TO_PROTO:
    a = a.astype(np.int64)  # bool, int8, uint8, int16, ...: class indices or labels
  native = a.dtype.newbyteorder("=")
  if native not in _TO_PROTO:
    raise LossServiceError(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"{name}: dtype {a.dtype} is not supported; use float32 or float64 (int64 or int32 "
        "for class indices)")
  return np.ascontiguousarray(a, dtype=native.newbyteorder("<"))


def to_proto(value, name, kind=ANY):
  a = as_array(value, name, kind)
  return pb.Tensor(shape=a.shape, dtype=_TO_PROTO[a.dtype.newbyteorder("=")],
                   raw_data=a.tobytes())


def from_proto(t, name, torch_out=False):
  """A response tensor in any encoding the contract allows, as an ndarray (a
  torch tensor if torch_out)."""
  shape = tuple(t.shape)
  n = int(np.prod(shape, dtype=np.int64)) if shape else 1
  if t.raw_data or (n == 0 and t.dtype in _FROM_PROTO):
    if t.dtype not in _FROM_PROTO:
      raise LossServiceError(grpc.StatusCode.INTERNAL,
                             f"response {name} has raw_data of dtype {t.dtype}")
    dtype = _FROM_PROTO[t.dtype]
    if len(t.raw_data) != n * dtype.itemsize:
      raise LossServiceError(grpc.StatusCode.INTERNAL,
                             f"response {name} has {len(t.raw_data)} bytes for shape {shape}")
    a = np.frombuffer(t.raw_data, dtype=dtype).astype(dtype.newbyteorder("="))
  else:
    for field, dtype in (("float_values", np.float32), ("double_values", np.float64),
                         ("int64_values", np.int64), ("int32_values", np.int32)):
      values = getattr(t, field)
      if len(values):
        a = np.array(values, dtype=dtype)
        break
    else:
      a = np.zeros(0, dtype=np.float32)
    if a.size != n:
      raise LossServiceError(grpc.StatusCode.INTERNAL,
                             f"response {name} has {a.size} values for shape {shape}")
  a = a.reshape(shape)
  if torch_out:
    import torch
    return torch.from_numpy(a)
  return a
