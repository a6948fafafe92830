#!/usr/bin/env python3
"""goals_report: the Markdown tables of a full GPU report (docs/benchmarks.md, "Full GPU report").

Reads sparq-bench --json files and the anchors' JSON files (attention_anchor.py,
diffusion_anchor.py, decode_anchor.py; recognised by their layout, in any order) and prints:
  1. every case: median ms, achieved rate, % of roofline, anchor ratios, exact;
  2. "Goals": one row per speed goal of issues 3-8 (bench/goals.json), computed from the cases:
     met / not met / not measured (with why) / recorded (no bar).
A case found in several files keeps its last occurrence; a later anchor row replaces an earlier
one of the same shape and backend.

Usage: goals_report.py [--goals bench/goals.json] [--brief] FILE.json [FILE.json ...]
       (--brief: one line per goal instead of the Markdown report)
       goals_report.py --selftest        (checks every goal kind on made-up numbers)
Python 3 standard library only.
"""
import json
import os
import re
import sys

OPS = {">=": lambda v, t: v >= t, "<=": lambda v, t: v <= t}


class Data:
    def __init__(self):
        self.cases = {}  # name -> case dict (last occurrence wins)
        self.runs = []  # (path, device name, peaks) of each bench file
        self.colds = []  # (path, cold_start) of the first bench file that has one
        self.attention = {}  # (B, H, L, D, causal, backend, dtype) -> anchor row
        self.decode = {}  # (B, ctx) -> decode anchor row
        self.diffusion = []  # diffusion anchor rows (the bench matches them itself)

    def add(self, path, doc):
        if isinstance(doc, dict) and "cases" in doc:
            dev = doc.get("device", {})
            self.runs.append((path, dev.get("name", "?") if isinstance(dev, dict) else str(dev),
                              doc.get("peaks", {})))
            if doc.get("cold_start") and not self.colds:  # the first run's: the coldest one
                self.colds.append((path, doc["cold_start"]))
            for c in doc["cases"]:
                self.cases.pop(c["name"], None)  # re-insert: the table keeps the last order
                self.cases[c["name"]] = c
        elif isinstance(doc, list):  # attention_anchor.py
            for r in doc:
                key = (r["B"], r["H"], r["L"], r["D"], int(r["causal"]), r["backend"], r["dtype"])
                self.attention[key] = r
        elif isinstance(doc, dict) and doc.get("rows") and "op" in doc["rows"][0]:
            for r in doc["rows"]:  # decode_anchor.py
                self.decode[(r["B"], r["ctx"])] = r
        elif isinstance(doc, dict) and "rows" in doc:  # diffusion_anchor.py
            self.diffusion.extend(doc["rows"])
        else:
            raise ValueError(f"{path}: neither a sparq-bench JSON nor an anchor JSON")

    def ms(self, case):
        return case.get("timing", {}).get("median_ms", 0) if case else 0


def fmt_ms(ms):
    return "-" if not ms else f"{ms:.4f}" if ms < 1 else f"{ms:.3f}" if ms < 100 else f"{ms:.1f}"


def fmt_num(v):
    return "-" if not v else f"{v:.0f}" if v >= 1000 else f"{v:.4g}"


def exact_cell(c):
    if "error" in c:
        return "ERROR"
    if c.get("exact") is None:
        return "n/a"
    if not c["exact"]:
        return "NO"
    return "yes" if c.get("validation", {}).get("scope") == "full" else "yes*"


def decode_key(name):
    m = re.search(r"^attention/decode_paged B(\d+) .*\(ctx (\d+)(?:\.\.(\d+))?[,)]", name)
    if m and (m.group(3) is None or m.group(3) == m.group(2)):
        return int(m.group(1)), int(m.group(2))
    return None


def anchor_cells(data, c):
    cells = []
    for a in c.get("anchors", []):
        if a.get("step"):
            cells.append(f"{a['backend']} {a['ratio']:.2f}x")
        else:
            cells.append(f"{a['backend'].split('_')[0].lower()} {a['dtype']} {a['ratio']:.3f}x")
    key = decode_key(c["name"])
    if key in data.decode and data.ms(c):
        r = data.decode[key]
        cells.append(f"SDPA {r['dtype']} decode {r['ms'] / data.ms(c):.3f}x")
    return "; ".join(cells) if cells else "-"


