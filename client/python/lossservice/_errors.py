"""The one exception type of the lossservice client."""

import grpc


class LossServiceError(Exception):
  """Every failure of a lossservice call: a gRPC status code, the message
  (for INVALID_ARGUMENT it names the field and the shapes) and the request id
  the call carried (None for calls that have none, such as activations).

    try:
      client.mse_loss(x, y)
    except lossservice.LossServiceError as e:
      print(e.code, e.message, e.request_id)   # StatusCode.INVALID_ARGUMENT, ...
  """

  def __init__(self, code, message, request_id=None):
    super().__init__(code, message, request_id)
    self.code = code
    self.message = message
    self.request_id = request_id

  def __str__(self):
    s = f"{self.code.name}: {self.message}"
    return s + (f" (request_id {self.request_id})" if self.request_id else "")

  @classmethod
  def from_rpc_error(cls, error, request_id=None):
    code = error.code() if callable(getattr(error, "code", None)) else grpc.StatusCode.UNKNOWN
    details = error.details() if callable(getattr(error, "details", None)) else str(error)
    return cls(code, details or "", request_id)

  @classmethod
  def from_code_number(cls, number, message, request_id=None):
    """From the numeric code of a stream's in-band Error."""
    for code in grpc.StatusCode:
      if code.value[0] == number:
        return cls(code, message, request_id)
    return cls(grpc.StatusCode.UNKNOWN, f"(code {number}) {message}", request_id)
