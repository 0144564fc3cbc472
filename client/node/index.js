'use strict';
/**
 * lossservice: PyTorch's loss functions over gRPC, called like
 * torch.nn.functional (in camelCase).
 *
 *   const { LossClient, tensor } = require('lossservice');
 *   const client = new LossClient('localhost:50051');
 *   const logits = tensor(new Float32Array([0.1, 2, -1, 0.5, 0.5, 0]), [2, 3]);
 *   const { loss, grad } = await client.crossEntropy(logits, new BigInt64Array([1n, 0n]), { grad: true });
 *   loss.item();  // a Number; grad: a Tensor of logits' shape
 *
 * Tensors: Float32Array, Float64Array, BigInt64Array (int64), Int32Array, a
 * { data, shape } object or tensor(data, shape); results are Tensors
 * ({ data, shape, dtype }) of the input's dtype. Every failure rejects with
 * LossServiceError (code, codeName, message, requestId).
 */

const { LossClient, channelOptions, DEFAULT_MAX_MESSAGE_BYTES, RETRY_SERVICE_CONFIG } = require('./lib/client');
const { LossServiceError } = require('./lib/errors');
const { requests, Request } = require('./lib/requests');
const { Tensor, tensor } = require('./lib/tensor');

module.exports = {
  LossClient,
  LossServiceError,
  Tensor,
  tensor,
  requests,
  Request,
  channelOptions,
  DEFAULT_MAX_MESSAGE_BYTES,
  RETRY_SERVICE_CONFIG,
};