def case_table(data):
    out = ["| case | median ms | rate | roofline | vs anchor | exact |", "|---|---:|---:|---:|---|---|"]
    for c in data.cases.values():
        if "error" in c:
            out.append(f"| {cell(c['name'])} | - | - | - | - | ERROR: {cell(c['error'][:80])} |")
            continue
        copy = c.get("roofline_bound") == "copy"
        rate = f"{fmt_num(c.get('gbps'))} GB/s" if copy else f"{fmt_num(c.get('tflops'))} TFLOP/s"
        roof = f"{c['roofline_pct']:.1f}% {c.get('roofline_bound')}" if c.get("roofline_pct") else "-"
        wall = " (wall)" if c.get("timing", {}).get("source") == "wall" else ""
        out.append(f"| {cell(c['name'])} | {fmt_ms(data.ms(c))}{wall} | {rate} | {roof} | "
                   f"{anchor_cells(data, c)} | {exact_cell(c)} |")
    return out


def label_of(goal, name):
    """The short name of a case in a goal row: the label regex's groups, else its match."""
    m = re.search(goal.get("label", ".*"), name)
    if not m:
        return name
    return " ".join(g for g in m.groups() if g) if m.groups() else m.group(0)


def cell(text):
    return text.replace("|", "\\|")  # a pipe ends a Markdown table cell, even in code


def attention_anchor(data, spec):
    key = (spec["B"], spec["H"], spec["L"], spec["D"], int(spec.get("causal", 1)), spec["backend"],
           spec["dtype"])
    return data.attention.get(key)


def measure(data, goal, name, m):
    """The goal's ratio for one matching case, or (None, why)."""
    c = data.cases[name]
    if "error" in c or not data.ms(c):
        return None, "error"
    kind = goal["kind"]
    if kind == "roofline":
        return c.get("roofline_pct", 0), None
    if kind == "anchor":
        for a in c.get("anchors", []):
            if a["backend"] == goal["backend"] and a.get("dtype", "") == goal.get("dtype", a.get("dtype", "")):
                return a["ratio"], None
        p = c.get("params", {})  # the bench ran without --anchor: match the anchor file here
        if "dtype" in goal and p.get("Hq") == p.get("Hkv") and p.get("Lq", p.get("L")) == p.get("Lk", p.get("L")):
            r = attention_anchor(data, dict(B=p.get("B"), H=p.get("Hq"), L=p.get("Lq", p.get("L")),
                                            D=p.get("D"), causal=p.get("causal", 1),
                                            backend=goal["backend"], dtype=goal["dtype"]))
            if r:
                return r["ms"] / data.ms(c), None
        return None, f"no {goal['backend']} anchor"
    if kind == "decode_anchor":
        r = data.decode.get((int(m.group("B")), int(m.group("ctx"))))
        return (r["ms"] / data.ms(c), None) if r else (None, "no decode anchor")
    other = data.cases.get(goal["other"].format(*([m.group(0)] + list(m.groups()))))
    if not data.ms(other):
        return None, "no " + goal["other"].format(*([m.group(0)] + list(m.groups())))
    if kind == "share":
        return data.ms(c) / (data.ms(c) + data.ms(other)), None
    if kind == "sum_vs_anchor":
        r = attention_anchor(data, goal["anchor"])
        if not r:
            return None, f"no {goal['anchor']['backend']} anchor at L={goal['anchor']['L']}"
        return r["ms"] / (data.ms(c) + data.ms(other)), None
    if kind == "vs_case":
        metric = goal["metric"]
        this_v = data.ms(c) if metric == "ms" else c.get(metric, 0)
        other_v = data.ms(other) if metric == "ms" else other.get(metric, 0)
        if not this_v or not other_v:
            return None, f"no {metric}"
        return (this_v / other_v if goal["ratio"] == "this/other" else other_v / this_v), None
    raise ValueError(f"goal {goal['id']}: unknown kind {kind}")


def fmt_value(goal, v):
    if goal["kind"] == "roofline":
        return f"{v:.1f}%"
    if goal["kind"] == "share":
        return f"{100 * v:.1f}%"
    return f"{v:.3g}x"


