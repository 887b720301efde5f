#!/usr/bin/env python3
"""Turns sta_bench JSON output into the Markdown table of the paper's Table 2.

Usage:
  build/sta_bench --benchmark_filter=Table2 --benchmark_repetitions=3 \
      --benchmark_out=table2.json --benchmark_out_format=json
  python3 scripts/bench_table.py table2.json [more.json ...] > table2.md

Run names are SET/VARIANT/BACKEND/MASK (VARIANT: fp32, bf16, fp32-openblas), SET/peak/KIND
(same-run peak probes: fp32-fma-avx512, fp32-fma-avx2, bf16-dot-avx512bf16, amx-bf16),
SET/sustained/fp32-fma-avx512 (the FMA rate all threads hold for 2 s) and
SET/sgemm/... (OpenBLAS). For every problem set and variant it prints one row per attention
run: sparsity, the kernel's block counters, time, speedup over the dense backend of the same
variant (measured and ideal = computed-block ratio), useful and computed GFLOP/s, the share of
the peak probe of the GEMM kernel's instruction family, and the GEMM kernel that ran. It then
estimates what a mixed (masked) block costs and checks the performance targets. Medians over
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


def peak_kind(gemm, peaks):
    """The same-run peak a GEMM family is measured against (its instruction family)."""
    for prefix, kind in (("amx", "amx-bf16"), ("avx512bf16", "bf16-dot-avx512bf16"),
                         ("avx2", "fp32-fma-avx2")):
        if gemm.startswith(prefix) and kind in peaks:
            return kind
    for kind in ("fp32-fma-avx512", "fp32-fma-avx2"):
        if kind in peaks:
            return kind
    return None


def print_variant(set_name, variant, attention, peaks, sgemm):
    order = {"dense": 0, "natten": 1, "sta": 2}
    attention.sort(key=lambda r: (order.get(r[0], 9), -r[2].get("sparsity", 0)))
    dense = next((e for b, _, e in attention if b == "dense"), None)
    print(f"\n#### {set_name}, {variant}\n")
    print("| backend | mask | sparsity | dense | mixed | empty | wall ms | speedup | CPU ms "
          "| speedup (CPU) | ideal | useful GFLOP/s | computed GFLOP/s | per core | % of peak "
          "| % of sgemm | GEMM kernel |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    dense_blocks = dense["dense"] + dense["mixed"] if dense is not None else None
    for backend, mask, e in attention:
        threads = int(e.get("omp_threads", 1))
        computed_blocks = e["dense"] + e["mixed"]
        speedup = ms(dense) / ms(e) if dense else None
        speedup_cpu = dense["cpu_ms"] / e["cpu_ms"] if dense else None
        ideal = dense_blocks / computed_blocks if dense_blocks and computed_blocks else None
        gemm = e.get("label", "").split(",")[0]
        kind = peak_kind(gemm, peaks)
        peak = peaks.get(kind, {}).get(threads) if kind else None
        share_peak = 100.0 * e["computed_GFLOP/s"] / peak["GFLOP/s"] if peak else None
        roof = sgemm.get(threads)
        share = 100.0 * e["computed_GFLOP/s"] / roof["GFLOP/s"] if roof else None
        print(f"| {backend} | {mask} | {100 * e['sparsity']:.2f}% | {int(e['dense'])} | "
              f"{int(e['mixed'])} | {int(e['empty'])} | {fmt(ms(e))} | {fmt(speedup, 2)}x | "
              f"{fmt(e['cpu_ms'])} | {fmt(speedup_cpu, 2)}x | {fmt(ideal, 2)}x | "
              f"{fmt(e['GFLOP/s'])} | {fmt(e['computed_GFLOP/s'])} | "
              f"{fmt(e['computed_GFLOP/s'] / threads)} | "
              f"{fmt(share_peak)}%{' of ' + kind if kind else ''} | {fmt(share)}% | {gemm} |")

    # Cost of a mixed block: natten time = dense blocks * c_dense + mixed blocks * c_mixed,
    # with c_dense the per-block time of the unmasked backends of the same run.
    per_block = [ms(e) / e["dense"] for b, _, e in attention
                 if b in ("dense", "sta") and e["dense"] > 0 and e["mixed"] == 0]
    if per_block:
        c_dense = statistics.median(per_block)
        print()
        print(f"- a dense block costs {c_dense:.3f} ms (wall, median over the unmasked runs)")
        for backend, mask, e in attention:
            if e["mixed"] > 0:
                c_mixed = (ms(e) - e["dense"] * c_dense) / e["mixed"]
                print(f"- {backend} {mask}: a mixed block costs {c_mixed:.3f} ms = "
                      f"{c_mixed / c_dense:.2f}x a dense block")


def checks(set_name, variants, peaks):
    """The issue's targets on a 2-core machine, wall time, from the same run."""
    out = []

    def find(variant, backend, mask=None):
        for b, m, e in variants.get(variant, []):
            if b == backend and (mask is None or m == mask):
                return e
        return None

    d32 = find("fp32", "dense")
    if d32:
        threads = int(d32.get("omp_threads", 1))
        kind = peak_kind(d32.get("label", "").split(",")[0], peaks)
        peak = peaks.get(kind, {}).get(threads) if kind else None
        if peak:
            share = d32["computed_GFLOP/s"] / peak["GFLOP/s"]
            out.append((f"fp32 dense >= 75% of the same-run {kind} peak ({100 * share:.1f}%)",
                        share >= 0.75))
    for variant in ("fp32", "bf16"):
        dense, sta3 = find(variant, "dense"), find(variant, "sta", "sta:3,3,3")
        if dense and sta3:
            s = ms(dense) / ms(sta3)
            out.append((f"{variant} sta 3,3,3 >= 10.5x {variant} dense ({s:.2f}x)", s >= 10.5))
        nat = find(variant, "natten")
        if nat and sta3:
            s = ms(nat) / ms(sta3)
            out.append((f"{variant} sta 3,3,3 >= 3x {variant} natten ({s:.2f}x)", s >= 3.0))
    d16 = find("bf16", "dense")
    if d32 and d16 and "emulated" not in d16.get("label", ""):
        s = ms(d32) / ms(d16)
        out.append((f"bf16 dense >= 1.8x fp32 dense ({s:.2f}x)", s >= 1.8))
    blas = find("fp32-openblas", "dense")
    if d32 and blas:
        out.append((f"(info) fp32 dense vs OpenBLAS dense: {ms(blas) / ms(d32):.2f}x", True))
    for text, ok in out:
        print(f"- [{'x' if ok else ' '}] {text}")


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

    print(f"CPU: {context.get('cpu', context.get('cpu_model', '?'))}, {context.get('num_cpus', '?')} "
          f"CPUs at {context.get('mhz_per_cpu', '?')} MHz; softmax SIMD: "
          f"{context.get('simd_isa', '?')}; GEMM kernels: fp32 {context.get('gemm_fp32', '?')}, "
          f"bf16 {context.get('gemm_bf16', '?')}; OpenMP threads: {context.get('omp_threads', '?')}; "
          f"load average at start: {context.get('load_avg', '?')}")
    for set_name in sorted(sets, key=lambda s: (s != "Table2", s)):
        if is_backward_set(set_name):
            continue  # print_backward_checks below
        sgemm, peaks, variants, sustained = {}, {}, {}, {}
        for parts, entry in sets[set_name]:
            threads = int(entry.get("omp_threads", 1))
            if parts[1] == "sgemm":
                sgemm[threads] = entry
            elif parts[1] == "peak":
                peaks.setdefault(parts[2], {})[threads] = entry
            elif parts[1] == "sustained":
                sustained.setdefault(parts[2], {})[threads] = entry
            elif len(parts) >= 4:
                variants.setdefault(parts[1], []).append((parts[2], "/".join(parts[3:]), entry))
        print(f"\n### {set_name}\n")
        for kind, by_threads in sorted(peaks.items()):
            for threads, e in sorted(by_threads.items()):
                print(f"- peak probe {kind}, {threads} thread(s): {fmt(e.get('GFLOP/s'))} GFLOP/s")
        for kind, by_threads in sorted(sustained.items()):
            for threads, e in sorted(by_threads.items()):
                print(f"- sustained {kind} for 2 s, {threads} thread(s): {fmt(e.get('GFLOP/s'))} GFLOP/s "
                      f"(all threads together, not the best slice)")
        for threads, e in sorted(sgemm.items()):
            print(f"- OpenBLAS sgemm 384x384x128, {threads} thread(s): {fmt(e.get('GFLOP/s'))} "
                  f"GFLOP/s total")
        print()
        print("Speedups are over the dense backend of the same variant and run; *ideal* is the "
              "ratio of computed blocks; *CPU* columns use the CPU time of all threads; "
              "*% of peak* compares computed GFLOP/s with the same-run peak probe of the GEMM "
              "kernel's instruction family on as many threads.")
        for variant in sorted(variants, key=lambda v: ({"fp32": 0, "bf16": 1}.get(v, 2), v)):
            print_variant(set_name, variant, variants[variant], peaks, sgemm)
        if set_name == "Table2":  # the targets are stated for the paper's shape
            print(f"\n#### {set_name}: targets\n")
            checks(set_name, variants, peaks)
    print_backward_checks(runs)
    return 0


