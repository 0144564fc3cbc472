'use strict';
// Evaluation requests, one builder per loss, named as torch.nn.functional's
// in camelCase and defaulted as in torch. The tensors torch takes
// positionally are arguments; everything else is one options object:
//
//   requests.crossEntropy(input, target, { weight, ignoreIndex: -100,
//       reduction: 'mean', labelSmoothing: 0, grad: false, gradOutput, requestId })
//
// grad: also return d(loss)/d(first argument); gradOutput: the upstream
// gradient, shaped like the loss (default ones); requestId: echoed by the
// server and logged (default a random one). LossClient's method of the same
// name builds its request here and sends it; build them directly to send
// many over one stream with LossClient.evaluateMany.

const crypto = require('crypto');
const { LossServiceError, Status } = require('./errors');
const { toProto, FLOAT, INDEX, ANY } = require('./tensor');

const REDUCTIONS = {
  mean: 'REDUCTION_MEAN',
  sum: 'REDUCTION_SUM',
  none: 'REDUCTION_NONE',
  batchmean: 'REDUCTION_BATCHMEAN',
};
const COMMON = ['reduction', 'grad', 'gradOutput', 'requestId', 'timeout'];

// An argument: where it goes ('input', 'target' or a field of the loss
// message) and what it holds.
const arg = (name, to, kind = FLOAT) => ({ name, to, kind });
const input = (name = 'input') => arg(name, 'input');
const target = (kind = FLOAT, name = 'target') => arg(name, 'target', kind);
// An option: its proto field, its type ('tensor', 'index', 'number', 'int',
// 'bool') and torch's default (undefined: not sent).
const opt = (field, type, dflt) => ({ field, type, dflt });

/** Every loss: [builder name, EvaluateRequest oneof field, positional
 * arguments, options]. The order is the proto's. */
const LOSSES = [
  ['mseLoss', 'mse', [input(), target()], {}],
  ['l1Loss', 'l1', [input(), target()], {}],
  ['rmseLoss', 'rmse', [input(), target()], { eps: opt('eps', 'number', 1e-7) }],
  ['huberLoss', 'huber', [input(), target()], { delta: opt('delta', 'number', 1.0) }],
  ['smoothL1Loss', 'smooth_l1', [input(), target()], { beta: opt('beta', 'number', 1.0) }],
  ['crossEntropy', 'cross_entropy', [input(), target(ANY)], {
    weight: opt('weight', 'tensor'),
    ignoreIndex: opt('ignore_index', 'int', -100),
    labelSmoothing: opt('label_smoothing', 'number', 0.0),
  }],
  ['nllLoss', 'nll', [input(), target(INDEX)], {
    weight: opt('weight', 'tensor'),
    ignoreIndex: opt('ignore_index', 'int', -100),
  }],
  ['binaryCrossEntropy', 'bce', [input(), target()], { weight: opt('weight', 'tensor') }],
  ['binaryCrossEntropyWithLogits', 'bce_with_logits', [input(), target()], {
    weight: opt('weight', 'tensor'),
    posWeight: opt('pos_weight', 'tensor'),
  }],
  ['klDiv', 'kl_div', [input(), target()], { logTarget: opt('log_target', 'bool', false) }],
  ['poissonNllLoss', 'poisson_nll', [input(), target()], {
    logInput: opt('log_input', 'bool', true),
    full: opt('full', 'bool', false),
    eps: opt('eps', 'number', 1e-8),
  }],
  ['gaussianNllLoss', 'gaussian_nll', [input(), target(), arg('var', 'var')], {
    full: opt('full', 'bool', false),
    eps: opt('eps', 'number', 1e-6),
  }],
  ['softMarginLoss', 'soft_margin', [input(), target()], {}],
  ['multilabelSoftMarginLoss', 'multilabel_soft_margin', [input(), target()], {
    weight: opt('weight', 'tensor'),
  }],
  ['multiMarginLoss', 'multi_margin', [input(), target(INDEX)], {
    p: opt('p', 'int', 1),
    margin: opt('margin', 'number', 1.0),
    weight: opt('weight', 'tensor'),
  }],
  ['multilabelMarginLoss', 'multilabel_margin', [input(), target(INDEX)], {}],
  ['hingeEmbeddingLoss', 'hinge_embedding', [input(), target()], { margin: opt('margin', 'number', 1.0) }],
  ['marginRankingLoss', 'margin_ranking', [input('input1'), arg('input2', 'input2'), target()], {
    margin: opt('margin', 'number', 0.0),
  }],
  ['cosineEmbeddingLoss', 'cosine_embedding', [input('input1'), arg('input2', 'input2'), target()], {
    margin: opt('margin', 'number', 0.0),
  }],
  ['tripletMarginLoss', 'triplet_margin',
    [input('anchor'), arg('positive', 'positive'), arg('negative', 'negative')], {
      margin: opt('margin', 'number', 1.0),
      p: opt('p', 'number', 2.0),
      eps: opt('eps', 'number', 1e-6),
      swap: opt('swap', 'bool', false),
    }],
  ['ctcLoss', 'ctc',
    [input('logProbs'), target(INDEX, 'targets'), arg('inputLengths', 'input_lengths', INDEX),
      arg('targetLengths', 'target_lengths', INDEX)], {
      blank: opt('blank', 'int', 0),
      zeroInfinity: opt('zero_infinity', 'bool', false),
    }],
];