def evaluate(data, goal):
    """-> (cases cell, measured cell, status)"""
    if goal["kind"] == "none":
        return "-", "-", f"not measured: {goal['why']}"
    rx = re.compile(goal["cases"])
    values, missing = [], []
    for name in data.cases:
        m = rx.search(name)
        if not m:
            continue
        v, why = measure(data, goal, name, m)
        if v is None:
            missing.append(f"{label_of(goal, name)} ({why})")
        else:
            values.append((label_of(goal, name), v))
    if not values:
        why = "; ".join(missing) if missing else "no matching case in the input"
        cases = f"{len(missing)} case{'s' if len(missing) != 1 else ''}" if missing else "-"
        return cases, "-", f"not measured: {why}"
    if len(values) <= 6:
        measured = ", ".join(f"{lab} {fmt_value(goal, v)}" for lab, v in values)
    else:  # many cases: the range and the worst one (all of them are in the case table)
        lo, hi = min(values, key=lambda x: x[1]), max(values, key=lambda x: x[1])
        worst = hi if goal["op"] == "<=" else lo
        measured = (f"{fmt_value(goal, lo[1])} to {fmt_value(goal, hi[1])}; "
                    f"worst: {worst[0]} {fmt_value(goal, worst[1])}")
    if missing:
        measured += "; missing: " + ", ".join(missing)
    op = goal["op"]
    if op == "info":
        status = "recorded (no bar)"
    else:
        ok = [OPS[op](v, goal["target"]) for _, v in values]
        target = fmt_value(goal, goal["target"])
        status = ("**met**" if all(ok) else "not met" if not any(ok)
                  else f"partly met ({sum(ok)} of {len(ok)})") + f" (goal {op} {target})"
    return f"{len(values)} case{'s' if len(values) != 1 else ''}", measured, status


def goals_table(data, goals):
    out = ["| issue | goal | cases | measured | status |", "|---|---|---|---|---|"]
    for g in goals:
        cases, measured, status = evaluate(data, g)
        if g.get("note"):
            status += f"; {g['note']}"
        out.append(f"| {g['issue']} | {cell(g['goal'])} | {cell(cases)} | {cell(measured)} | "
                   f"{cell(status)} |")
    return out


def report(data, goals):
    out = ["# sparq full GPU report", ""]
    devices = {}
    for path, dev, peaks in data.runs:
        devices.setdefault(dev, []).append((os.path.basename(path), peaks))
    for dev, runs in devices.items():  # each sparq-bench process measures its own peaks
        measured = [p for _, p in runs if p.get("measured")]

        def span(key, unit):
            v = [p.get(key, 0) for p in measured]
            return f"{min(v):.4g}" + ("" if max(v) == min(v) else f"-{max(v):.4g}") + f" {unit}"
        peaks = (f"copy {span('copy_gbps', 'GB/s')}, fp32 {span('fp32_tflops', 'TFLOP/s')}, "
                 f"int32 {span('int32_tops', 'TOP/s')}" if measured else "not measured")
        out.append(f"- {dev}: {len(runs)} bench runs ({', '.join(n for n, _ in runs)}); peaks {peaks}")
    for path, cold in data.colds:
        out.append(f"- cold start (`{os.path.basename(path)}`, {cold.get('case')}): context "
                   f"{cold.get('create_ms', 0):.1f} ms + first call {cold.get('first_call_ms', 0):.1f} ms "
                   f"({cold.get('programs_built', 0)} programs built, {cold.get('programs_from_disk', 0)} "
                   f"from the disk cache); second call {cold.get('second_call_ms', 0):.3f} ms")
    cs = list(data.cases.values())
    bad = [c["name"] for c in cs if "error" in c or c.get("exact") is False]
    out.append(f"- {len(cs)} cases; not exact or error: {len(bad)}" +
               (" (" + ", ".join(bad[:10]) + ")" if bad else ""))
    if data.attention:
        rows = sorted(data.attention.values(), key=lambda r: (r["dtype"], r["backend"], r["L"]))
        out.append("- attention anchors: " + "; ".join(
            f"{r['backend'].split('_')[0].lower()} {r['dtype']} L{r['L']} {r['ms']:.3f} ms "
            f"({r['tflops']:.1f} TFLOP/s)" for r in rows))
    if data.decode:
        out.append("- decode anchor (SDPA): " + "; ".join(
            f"B{b} ctx{c} {r['dtype']} {r['ms']:.4f} ms ({r['gbps']:.0f} GB/s)"
            for (b, c), r in sorted(data.decode.items())))
    if data.diffusion:
        out.append("- diffusion anchor: " + "; ".join(
            f"{r['shape']} {r['step']} eager {r['eager_ms']:.4f} / compiled {r['compiled_ms']:.4f} ms"
            for r in data.diffusion))
    out += ["", "## Cases", ""] + case_table(data)
    out += ["", "## Goals (issues 3-8, bench/goals.json)", ""] + goals_table(data, goals)
    return "\n".join(out) + "\n"


