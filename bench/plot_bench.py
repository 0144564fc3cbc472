#!/usr/bin/python3
"""Draws bench_core's JSON output and prints its tables (docs/PERFORMANCE.md).

  bench/plot_bench.py bench_core.json bench_core.png [--markdown]

The plot has three panels: the speed-up over libtorch (its faster dispatch)
of every loss at 1M elements, one thread, forward and forward + gradient;
cross_entropy and nll at the language-model shapes and the small cases; and
our time at all cores against one thread. --markdown prints the targets
table (each target of docs/PERFORMANCE.md with its measured figure, met or
missed) and the tables of every case. Times are the best of the
repetitions in the JSON.
"""

import argparse
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(path):
  with open(path) as f:
    return json.load(f)


def by_case(result):
  return {row["case"]: row for row in result["cases"]}


def fmt_time(ns):
  if ns != ns:  # NaN
    return "-"
  if ns < 1e3:
    return f"{ns:.0f} ns"
  if ns < 1e6:
    return f"{ns / 1e3:.1f} us"
  return f"{ns / 1e6:.2f} ms"


def best(values):
  return min(values) if values else float("nan")


def markdown(result):
  rows = result["cases"]
  out = []
  head = ("| case | ours | libtorch (default) | libtorch (avx512) | ratio | GB/s | "
          "read GB/s | vs fused loop |")
  sep = "|---|---:|---:|---:|---:|---:|---:|---:|"
  for threads in sorted({r["threads"] for r in rows}):
    out.append(f"\n**{threads} thread{'s' if threads > 1 else ''}**\n")
    out.append(head)
    out.append(sep)
    for r in rows:
      if r["threads"] != threads:
        continue
      fused = f"{100 * r['fused_fraction']:.0f}%" if "fused_fraction" in r else "-"
      read = f"{r['read_gbps']:.1f}" if "read_gbps" in r else "-"
      out.append(f"| {r['case']} | {fmt_time(r['best_ours_ns'])} | "
                 f"{fmt_time(best(r['torch_ns']))} | {fmt_time(best(r['torch_avx512_ns']))} | "
                 f"{r['ratio']:.2f}x | {r['gbps']:.1f} | {read} | {fused} |")
  return "\n".join(out)


# The element-wise and row-wise losses whose target is ">= 1.5x at 1M".
NAMED_TARGETS = ("mse", "l1", "bce", "bce_with_logits", "cross_entropy")


def targets(result):
  """The targets table: one row per target, the measured figures, met or not."""
  cases = by_case(result)
  threads = max(r["threads"] for r in result["cases"])

  def ratio(case):
    return cases[case]["ratio"] if case in cases else float("nan")

  def speedup(key, mode):
    t1, tn = cases.get(f"{key}/{mode}/t1"), cases.get(f"{key}/{mode}/t{threads}")
    return t1["best_ours_ns"] / tn["best_ours_ns"] if t1 and tn else float("nan")

  def row(label, figures, met):
    return f"| {label} | {figures} | {'met' if met else 'missed'} |"

  out = ["| target | measured | |", "|---|---|---|"]

  def pair(label, key, goal_fwd, goal_grad):
    f, g = ratio(f"{key}/fwd/t1"), ratio(f"{key}/grad/t1")
    out.append(row(label, f"{f:.2f}x / {g:.2f}x", f >= goal_fwd and g >= goal_grad))

  pair("mse 1M, forward / forward + grad >= 2.5x", "mse/1M", 2.5, 2.5)
  pair("l1 1M, forward / forward + grad >= 2.5x", "l1/1M", 2.5, 2.5)
  fused = cases.get("mse/1M/fwd/t1", {}).get("fused_fraction", float("nan"))
  out.append(row("mse 1M forward >= 85% of the fused loop", f"{100 * fused:.0f}%", fused >= 0.85))
  pair("bce 1M >= 8x", "bce/1M", 8, 8)
  pair("bce_with_logits 1M >= 6x", "bce_with_logits/1M", 6, 6)
  pair("cross_entropy [4096, 1000] forward >= 3x, grad >= 4x", "cross_entropy/4096x1000", 3, 4)
  pair("cross_entropy [512, 32000] forward >= 3x, grad >= 4x", "cross_entropy/512x32000", 3, 4)
  pair("cross_entropy [64, 10] >= 5x", "cross_entropy/64x10", 5, 5)
  pair("mse of 16 floats >= 30x", "mse/16", 30, 30)
  others = sorted({r["loss"] for r in result["cases"]
                   if r["size"] == "1M" and r["loss"] not in NAMED_TARGETS})
  misses = [f"{loss} {mode} {ratio(f'{loss}/1M/{mode}/t1'):.2f}x" for loss in others
            for mode in ("fwd", "grad") if not ratio(f"{loss}/1M/{mode}/t1") >= 1.5]
  out.append(row("every other loss at 1M >= 1.5x",
                 "all met" if not misses else "missed: " + ", ".join(misses), not misses))
  f, g = speedup("cross_entropy/4096x1000", "fwd"), speedup("cross_entropy/4096x1000", "grad")
  out.append(row(f"{threads} threads against 1, cross_entropy [4096, 1000] >= 1.7x",
                 f"{f:.2f}x / {g:.2f}x", f >= 1.7 and g >= 1.7))
  ups = {(loss, mode): speedup(f"{loss}/1M", mode)
         for loss in sorted({r["loss"] for r in result["cases"] if r["size"] == "1M"})
         for mode in ("fwd", "grad")}
  below = [f"{loss} {mode} {v:.2f}x" for (loss, mode), v in ups.items() if not v >= 1.7]
  out.append(row(f"{threads} threads against 1, 1M elements >= 1.7x",
                 f"{min(ups.values()):.2f}x to {max(ups.values()):.2f}x"
                 + ("" if not below else "; below: " + ", ".join(below)), not below))
  return "\n".join(out)