function newRequestId() {
  return crypto.randomBytes(8).toString('hex');
}

/** One EvaluateRequest (message, as @grpc/proto-loader takes it) and whether
 * its gradient comes back. */
class Request {
  constructor(message, grad) {
    this.message = message;
    this.grad = grad;
  }

  get requestId() {
    return this.message.request_id;
  }
}

function invalid(message, requestId) {
  return new LossServiceError(Status.INVALID_ARGUMENT, message, requestId);
}

function makeBuilder(name, loss, positional, options) {
  const allowed = new Set([...Object.keys(options), ...COMMON]);
  const builder = (...args) => {
    const o = args.length > positional.length ? args[positional.length] || {} : {};
    const requestId = o.requestId || newRequestId();
    if (args.length > positional.length + 1 || typeof o !== 'object' || Array.isArray(o) ||
        ArrayBuffer.isView(o)) {
      throw invalid(`${name} takes ${positional.map((p) => p.name).join(', ')} and an options object`,
        requestId);
    }
    for (const key of Object.keys(o)) {
      if (!allowed.has(key)) {
        throw invalid(`${name}: unknown option '${key}' (options: ${[...allowed].join(', ')})`, requestId);
      }
    }
    try {
      const reduction = o.reduction === undefined ? 'mean' : o.reduction;
      if (!(reduction in REDUCTIONS)) {
        throw invalid(`reduction: '${reduction}' is not one of 'mean', 'sum', 'none', 'batchmean'`);
      }
      const m = {};
      const q = {
        reduction: REDUCTIONS[reduction],
        compute_grad: Boolean(o.grad),
        request_id: requestId,
        [loss]: m,
      };
      positional.forEach((p, i) => {
        if (args[i] === undefined) throw invalid(`${name}: missing argument ${p.name}`);
        const proto = toProto(args[i], p.to === 'input' || p.to === 'target' ? p.name : `${loss}.${p.to}`, p.kind);
        if (p.to === 'input' || p.to === 'target') q[p.to] = proto;
        else m[p.to] = proto;
      });
      if (o.gradOutput !== undefined) q.grad_output = toProto(o.gradOutput, 'grad_output', FLOAT);
      for (const [key, spec] of Object.entries(options)) {
        const v = o[key] === undefined ? spec.dflt : o[key];
        if (v === undefined || v === null) continue;
        const field = `${loss}.${spec.field}`;
        if (spec.type === 'tensor') {
          m[spec.field] = toProto(v, field, FLOAT);
        } else if (spec.type === 'bool') {
          m[spec.field] = Boolean(v);
        } else {
          const n = Number(v);
          if (!Number.isFinite(n) && spec.type === 'int') throw invalid(`${field}: ${v} is not an integer`);
          if (spec.type === 'int' && !Number.isInteger(n)) throw invalid(`${field}: ${v} is not an integer`);
          m[spec.field] = n;
        }
      }
      return new Request(q, Boolean(o.grad));
    } catch (e) {
      if (e instanceof LossServiceError) throw new LossServiceError(e.code, e.message, requestId);
      throw e;
    }
  };
  Object.defineProperty(builder, 'name', { value: name });
  builder.loss = loss;
  builder.positional = positional.map((p) => p.name);
  builder.options = Object.fromEntries(Object.entries(options).map(([k, s]) => [k, s.dflt]));
  return builder;
}

const requests = {};
for (const [name, loss, positional, options] of LOSSES) {
  requests[name] = makeBuilder(name, loss, positional, options);
}

module.exports = { requests, Request, LOSSES, REDUCTIONS, newRequestId };
