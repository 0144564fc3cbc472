'use strict';
// LossClient: a channel to a lossservice server and one method per loss.

const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const { LossServiceError, Status } = require('./errors');
const { requests, REDUCTIONS } = require('./requests');
const { toProto, fromProto, FLOAT } = require('./tensor');

/** Largest message sent and received by default, in bytes (gRPC's own
 * receive default is 4 MiB, less than a 2M-float gradient). */
const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/** The channel's service config by default: calls that fail with UNAVAILABLE
 * are retried, up to 5 attempts, backoff from 0.1 s doubling to 2 s. */
const RETRY_SERVICE_CONFIG = {
  methodConfig: [{
    name: [{ service: 'lossservice.v1.LossService' }],
    retryPolicy: {
      maxAttempts: 5,
      initialBackoff: '0.1s',
      maxBackoff: '2s',
      backoffMultiplier: 2,
      retryableStatusCodes: ['UNAVAILABLE'],
    },
  }],
};

const PROTO = path.join('lossservice', 'v1', 'loss_service.proto');

/** The folder holding lossservice/v1/loss_service.proto: $LOSSSERVICE_PROTO_DIR,
 * the package's own proto/ (an npm pack), or the repository's proto/. */
function protoRoot() {
  const candidates = [process.env.LOSSSERVICE_PROTO_DIR, path.join(__dirname, '..', 'proto'),
    path.join(__dirname, '..', '..', '..', 'proto')];
  for (const dir of candidates) {
    if (dir && fs.existsSync(path.join(dir, PROTO))) return path.resolve(dir);
  }
  throw new Error(`lossservice: cannot find proto/${PROTO}; set LOSSSERVICE_PROTO_DIR`);
}

let service;
function loadService() {
  if (!service) {
    const root = protoRoot();
    const definition = protoLoader.loadSync(path.join(root, PROTO), {
      includeDirs: [root],
      keepCase: true,
      longs: Number,
      enums: String,
      defaults: true,
      oneofs: true,
    });
    service = grpc.loadPackageDefinition(definition).lossservice.v1.LossService;
  }
  return service;
}

/** The gRPC channel options a LossClient uses. */
function channelOptions({
  maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES, retry = true, serviceConfig, tlsServerName,
} = {}) {
  const options = {
    'grpc.max_send_message_length': maxMessageBytes,
    'grpc.max_receive_message_length': maxMessageBytes,
  };
  if (serviceConfig !== undefined && serviceConfig !== null) {
    options['grpc.enable_retries'] = 1;
    options['grpc.service_config'] = typeof serviceConfig === 'string' ? serviceConfig : JSON.stringify(serviceConfig);
  } else if (retry) {
    options['grpc.enable_retries'] = 1;
    options['grpc.service_config'] = JSON.stringify(RETRY_SERVICE_CONFIG);
  } else {
    options['grpc.enable_retries'] = 0;
  }
  if (tlsServerName) options['grpc.ssl_target_name_override'] = tlsServerName;
  return options;
}

// PEM given as a Buffer or as the path of a file.
function pem(value, name) {
  if (value === undefined || value === null) return null;
  if (Buffer.isBuffer(value)) return value;
  if (typeof value === 'string') return fs.readFileSync(value);
  throw new TypeError(`${name}: a Buffer of PEM or a file path`);
}

const REDUCTION_NAMES = Object.fromEntries(Object.entries(REDUCTIONS).map(([k, v]) => [v, k]));
const SERVING_STATUS = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];

// grpc.health.v1 by hand (no package ships its .proto here):
//   message HealthCheckRequest { string service = 1; }
//   message HealthCheckResponse { ServingStatus status = 1; }
function encodeHealthRequest(service) {
  const data = Buffer.from(service, 'utf8');
  if (data.length === 0) return Buffer.alloc(0);
  const length = [];
  for (let n = data.length; ; n >>>= 7) {
    if (n < 0x80) { length.push(n); break; }
    length.push((n & 0x7f) | 0x80);
  }
  return Buffer.concat([Buffer.from([0x0a, ...length]), data]);
}

function decodeHealthStatus(buffer) {
  let status = 0;
  let i = 0;
  const varint = () => {
    let v = 0;
    for (let shift = 0; ; shift += 7) {
      const b = buffer[i++];
      if (b === undefined) throw new Error('truncated HealthCheckResponse');
      v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return v;
    }
  };
  while (i < buffer.length) {
    const key = varint();
    if ((key & 7) !== 0) throw new Error('unexpected HealthCheckResponse field');
    const value = varint();
    if (key >>> 3 === 1) status = value;
  }
  return status;
}