def bars(ax, names, value, title, ylabel, log=True):
  """Forward and forward + gradient bars of value(name, mode) per name."""
  width = 0.4
  for k, mode in enumerate(("fwd", "grad")):
    ax.bar([i + (k - 0.5) * width for i in range(len(names))],
           [value(n, mode) for n in names], width,
           label="forward" if mode == "fwd" else "forward + gradient")
  ax.set_xticks(range(len(names)))
  ax.set_xticklabels(names, rotation=45, ha="right")
  if log:
    ax.set_yscale("log")
  ax.axhline(1.0, color="black", linewidth=0.8)
  ax.set_ylabel(ylabel)
  ax.set_title(title)
  ax.legend()


def plot(result, path):
  cases = by_case(result)
  rows = result["cases"]
  losses = []
  for r in rows:
    if r["threads"] == 1 and r["size"] == "1M" and r["loss"] not in losses:
      losses.append(r["loss"])
  all_threads = max(r["threads"] for r in rows)

  def ratio(name, mode):
    return cases.get(f"{name}/{mode}/t1", {}).get("ratio", 0)

  def speedup(name, mode):
    key = name if "/" in name else f"{name}/1M"
    t1, tn = cases.get(f"{key}/{mode}/t1"), cases.get(f"{key}/{mode}/t{all_threads}")
    return t1["best_ours_ns"] / tn["best_ours_ns"] if t1 and tn else 0

  fig, axes = plt.subplots(3, 1, figsize=(13, 14))
  bars(axes[0], [f"{loss}/1M" for loss in losses], ratio,
       "1M elements, one thread (above 1: faster than libtorch's faster dispatch)",
       "libtorch time / our time")
  bars(axes[1], [f"{loss}/{shape}" for loss in ("cross_entropy", "nll")
                 for shape in ("64x10", "4096x1000", "512x32000")] + ["mse/16"], ratio,
       "classification shapes and small requests, one thread", "libtorch time / our time")
  bars(axes[2], losses + ["cross_entropy/4096x1000"], speedup,
       f"{all_threads} threads against one, 1M elements", f"our time at 1 thread / at {all_threads}",
       log=False)
  fig.suptitle(f"bench_core: lossservice core vs libtorch {result.get('torch_version', '')}")
  fig.tight_layout()
  fig.savefig(path, dpi=80)


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("json")
  ap.add_argument("png")
  ap.add_argument("--markdown", action="store_true", help="also print the targets and every case's table")
  args = ap.parse_args()
  result = load(args.json)
  if not result.get("cases"):
    sys.exit(f"{args.json}: no cases")
  plot(result, args.png)
  print(f"wrote {args.png}", file=sys.stderr)
  if args.markdown:
    print("**Targets** (one thread unless said; ratio against libtorch's faster dispatch)\n")
    print(targets(result))
    print(markdown(result))


if __name__ == "__main__":
  main()
