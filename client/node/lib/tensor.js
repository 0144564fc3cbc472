'use strict';
// Typed arrays <-> lossservice.v1.Tensor, sent as raw_data (little-endian).

const os = require('os');
const { LossServiceError, Status } = require('./errors');

if (os.endianness() !== 'LE') {
  throw new Error('lossservice: raw_data is little-endian; this client copies memory as it is');
}

const DTYPES = {
  float32: { proto: 'DATA_TYPE_FLOAT32', Array: Float32Array },
  float64: { proto: 'DATA_TYPE_FLOAT64', Array: Float64Array },
  int64: { proto: 'DATA_TYPE_INT64', Array: BigInt64Array },
  int32: { proto: 'DATA_TYPE_INT32', Array: Int32Array },
};
const FROM_PROTO = Object.fromEntries(Object.entries(DTYPES).map(([k, v]) => [v.proto, k]));

function dtypeOf(data) {
  for (const [name, d] of Object.entries(DTYPES)) if (data instanceof d.Array) return name;
  return null;
}

/** A dense row-major tensor: data (Float32Array, Float64Array, BigInt64Array
 * or Int32Array) and shape ([] is a scalar). */
class Tensor {
  constructor(data, shape) {
    const dtype = dtypeOf(data);
    if (!dtype) {
      throw new TypeError('Tensor data must be a Float32Array, Float64Array, BigInt64Array or Int32Array');
    }
    this.data = data;
    this.shape = shape === undefined ? [data.length] : shape.map(Number);
    this.dtype = dtype;
    const n = this.shape.reduce((a, b) => a * b, 1);
    if (this.shape.some((d) => !Number.isInteger(d) || d < 0) || n !== data.length) {
      throw new TypeError(`Tensor: ${data.length} values for shape [${this.shape.join(', ')}]`);
    }
  }

  /** The value of a one-element tensor, as a Number. */
  item() {
    if (this.data.length !== 1) {
      throw new RangeError(`item() of a tensor of shape [${this.shape.join(', ')}]`);
    }
    return Number(this.data[0]);
  }

  /** The values as a plain (flat) Array of Numbers. */
  toArray() {
    return Array.from(this.data, Number);
  }
}

// What an argument holds: 'float' (inputs, float targets, weights, ...),
// 'index' (class indices, CTC labels and lengths) or 'any' (cross_entropy's
// target: indices or probabilities). Only plain Arrays, which carry no dtype,
// are converted by it: to Float64Array for 'float', BigInt64Array for 'index',
// and for 'any' BigInt64Array when every value is an integer.
const FLOAT = 'float';
const INDEX = 'index';
const ANY = 'any';

function flatten(array, name) {
  const shape = [];
  for (let a = array; Array.isArray(a); a = a[0]) shape.push(a.length);
  const flat = [];
  const walk = (a, depth) => {
    if (depth === shape.length) {
      if (typeof a !== 'number' && typeof a !== 'bigint' && typeof a !== 'boolean') {
        throw new LossServiceError(Status.INVALID_ARGUMENT, `${name}: ${typeof a} in an array of numbers`);
      }
      flat.push(a);
      return;
    }
    if (!Array.isArray(a) || a.length !== shape[depth]) {
      throw new LossServiceError(Status.INVALID_ARGUMENT, `${name}: a ragged nested array`);
    }
    for (const b of a) walk(b, depth + 1);
  };
  walk(array, 0);
  return { flat, shape };
}

/** value -> Tensor: a Tensor, {data, shape}, a typed array (1-d), a number
 * (0-d) or a (nested) plain Array. */