/**
 * A connection to a lossservice server.
 *
 *   const client = new LossClient('localhost:50051');
 *   const { loss, grad } = await client.crossEntropy(logits, labels, { grad: true });
 *
 * Options: timeout (ms per call; 0: none; every method also takes timeout),
 * tls (verify the server with rootCertificates: a Buffer of PEM or a file
 * path; default gRPC's roots), privateKey and certificateChain (the client's
 * certificate, for mutual TLS), tlsServerName (the name the server's
 * certificate carries, if not the address's host), token (sent as
 * "authorization: Bearer <token>" on every call), maxMessageBytes (send and
 * receive limit, default 64 MiB), retry (retry UNAVAILABLE, default true),
 * serviceConfig (a service config of your own, an object or JSON, instead of
 * RETRY_SERVICE_CONFIG), channelOptions (more gRPC channel options; they win).
 */
class LossClient {
  constructor(address, {
    timeout = 30000, tls = false, rootCertificates, privateKey, certificateChain, tlsServerName,
    token, maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES, retry = true, serviceConfig,
    channelOptions: extra = {},
  } = {}) {
    this.address = address;
    this.timeout = timeout;
    const credentials = tls
      ? grpc.credentials.createSsl(pem(rootCertificates, 'rootCertificates'), pem(privateKey, 'privateKey'),
        pem(certificateChain, 'certificateChain'))
      : grpc.credentials.createInsecure();
    const Service = loadService();
    this._stub = new Service(address, credentials,
      { ...channelOptions({ maxMessageBytes, retry, serviceConfig, tlsServerName }), ...extra });
    this._token = token;
  }

  close() {
    this._stub.close();
  }

  _callOptions(timeout) {
    const t = timeout === undefined ? this.timeout : timeout;
    return t > 0 ? { deadline: new Date(Date.now() + t) } : {};
  }

  _metadata() {
    const m = new grpc.Metadata();
    if (this._token) m.set('authorization', `Bearer ${this._token}`);
    return m;
  }

  _unary(method, message, timeout, requestId) {
    return new Promise((resolve, reject) => {
      this._stub[method](message, this._metadata(), this._callOptions(timeout), (error, response) => {
        if (error) reject(LossServiceError.fromServiceError(error, requestId));
        else resolve(response);
      });
    });
  }

  static _answer(request, response) {
    try {
      const answer = { loss: fromProto(response.loss, 'loss'), requestId: response.request_id || request.requestId };
      if (request.grad) answer.grad = fromProto(response.grad, 'grad');
      return answer;
    } catch (e) {
      throw new LossServiceError(e.code === undefined ? Status.INTERNAL : e.code, e.message, request.requestId);
    }
  }

  /** Sends one Request of lossservice.requests; resolves to
   * { loss, grad (when asked), requestId }. */
  async evaluate(request, { timeout } = {}) {
    const response = await this._unary('Evaluate', request.message, timeout, request.requestId);
    return LossClient._answer(request, response);
  }

