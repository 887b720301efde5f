#!/usr/bin/env python3
"""Turns sta_bench JSON output into the Markdown table of the paper's Table 2.

Usage:
  build/sta_bench --benchmark_filter=Table2 --benchmark_repetitions=3 \
      --benchmark_out=table2.json --benchmark_out_format=json
  python3 scripts/bench_table.py table2.json [more.json ...] > table2.md

For every problem set (Quick, Table2) it prints one row per attention run: sparsity, the
kernel's block counters, time, speedup over the dense backend of the same run (measured and
ideal = computed-block ratio), useful and computed GFLOP/s, and the share of the sgemm
roofline measured in the same run with the same thread count. It then estimates what a mixed
(masked) block costs relative to a dense one and checks the performance targets. Medians over
repetitions are used when present. Python 3 standard library only.
"""
import json
import re
import statistics
import sys

TIME_TO_MS = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}


def load_runs(paths):
    """Returns (context, {run_name: entry}) with one representative entry per run: the
    median aggregate if the file has one, else the median of the iterations."""
    context = {}
    medians, iterations = {}, {}
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        context = context or data.get("context", {})
        for b in data.get("benchmarks", []):
            name = re.sub(r"/(real_time|iterations:\d+)", "", b.get("run_name", b["name"]))
            if b.get("run_type") == "aggregate":
                if b.get("aggregate_name") == "median":
                    medians[name] = b
            elif "error_occurred" not in b:
                iterations.setdefault(name, []).append(b)
    runs = dict(medians)
    for name, entries in iterations.items():
        if name in runs:
            continue
        times = [e["real_time"] * TIME_TO_MS[e.get("time_unit", "ns")] for e in entries]
        mid = statistics.median(times)
        runs[name] = min(entries, key=lambda e: abs(
            e["real_time"] * TIME_TO_MS[e.get("time_unit", "ns")] - mid))
    return context, runs


def ms(entry):
    return entry["real_time"] * TIME_TO_MS[entry.get("time_unit", "ns")]


def cpu_rate(entry, counter="GFLOP/s"):
    """GFLOP per CPU-second of all threads: the per-core rate, immune to time slicing."""
    gflop = entry[counter] * ms(entry) / 1e3
    return gflop / (entry["cpu_ms"] / 1e3) if entry.get("cpu_ms") else None


def fmt(x, digits=1):
    return "-" if x is None else f"{x:.{digits}f}"