function asTensor(value, name, kind = ANY) {
  if (value instanceof Tensor) return value;
  try {
    if (value && typeof value === 'object' && !Array.isArray(value) && 'data' in value) {
      return new Tensor(value.data, value.shape);
    }
    if (ArrayBuffer.isView(value)) return new Tensor(value);
  } catch (e) {
    throw new LossServiceError(Status.INVALID_ARGUMENT, `${name}: ${e.message}`);
  }
  if (typeof value === 'number' || typeof value === 'bigint' || Array.isArray(value)) {
    const { flat, shape } = Array.isArray(value) ? flatten(value, name) : { flat: [value], shape: [] };
    const integers = flat.every((v) => typeof v === 'bigint' || typeof v === 'boolean' || Number.isInteger(v));
    if (kind === INDEX || (kind === ANY && integers && flat.length > 0)) {
      if (!integers) {
        throw new LossServiceError(Status.INVALID_ARGUMENT, `${name}: class indices must be integers`);
      }
      return new Tensor(BigInt64Array.from(flat, (v) => BigInt(v)), shape);
    }
    return new Tensor(Float64Array.from(flat, Number), shape);
  }
  throw new LossServiceError(
    Status.INVALID_ARGUMENT,
    `${name}: expected a Float32Array, Float64Array, BigInt64Array, Int32Array, {data, shape}, ` +
      `a number or an Array, not ${value === null ? 'null' : typeof value}`,
  );
}

function toProto(value, name, kind) {
  const t = asTensor(value, name, kind);
  const bytes = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  return { shape: t.shape, dtype: DTYPES[t.dtype].proto, raw_data: Buffer.from(bytes) };
}

/** A response tensor, in any encoding the contract allows, as a Tensor. */
function fromProto(t, name) {
  const shape = (t.shape || []).map(Number);
  const n = shape.reduce((a, b) => a * b, 1);
  const raw = t.raw_data;
  if ((raw && raw.length > 0) || (n === 0 && FROM_PROTO[t.dtype])) {
    const dtype = FROM_PROTO[t.dtype];
    if (!dtype) throw new LossServiceError(Status.INTERNAL, `response ${name} has raw_data of dtype ${t.dtype}`);
    const A = DTYPES[dtype].Array;
    const length = raw ? raw.length : 0;
    if (length !== n * A.BYTES_PER_ELEMENT) {
      throw new LossServiceError(Status.INTERNAL, `response ${name} has ${length} bytes for shape [${shape}]`);
    }
    const copy = new ArrayBuffer(length);
    if (length) new Uint8Array(copy).set(raw);
    return new Tensor(new A(copy), shape);
  }
  const fields = [
    ['float_values', Float32Array],
    ['double_values', Float64Array],
    ['int64_values', BigInt64Array],
    ['int32_values', Int32Array],
  ];
  for (const [field, A] of fields) {
    const values = t[field];
    if (values && values.length) {
      if (values.length !== n) {
        throw new LossServiceError(Status.INTERNAL, `response ${name} has ${values.length} values for shape [${shape}]`);
      }
      return new Tensor(A === BigInt64Array ? A.from(values, (v) => BigInt(v)) : A.from(values, Number), shape);
    }
  }
  if (n !== 0) throw new LossServiceError(Status.INTERNAL, `response ${name} holds no values for shape [${shape}]`);
  return new Tensor(new Float32Array(0), shape);
}

/** tensor(values, shape, dtype): a Tensor from a typed array or plain Array;
 * dtype ('float32', 'float64', 'int64', 'int32') converts a plain Array. */
function tensor(values, shape, dtype) {
  if (dtype) {
    if (!DTYPES[dtype]) throw new TypeError(`tensor: unknown dtype ${dtype}`);
    const A = DTYPES[dtype].Array;
    const flat = Array.isArray(values) ? flatten(values, 'tensor').flat : Array.from(values);
    values = A === BigInt64Array ? A.from(flat, (v) => BigInt(v)) : A.from(flat, Number);
  } else if (Array.isArray(values)) {
    const t = asTensor(values, 'tensor', ANY);
    return shape === undefined ? t : new Tensor(t.data, shape);
  }
  return new Tensor(values, shape);
}

module.exports = { Tensor, tensor, asTensor, toProto, fromProto, FLOAT, INDEX, ANY };