def selftest():
    """Every goal kind on made-up numbers: the statuses must come out as written here."""
    def case(name, ms, **kw):
        return dict(name=name, timing=dict(median_ms=ms), exact=True, validation=dict(scope="full"), **kw)
    data = Data()
    data.add("b.json", dict(device=dict(name="test"), peaks=dict(measured=False), cases=[
        case("attention/prefill causal B1 H32 L4096 D128 f32", 10, tflops=14, params=dict(B=1, Hq=32, Hkv=32, Lq=4096, Lk=4096, D=128, causal=1),
             anchors=[dict(backend="EFFICIENT_ATTENTION", dtype="fp32", ratio=0.8)]),
        case("attention/prefill causal B1 H32 L16384 D128 f32", 140, tflops=16, params=dict(B=1, Hq=32, Hkv=32, Lq=16384, Lk=16384, D=128, causal=1)),
        case("attention/prefill int8 causal B1 H32 L4096 D128", 5, tflops=25),
        case("nvfp4/attention causal B1 H32 L4096 D128", 10, tflops=12.5),
        case("sparse/build ashape(128,3968) causal B1 H32 L131072 D128", 10),
        case("sparse/prefill ashape(128,3968) causal B1 H32 L131072 D128", 600, tflops=14),
        case("mamba/scan B8 D2048 N16 L4096 G1 f32", 3, roofline_pct=11.3, gbps=300),
        case("mamba/scan_q B8 D2048 N16 L4096 u,delta,z int4 K8", 2, gbps=200),
        case("attention/decode_paged B8 Hq32/Hkv8 Lq1 D128 page16 nhd i8 (ctx 32768..32768, 262144 keys)", 0.7, roofline_pct=85),
        case("attention/decode_paged B32 Hq32/Hkv8 Lq1 D128 page16 nhd i8 (ctx 32768..32768, 1048576 keys)", 4, roofline_pct=30),
    ]))
    data.add("a.json", [dict(B=1, H=32, L=131072, D=128, causal=1, backend="CUDNN_ATTENTION", dtype="bf16", ms=250, tflops=560),
                        dict(B=1, H=32, L=16384, D=128, causal=1, backend="EFFICIENT_ATTENTION", dtype="fp32", ms=46, tflops=48)])
    data.add("d.json", dict(rows=[dict(op="decode", B=8, ctx=32768, dtype="bf16", ms=0.35, gbps=2800)]))
    goals = {g["id"]: g for g in json.load(open(default_goals()))["goals"]}
    expect = {"3.fp32": "partly met (1 of 2)", "5.nvfp4": "not met", "4.block": "met",
              "4.build": "met", "6.scanq": "not met", "8.decode": "partly met", "6.scan": "not met",
              "8.sdpa": "recorded", "5.sparse10": "not measured", "7.eager": "not measured",
              "4.cudnn": "recorded"}
    bad = []
    for gid, want in expect.items():
        status = evaluate(data, goals[gid])[2]
        if want not in status:
            bad.append(f"{gid}: want '{want}', got '{status}'")
    text = report(data, list(goals.values()))
    for want in ("efficient fp32 0.800x", "SDPA bf16 decode 0.500x", "| 3 |", "L16384 0.329x"):
        if want not in text:
            bad.append(f"report lacks '{want}'")
    print("\n".join(bad) if bad else f"goals_report selftest: {len(expect)} goals as expected")
    return 1 if bad else 0


def default_goals():
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench", "goals.json")


def main(argv):
    args = argv[1:]
    if args == ["--selftest"]:
        return selftest()
    brief = "--brief" in args
    args = [a for a in args if a != "--brief"]
    goals_path = default_goals()
    if len(args) >= 2 and args[0] == "--goals":
        goals_path, args = args[1], args[2:]
    if not args or any(a.startswith("-") for a in args):
        print(__doc__, file=sys.stderr)
        return 2
    data = Data()
    for path in args:
        with open(path) as f:
            try:
                data.add(path, json.load(f))
            except (ValueError, KeyError, IndexError, TypeError) as e:
                print(f"goals_report: {path}: {e}", file=sys.stderr)
                return 2
    with open(goals_path) as f:
        goals = json.load(f)["goals"]
    if brief:  # one line per goal, for a terminal or a log tail
        for g in goals:
            _, measured, status = evaluate(data, g)
            print(f"{g['id']:<12} {status[:100]}{'' if measured == '-' else ': ' + measured[:160]}")
    else:
        sys.stdout.write(report(data, goals))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