def main(argv):
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    context, runs = load_runs(argv[1:])
    sets = {}
    for name, entry in runs.items():
        parts = name.split("/")
        if len(parts) < 3:
            continue
        sets.setdefault(parts[0], []).append((parts, entry))

    print(f"CPU: {context.get('cpu_model', '?')}, {context.get('num_cpus', '?')} CPUs at "
          f"{context.get('mhz_per_cpu', '?')} MHz; SIMD: {context.get('simd_isa', '?')}; "
          f"OpenMP threads: {context.get('omp_threads', '?')}; "
          f"load average at start: {context.get('load_avg', '?')}")
    for set_name in sorted(sets, key=lambda s: (s != "Table2", s)):
        rows = sets[set_name]
        sgemm = {}
        attention = []
        for parts, entry in rows:
            if parts[1] == "sgemm":
                sgemm[int(entry.get("omp_threads", 1))] = entry
            else:
                attention.append((parts[1], "/".join(parts[2:]), entry))
        order = {"dense": 0, "natten": 1, "sta": 2}
        attention.sort(key=lambda r: (order.get(r[0], 9), -r[2].get("sparsity", 0)))
        dense = next((e for b, _, e in attention if b == "dense"), None)
        print(f"\n### {set_name}\n")
        for threads, e in sorted(sgemm.items()):
            total = e.get("GFLOP/s")
            print(f"- OpenBLAS sgemm 384x384x128 roofline, {threads} thread(s): "
                  f"{fmt(total)} GFLOP/s total, {fmt(total / threads)} GFLOP/s per core "
                  f"(wall time); {fmt(cpu_rate(e))} GFLOP/s per core (CPU time)")
        print()
        print("Speedups are over the dense backend of the same run; *ideal* is the ratio of "
              "computed blocks. *CPU* columns use the CPU time of all threads, which other "
              "programs on a shared machine do not inflate; *per core* = total / threads; *% of sgemm* "
              "compares with the sgemm run on as many threads (wall time), *% of 1-core sgemm "
              "(CPU)* compares GFLOP per CPU-second with the one-thread sgemm.")
        print()
        print("| backend | mask | sparsity | dense | mixed | empty | wall ms | speedup "
              "| CPU ms | speedup (CPU) | ideal | useful GFLOP/s | computed GFLOP/s "
              "| per core | % of sgemm | per core (CPU) | % of 1-core sgemm (CPU) |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        dense_blocks = dense["dense"] + dense["mixed"] if dense is not None else None
        for backend, mask, e in attention:
            threads = int(e.get("omp_threads", 1))
            computed_blocks = e["dense"] + e["mixed"]
            speedup = ms(dense) / ms(e) if dense else None
            speedup_cpu = dense["cpu_ms"] / e["cpu_ms"] if dense else None
            ideal = dense_blocks / computed_blocks if dense_blocks and computed_blocks else None
            roof = sgemm.get(threads)
            share = 100.0 * e["computed_GFLOP/s"] / roof["GFLOP/s"] if roof else None
            core = sgemm.get(1)
            share_cpu = (100.0 * cpu_rate(e, "computed_GFLOP/s") / cpu_rate(core)
                         if core and core.get("cpu_ms") else None)
            print(f"| {backend} | {mask} | {100 * e['sparsity']:.2f}% | {int(e['dense'])} | "
                  f"{int(e['mixed'])} | {int(e['empty'])} | {fmt(ms(e))} | {fmt(speedup, 2)}x | "
                  f"{fmt(e['cpu_ms'])} | {fmt(speedup_cpu, 2)}x | {fmt(ideal, 2)}x | "
                  f"{fmt(e['GFLOP/s'])} | {fmt(e['computed_GFLOP/s'])} | "
                  f"{fmt(e['computed_GFLOP/s'] / threads)} | {fmt(share)}% | "
                  f"{fmt(cpu_rate(e, 'computed_GFLOP/s'))} | {fmt(share_cpu)}% |")

        # Cost of a mixed block: natten time = dense blocks * c_dense + mixed blocks * c_mixed,
        # with c_dense the per-block time of the unmasked backends of the same run.
        for label, key in (("wall", None), ("CPU", "cpu_ms")):
            def t(e):
                return ms(e) if key is None else e[key]
            per_block = [t(e) / e["dense"] for b, _, e in attention
                         if b in ("dense", "sta") and e["dense"] > 0 and e["mixed"] == 0]
            if not per_block:
                continue
            c_dense = statistics.median(per_block)
            print()
            print(f"- {label} time: a dense block costs {c_dense:.3f} ms "
                  f"(median over the unmasked runs)")
            for backend, mask, e in attention:
                if e["mixed"] > 0:
                    c_mixed = (t(e) - e["dense"] * c_dense) / e["mixed"]
                    print(f"- {label} time: {backend} {mask}: a mixed block costs "
                          f"{c_mixed:.3f} ms = {c_mixed / c_dense:.2f}x a dense block")

        if set_name == "Table2" and dense is not None:
            by_mask = {(b, m): e for b, m, e in attention}
            print()
            for label, key in (("wall", None), ("CPU", "cpu_ms")):
                def t(e):
                    return ms(e) if key is None else e[key]
                checks = []
                roof = sgemm.get(int(dense.get("omp_threads", 1)) if key is None else 1)
                if roof:
                    share = (dense["computed_GFLOP/s"] / roof["GFLOP/s"] if key is None else
                             cpu_rate(dense, "computed_GFLOP/s") / cpu_rate(roof))
                    checks.append((f"dense >= 80% of sgemm ({100 * share:.1f}%)", share >= 0.80))
                for mask, target in (("sta:3,3,3", 10.5), ("sta:5,5,5", 2.35)):
                    e = by_mask.get(("sta", mask))
                    if e:
                        s = t(dense) / t(e)
                        checks.append((f"sta {mask} >= {target}x faster than dense ({s:.2f}x)",
                                       s >= target))
                e, n = by_mask.get(("sta", "sta:3,3,3")), by_mask.get(("natten", "swa:19,25,25"))
                if e and n:
                    s = t(n) / t(e)
                    checks.append((f"sta 3,3,3 >= 3x faster than natten 19,25,25 ({s:.2f}x)",
                                   s >= 3.0))
                for text, ok in checks:
                    print(f"- [{'x' if ok else ' '}] {label} time: {text}")
    print_backward_checks(runs)
    return 0


def print_backward_checks(runs):
    """Backward rows (bench_backward.cpp, set "<set>-backward"): the backward / forward time
    of each backend and the SPEC 8 targets (sta 3,3,3 backward >= 10x faster than dense
    backward; backward <= 2.5x the same backend's forward), in wall and CPU time."""
    for set_name in sorted({n.split("/")[0] for n in runs if n.split("/")[0].endswith("-backward")}):
        forward_set = set_name[:-len("-backward")]
        pairs = []
        for name, bwd in runs.items():
            parts = name.split("/")
            if parts[0] == set_name and len(parts) >= 3:
                fwd = runs.get("/".join([forward_set] + parts[1:]))
                pairs.append((parts[1], "/".join(parts[2:]), bwd, fwd))
        if not pairs:
            continue
        print(f"\n### {set_name}: backward against forward\n")
        print("| backend | mask | backward wall ms | forward wall ms | ratio | backward CPU ms "
              "| forward CPU ms | ratio (CPU) |")
        print("|---|---|---:|---:|---:|---:|---:|---:|")
        for backend, mask, bwd, fwd in sorted(pairs, key=lambda p: (p[0], p[1])):
            ratio = ms(bwd) / ms(fwd) if fwd else None
            ratio_cpu = bwd["cpu_ms"] / fwd["cpu_ms"] if fwd else None
            print(f"| {backend} | {mask} | {fmt(ms(bwd))} | {fmt(ms(fwd) if fwd else None)} | "
                  f"{fmt(ratio, 2)}x | {fmt(bwd['cpu_ms'])} | {fmt(fwd['cpu_ms'] if fwd else None)} | "
                  f"{fmt(ratio_cpu, 2)}x |")
        by = {(b, m): (bw, fw) for b, m, bw, fw in pairs}
        dense, sta3 = by.get(("dense", "full")), by.get(("sta", "sta:3,3,3"))
        print()
        for label, t in (("wall", ms), ("CPU", lambda e: e["cpu_ms"])):
            if dense and sta3:
                s = t(dense[0]) / t(sta3[0])
                print(f"- [{'x' if s >= 10 else ' '}] {label} time: sta 3,3,3 backward >= 10x "
                      f"faster than dense backward ({s:.2f}x)")
            for backend, mask, bwd, fwd in pairs:
                if fwd:
                    r = t(bwd) / t(fwd)
                    print(f"- [{'x' if r <= 2.5 else ' '}] {label} time: {backend} {mask} "
                          f"backward <= 2.5x its forward ({r:.2f}x)")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