  /**
   * Sends Requests over one EvaluateStream and yields each answer in order,
   * as it arrives: `for await (const r of client.evaluateMany(requests))`.
   * requests may be an array or an (async) iterable, consumed as the stream
   * goes, so a training loop can build each request from the previous
   * answer. A request the server refuses throws its LossServiceError, or with
   * returnExceptions is yielded as one while the stream goes on. What the
   * requests iterable throws (e.g. a builder's LossServiceError) is thrown
   * after the answers to the requests before it. timeout covers the whole
   * stream.
   */
  async *evaluateMany(requests, { timeout, returnExceptions = false } = {}) {
    const call = this._stub.EvaluateStream(this._metadata(), this._callOptions(timeout));
    const sent = [];
    const inbox = [];
    let wake = null;
    let ended = false;
    let failure = null;
    const notify = () => {
      if (wake) { const w = wake; wake = null; w(); }
    };
    call.on('data', (r) => { inbox.push(r); notify(); });
    call.on('error', (e) => { failure = e; notify(); });
    call.on('end', () => { ended = true; notify(); });

    let writeError = null;
    const writer = (async () => {
      try {
        for await (const request of requests) {
          sent.push(request);
          if (!call.write(request.message)) await new Promise((r) => call.once('drain', r));
        }
        call.end();
      } catch (e) {
        // What the caller's iterable threw: thrown once the requests before
        // it are answered.
        writeError = e;
        call.end();
      }
    })();

    try {
      for (;;) {
        while (inbox.length === 0 && !ended && !failure) await new Promise((r) => { wake = r; });
        if (inbox.length === 0) break;
        const response = inbox.shift();
        const request = sent.shift();
        if (response.result === 'error') {
          const e = response.error;
          const error = new LossServiceError(e.code, e.message, e.request_id || (request && request.requestId));
          if (!returnExceptions) throw error;
          yield error;
        } else {
          yield LossClient._answer(request, response.response);
        }
      }
      if (writeError) throw writeError;
      if (failure) throw LossServiceError.fromServiceError(failure);
      await writer;
      if (writeError) throw writeError;
      if (sent.length > 0) {
        throw new LossServiceError(Status.INTERNAL, `EvaluateStream ended with ${sent.length} requests unanswered`);
      }
    } finally {
      if (!ended && !failure) call.cancel();
    }
  }

  async _activate(activation, input, { dim, eps, timeout } = {}) {
    const q = { activation, input: toProto(input, 'input', FLOAT) };
    if (dim !== undefined) q.dim = Number(dim);
    if (eps !== undefined && eps !== null) q.eps = Number(eps);
    const response = await this._unary('Activate', q, timeout);
    return fromProto(response.output, 'output');
  }

  /** torch.sigmoid; resolves to a Tensor of the input's shape and dtype. */
  sigmoid(input, { timeout } = {}) {
    return this._activate('ACTIVATION_SIGMOID', input, { timeout });
  }

  /** torch.nn.functional.softmax over dim (default -1, the last). */
  softmax(input, { dim = -1, timeout } = {}) {
    return this._activate('ACTIVATION_SOFTMAX', input, { dim, timeout });
  }

  /** torch.nn.functional.log_softmax over dim (default -1, the last). */
  logSoftmax(input, { dim = -1, timeout } = {}) {
    return this._activate('ACTIVATION_LOG_SOFTMAX', input, { dim, timeout });
  }

  /** torch.logit: log(p / (1 - p)), p clamped to [eps, 1 - eps] when eps is set. */
  logit(input, { eps, timeout } = {}) {
    return this._activate('ACTIVATION_LOGIT', input, { eps, timeout });
  }

  /** Every loss the server has: { name, fieldNumber, input, target, options,
   * reductions ('mean', ...), hasGrad }, in field-number order. */
  async listLosses({ timeout } = {}) {
    const response = await this._unary('ListLosses', {}, timeout);
    return response.losses.map((l) => ({
      name: l.name,
      fieldNumber: l.field_number,
      input: l.input,
      target: l.target,
      options: l.options,
      reductions: l.reductions.map((r) => REDUCTION_NAMES[r] || r),
      hasGrad: l.has_grad,
    }));
  }

  /** grpc.health.v1.Health/Check: 'SERVING', 'NOT_SERVING', 'UNKNOWN' or
   * 'SERVICE_UNKNOWN' for service ('' is the whole server). */
  health(service = '', { timeout } = {}) {
    return new Promise((resolve, reject) => {
      this._stub.makeUnaryRequest('/grpc.health.v1.Health/Check', encodeHealthRequest, decodeHealthStatus,
        service, this._metadata(), this._callOptions(timeout), (error, status) => {
          if (error) reject(LossServiceError.fromServiceError(error));
          else resolve(SERVING_STATUS[status] || `status ${status}`);
        });
    });
  }
}

// One method per loss: the builder's arguments (and timeout in its options).
for (const [name, builder] of Object.entries(requests)) {
  LossClient.prototype[name] = function loss(...args) {
    let request;
    try {
      request = builder(...args);
    } catch (e) {
      return Promise.reject(e);
    }
    const options = args[builder.positional.length] || {};
    return this.evaluate(request, { timeout: options.timeout });
  };
  Object.defineProperty(LossClient.prototype[name], 'name', { value: name });
}

module.exports = { LossClient, channelOptions, DEFAULT_MAX_MESSAGE_BYTES, RETRY_SERVICE_CONFIG, protoRoot };
