'use strict';
// The one error type of the lossservice client.

const { status: Status } = require('@grpc/grpc-js');

const CODE_NAMES = Object.fromEntries(Object.entries(Status).map(([name, code]) => [code, name]));

/** Every failure of a lossservice call rejects with this: code (a gRPC status
 * number, e.g. 3), codeName ('INVALID_ARGUMENT'), message (for
 * INVALID_ARGUMENT it names the field and the shapes) and requestId (the id
 * the call carried; undefined for calls that have none, such as
 * activations). */
class LossServiceError extends Error {
  constructor(code, message, requestId) {
    super(message);
    this.name = 'LossServiceError';
    this.code = code;
    this.codeName = CODE_NAMES[code] || `CODE_${code}`;
    this.requestId = requestId;
  }

  toString() {
    return `${this.name}: ${this.codeName}: ${this.message}` +
      (this.requestId ? ` (request_id ${this.requestId})` : '');
  }

  static fromServiceError(error, requestId) {
    const code = typeof error.code === 'number' ? error.code : Status.UNKNOWN;
    return new LossServiceError(code, error.details || error.message || '', requestId);
  }
}

module.exports = { LossServiceError, Status };
