"""Prints what `scripts/bench/worker-cpu` measured: per CPU mode and size class, ms of CPU per
upload accepted, processed and in all, by each form, against the reference; then where the
worker's CPU went.

usage: worker_cpu_report.py RUN_DIR ROUNDS MODE..."""
import json
import os
import statistics
import sys

run_dir, rounds, modes = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
CLASSES = ("1-3MP", "12MP")


def cpu_line():
    model, flags = "?", set()
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name") and model == "?":
            model = line.split(":", 1)[1].strip()
        if line.startswith("flags") and not flags:
            flags = set(line.split(":", 1)[1].split())
    vector = [f for f in ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni",
                          "avx512_bf16", "amx_bf16", "amx_tile") if f in flags]
    return model, vector


def read(name):
    path = os.path.join(run_dir, name)
    return open(path).read().strip() if os.path.exists(path) else ""


def runs(mode, klass):
    """(worker, reference, peak RSS) per round that finished."""
    out = []
    for r in range(1, rounds + 1):
        w, ref = read(f"{mode}-{klass}-{r}.worker"), read(f"{mode}-{klass}-{r}.reference")
        if w and ref:
            out.append((json.loads(w), json.loads(ref), read(f"{mode}-{klass}-{r}.rss")))
    return out


def med(values):
    return statistics.median(values)


def merged(dicts):
    keys = {k for d in dicts for k in d}
    return {k: med([d.get(k, 0.0) for d in dicts]) for k in keys}


model, vector = cpu_line()
print(f"\nCPU: {model}, {os.cpu_count()} cores; vector extensions: {' '.join(vector)}")
print(f"Medians over {rounds} rounds (worker and reference taking turns); the ratio's range over the rounds in brackets.")
for mode in modes:
    seen = {
        "native": "as it is",
        "avx2": "as an AVX2-only CPU (AVX-512, VNNI, AMX hidden by scripts/bench/avx2-only.c)",
        "avx2-worker": "with the worker's OpenVINO held to AVX2 (ONEDNN_MAX_CPU_ISA) and the reference "
        "as it is: a lower bound of the ratio on an AVX2-only CPU",
    }[mode]
    print(f"\n## {mode}: the CPU {seen}\n")
    print("| photos | form | accept ms | process ms | whole upload ms | reference ms | reference / worker |")
    print("|---|---|---|---|---|---|---|")
    details = []
    for klass in CLASSES:
        done = runs(mode, klass)
        if not done:
            continue
        process = med([w["process_ms"] for w, _, _ in done])
        ref = med([r["ms_per_photo"] for _, r, _ in done])
        for form, key in (("API (password)", "api_accept_ms"), ("browser (session)", "page_accept_ms")):
            accept = med([w[key] for w, _, _ in done])
            ratios = [r["ms_per_photo"] / (w[key] + w["process_ms"]) for w, r, _ in done]
            print(f"| {klass} | {form} | {accept:.1f} | {process:.1f} | {accept + process:.1f} | {ref:.1f} | "
                  f"**{med(ratios):.2f}×** ({min(ratios):.2f}–{max(ratios):.2f}) |")
        details.append((klass, done))
    for klass, done in details:
        w0, r0, _ = done[0]
        rss = max(int(rss) for _, _, rss in done if rss)
        print(f"\n{mode}, {klass} ({w0['photos']} photos by each form per round; worker peak RSS {rss} MB; "
              f"{r0['implementation']})")
        print(f"- idle worker: {med([w['idle_ms_per_s'] for w, _, _ in done]):.1f} ms CPU per second "
              "(runtime threads polling or spinning)")
        print(f"- a registration (one argon2id hash + HTTP + row): {med([w['register_ms'] for w, _, _ in done]):.1f} ms; "
              f"the first API upload of a stream (its password checked): {med([w['api_first_ms'] for w, _, _ in done]):.1f} ms")
        for title, key in (("accept, API form", "api_accept_groups"), ("accept, browser form", "page_accept_groups"),
                           ("process", "process_groups")):
            parts = sorted(merged([w[key] for w, _, _ in done]).items(), key=lambda kv: -kv[1])
            print(f"- {title}, ms per photo by thread: " + ", ".join(f"{g} {ms:.1f}" for g, ms in parts if ms >= 0.05))
        stages = sorted(merged([w["stages_ms"] for w, _, _ in done]).items(), key=lambda kv: -kv[1])
        print("- process, ms per photo by stage (wall clock, one photo at a time): "
              + ", ".join(f"{s} {ms:.1f}" for s, ms in stages if ms >= 0.05))
        engine = read(f"{mode}-{klass}-1.engine")
        if engine:
            print(f"- worker: {engine[-200:]}")
