"""lossservice: PyTorch's loss functions over gRPC, called like
torch.nn.functional.

  import numpy as np
  import lossservice

  client = lossservice.LossClient("localhost:50051")
  logits = np.array([[0.1, 2.0, -1.0], [0.5, 0.5, 0.0]], dtype=np.float32)
  loss, grad = client.cross_entropy(logits, np.array([1, 0]), grad=True)

numpy arrays go in and come out (torch tensors too, when the first argument
is one); every failure raises LossServiceError (code, message, request_id).
lossservice.requests builds requests for LossClient.evaluate_many, which sends
them over one stream.
"""

from lossservice._client import (DEFAULT_MAX_MESSAGE_BYTES, RETRY_SERVICE_CONFIG, LossClient,
                                 LossInfo, channel_options)
from lossservice._errors import LossServiceError
from lossservice import requests
from lossservice.requests import Request

__version__ = "0.1.0"

__all__ = ["LossClient", "LossServiceError", "LossInfo", "Request", "requests",
           "channel_options", "DEFAULT_MAX_MESSAGE_BYTES", "RETRY_SERVICE_CONFIG"]