def is_backward_set(set_name):
    """Backward rows: "<set>-backward" and its variants ("-backward-bf16", "-backward-text",
    "-backward-4heads")."""
    return "-backward" in set_name


def print_backward_checks(runs):
    """Backward rows (bench_backward.cpp, set "<set>-backward", fp32): the backward / forward
    time of each backend (forward = the fp32 variant of the same run) and the targets (sta
    3,3,3 backward >= 10x faster than dense backward; backward <= 2.5x the same backend's
    forward), in wall and CPU time."""
    for set_name in sorted({n.split("/")[0] for n in runs if is_backward_set(n.split("/")[0])}):
        forward_set = set_name.split("-backward")[0]
        pairs = []
        for name, bwd in runs.items():
            parts = name.split("/")
            if parts[0] == set_name and len(parts) >= 3:
                if "forward_ms" in bwd:  # the forward timed just before each backward call
                    fwd = {"real_time": bwd["forward_ms"], "time_unit": "ms",
                           "cpu_ms": bwd["forward_cpu_ms"]}
                else:  # older outputs: the fp32 forward row of the same run
                    fwd = runs.get("/".join([forward_set, "fp32"] + parts[1:]))
                pairs.append((parts[1], "/".join(parts[2:]), bwd, fwd))
        if not pairs:
            continue
        print(f"\n### {set_name}: backward against forward\n")
        print("(forward = the same backend's forward, run just before each backward call)\n")
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
