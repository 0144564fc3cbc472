#!/usr/bin/python3
"""The seed document's perceptron, y = sigmoid(w . x + b) (section 2.1),
trained over the wire.

Each step sends the logits z = X w + b of the whole data set to the service,
which answers binary_cross_entropy_with_logits(z, y) and its gradient
dL/dz; the chain rule through the linear layer (dL/dw = X^T dL/dz,
dL/db = sum dL/dz) and the gradient-descent update happen here, in numpy.
The data are two linearly separable classes drawn around (-2, -2) and
(2, 2). At the end the service's sigmoid gives the probabilities whose
threshold at 0.5 is the accuracy; --out writes the loss curve and the
decision boundary w . x + b = 0 as a PNG.

  examples/perceptron.py --address localhost:50051 --out perceptron.png

Needs the lossservice package (pip install ./client/python) and, for --out,
matplotlib (Debian: python3-matplotlib).
"""

import argparse
import sys

import numpy as np

import lossservice


def two_classes(n, seed):
  """n points in two classes around (-2, -2) (label 0) and (2, 2) (label 1),
  without the points within 0.5 of the line x1 + x2 = 0: separable."""
  rng = np.random.RandomState(seed)
  points, labels = [], []
  while len(points) < n:
    label = len(points) % 2
    p = rng.normal(loc=4.0 * label - 2.0, scale=1.0, size=2)
    if abs(p.sum()) / np.sqrt(2) > 0.5 and (p.sum() > 0) == bool(label):
      points.append(p)
      labels.append(label)
  return np.array(points, dtype=np.float32), np.array(labels, dtype=np.float32)


def train(client, x, y, epochs, lr, log_every, out=sys.stdout):
  """Full-batch gradient descent; returns (w, b, losses)."""
  w = np.zeros(x.shape[1], dtype=np.float32)
  b = np.float32(0.0)
  losses = []
  for epoch in range(1, epochs + 1):
    z = x @ w + b                                   # the linear layer, here
    loss, dz = client.binary_cross_entropy_with_logits(z, y, grad=True)  # the service
    w -= lr * (x.T @ dz)                            # dL/dw = X^T dL/dz
    b -= lr * dz.sum()                              # dL/db = sum dL/dz
    losses.append(float(loss))
    if epoch == 1 or epoch % log_every == 0 or epoch == epochs:
      print(f"epoch {epoch:4d}  loss {float(loss):.6f}", file=out)
  return w, b, losses


def plot(path, x, y, w, b, losses):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
  left.plot(range(1, len(losses) + 1), losses)
  left.set_xlabel("epoch")
  left.set_ylabel("binary_cross_entropy_with_logits")
  left.set_yscale("log")
  left.set_title("loss (computed by lossservice)")
  for label, marker in ((0, "o"), (1, "s")):
    pts = x[y == label]
    right.scatter(pts[:, 0], pts[:, 1], marker=marker, s=14, label=f"class {label}")
  xs = np.linspace(x[:, 0].min() - 0.5, x[:, 0].max() + 0.5, 2)
  if abs(w[1]) > 1e-12:
    right.plot(xs, -(w[0] * xs + b) / w[1], "k-", label="w . x + b = 0")
  right.set_ylim(x[:, 1].min() - 0.5, x[:, 1].max() + 0.5)
  right.set_title("decision boundary")
  right.legend(loc="lower right")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  ap.add_argument("--address", default="localhost:50051", help="host:port of loss_server")
  ap.add_argument("--out", help="write the loss curve and the decision boundary to this PNG")
  ap.add_argument("--epochs", type=int, default=200)
  ap.add_argument("--lr", type=float, default=0.1, help="learning rate")
  ap.add_argument("--samples", type=int, default=200)
  ap.add_argument("--seed", type=int, default=42)
  args = ap.parse_args(argv)

  x, y = two_classes(args.samples, args.seed)
  print(f"perceptron: {len(x)} points, {x.shape[1]} features, 2 classes; "
        f"binary_cross_entropy_with_logits on {args.address}")
  with lossservice.LossClient(args.address) as client:
    try:
      w, b, losses = train(client, x, y, args.epochs, args.lr, max(1, args.epochs // 10))
      p = client.sigmoid(x @ w + b)  # sigmoid(w . x + b), by the service too
    except lossservice.LossServiceError as e:
      print(f"perceptron: {e}", file=sys.stderr)
      return 1
  correct = int(((p > 0.5) == (y == 1)).sum())
  print(f"w = [{w[0]:.4f}, {w[1]:.4f}], b = {float(b):.4f}")
  print(f"accuracy {100.0 * correct / len(y):.1f}% ({correct}/{len(y)})")
  if args.out:
    plot(args.out, x, y, w, b, losses)
    print(f"wrote {args.out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
