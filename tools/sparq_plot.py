#!/usr/bin/env python3
"""sparq_plot: PNG charts from sparq-bench --json files (docs/benchmarks.md).

One chart per family: each case's achieved rate as a percentage of its roofline (copy bandwidth
or fp32 rate, measured in the same run), and, where the run had anchors, sparq's time ratio
against each anchor backend (> 1: sparq faster). Cases keep the bench's order, so sizes read
top to bottom. Needs matplotlib (Debian: python3-matplotlib).

Usage: sparq_plot.py OUT_DIR bench.json [more.json ...]   (several runs merge into one chart per family)
"""
import json
import os
import sys


def load_cases(paths):
    """Timed cases of every sparq-bench JSON given; other JSON (an anchor's) is skipped, so a
    report folder's *.json can be passed whole. A case in several files keeps its last run."""
    cases, devices = {}, set()
    for p in paths:
        with open(p) as f:
            d = json.load(f)
        if not isinstance(d, dict) or "cases" not in d:
            print(f"sparq_plot: {p}: not a sparq-bench JSON, skipped", file=sys.stderr)
            continue
        devices.add(d.get("device", {}).get("name", "?") if isinstance(d.get("device"), dict)
                    else str(d.get("device", "?")))
        for c in d["cases"]:
            if c.get("timing", {}).get("median_ms", 0) > 0:
                cases.pop(c["name"], None)
                cases[c["name"]] = c
    return list(cases.values()), sorted(devices)


def rate_label(c):
    if c.get("roofline_bound") == "copy":
        return f"{c.get('gbps', 0):.3g} GB/s"
    return f"{c.get('tflops', 0):.3g} TFLOP/s"


def plot_family(plt, family, cases, device, out_dir):
    names = [c["name"].split("/", 1)[-1] for c in cases]
    pct = [c.get("roofline_pct", 0) for c in cases]
    backends = sorted({a["backend"] for c in cases for a in c.get("anchors", []) if "ratio" in a})
    ncols = 2 if backends else 1
    height = max(2.5, 0.32 * len(cases) + 1.5)
    label_in = max(4, 0.07 * max(len(n) for n in names))  # room for the longest case name
    fig, axes = plt.subplots(1, ncols, figsize=(7 * ncols + label_in, height), sharey=True,
                             squeeze=False)
    ax = axes[0][0]
    y = list(range(len(cases)))
    bars = ax.barh(y, pct, color=["#4c72b0" if c.get("roofline_bound") == "copy" else "#dd8452"
                                  for c in cases])
    for b, c in zip(bars, cases):
        ax.text(b.get_width() + 1, b.get_y() + b.get_height() / 2, rate_label(c), va="center",
                fontsize=7)
    ax.set_yticks(y)
    ax.set_yticklabels(names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, max(115, 1.2 * max(pct, default=0)))  # int8 runs past the fp32 rate
    ax.axvline(100, color="gray", lw=0.8, ls="--")
    ax.set_xlabel("% of roofline (blue: copy bandwidth, orange: fp32 rate)")
    ax.set_title(f"{family}: achieved vs roofline")
    if backends:
        ax2 = axes[0][1]
        width = 0.8 / len(backends)
        for i, be in enumerate(backends):
            vals = []
            for c in cases:
                r = [a["ratio"] for a in c.get("anchors", []) if a.get("backend") == be and "ratio" in a]
                vals.append(r[0] if r else 0)
            ax2.barh([v + (i - (len(backends) - 1) / 2) * width for v in y], vals, height=width,
                     label=be)
        ax2.axvline(1, color="gray", lw=0.8, ls="--")
        ax2.set_xscale("log")
        ax2.set_xlabel("sparq speed / anchor speed (log; > 1: sparq faster)")
        ax2.set_title("vs the anchors given to sparq-bench --anchor")
        ax2.legend(fontsize=7, loc="lower right")
    fig.suptitle(device, fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.25 / height))  # the device line above the titles
    path = os.path.join(out_dir, f"{family}.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    with open(path, "rb") as f:  # the test relies on this: a chart that is not a PNG is an error
        if f.read(8) != b"\x89PNG\r\n\x1a\n":
            raise RuntimeError(f"{path}: not a PNG")
    return path


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("sparq_plot: matplotlib is missing (Debian: apt install python3-matplotlib)",
              file=sys.stderr)
        return 3
    out_dir = argv[1]
    os.makedirs(out_dir, exist_ok=True)
    cases, devices = load_cases(argv[2:])
    if not cases:
        print("sparq_plot: no timed cases in the input", file=sys.stderr)
        return 2
    families = {}
    for c in cases:
        families.setdefault(c.get("family", c["name"].split("/")[0]), []).append(c)
    for fam, cs in families.items():
        print(plot_family(plt, fam, cs, ", ".join(devices), out_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
