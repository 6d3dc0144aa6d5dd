"""Medians, ratios, targets, Markdown tables and plots from `run.py`'s records."""

import statistics

import numpy as np

import workload

BACKEND_TITLES = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}
# Deep cells held to 1.2x of the hand-written scan on JAX; sRNNs to 1.5x of
# torch.nn.RNN on PyTorch.
DEEP_CELLS = ("dts_rnn", "dots_rnn", "srnn2", "srnn4", "dg_lstm")
TORCH_RNNS = ("rnn", "srnn2", "srnn4")


def label(r):
    depth = "".join(f" {k}={v}" for k, v in (r.get("depth") or {}).items())
    return f"{r['impl']}/{r['backend']} {r['arch']}{depth} units={r['units']} T={r['seq_len']}"


def brief(r):
    if "error" in r:
        return "ERROR " + r["error"]
    return (f"train {1e3 * statistics.median(r['train_step_s']):.1f} ms, "
            f"infer {1e3 * statistics.median(r['infer_step_s']):.1f} ms")


def _gflops(matmul, kind, units):
    widths = sorted({int(k.split("/")[2]) for k in matmul})
    n = min(widths, key=lambda w: abs(w - units))
    return max(matmul[f"{lib}/{kind}/{n}"] for lib in ("numpy", "jax") if f"{lib}/{kind}/{n}" in matmul)


def summarize(records, info):
    """Medians and frames per second per record; peer ratios; the targets."""
    matmul = info.get("matmul_gflops")
    for r in records:
        if "error" in r or not r["train_step_s"]:
            continue
        batch = r.get("batch", workload.BATCH)
        frames = batch * r["seq_len"]
        r["train_s"] = statistics.median(r["train_step_s"])
        r["infer_s"] = statistics.median(r["infer_step_s"])
        r["train_cpu_med_s"] = statistics.median(r["train_cpu_s"])
        r["train_best_s"] = min(r["train_step_s"])
        r["train_fps"], r["infer_fps"] = frames / r["train_s"], frames / r["infer_s"]
        flops = workload.matmul_flops(r["arch"], r["units"], r["seq_len"], batch=batch,
                                      extra=r.get("depth"))
        r["train_gflop"] = flops["train"] / 1e9
        if matmul and "dispatch" not in r["groups"]:
            step, seq = _gflops(matmul, "step", r["units"]), _gflops(matmul, "sequence", r["units"])
            loop, rest = flops["train_in_loop"], flops["train"] - flops["train_in_loop"]
            r["floor_s"] = loop / step / 1e9 + rest / seq / 1e9
            r["floor_fps"] = frames / r["floor_s"]
    return {"machine": info, "records": records, "targets": targets(records)}


def find(records, impl, backend, arch, units, seq_len, group="main"):
    wanted = (impl, backend, arch, units, seq_len)
    for r in records:
        if (r["impl"], r["backend"], r["arch"], r["units"], r["seq_len"]) == wanted \
                and group in r["groups"] and "train_s" in r:
            return r
    return None


def ratio(records, a, b, metric="train_s", group="main"):
    """`a`/`b` are `(impl, backend)`; `{(arch, units): ratio of metric}`."""
    out = {}
    seq_len = info_seq_len(records, group)
    for arch in workload.ARCHS:
        for units in sorted({r["units"] for r in records if group in r["groups"]}):
            ra = find(records, *a, arch, units, seq_len, group)
            rb = find(records, *b, arch, units, seq_len, group)
            if ra and rb:
                out[(arch, units)] = ra[metric] / rb[metric]
    return out


def info_seq_len(records, group="main"):
    return next((r["seq_len"] for r in records if group in r["groups"]), None)


def _linearity(records, backend):
    """Time and peak memory against length for one backend: per-frame time at
    the longest length over that at the main length (the shortest ones carry
    fixed costs), and straight-line fits of time and memory."""
    points = sorted((r["seq_len"], r) for r in records
                    if "length" in r["groups"] and r["backend"] == backend and "train_s" in r)
    if len(points) < 2:
        return None
    lengths = np.array([t for t, _ in points], "float64")
    reference = min(lengths, key=lambda t: abs(t - (info_seq_len(records) or t)))
    if reference == lengths[-1]:
        reference = lengths[0]
    by_length = dict(points)
    r0, r1 = by_length[int(reference)], points[-1][1]

    def per_frame(r, metric):
        return r[metric] / r["seq_len"]

    def fit(values):
        slope, intercept = np.polyfit(lengths, values, 1)
        residual = values - (slope * lengths + intercept)
        return {"slope": slope, "intercept": intercept,
                "r2": 1 - residual.var() / values.var() if values.var() else 1.0}

    time_s = np.array([r["train_s"] for _, r in points])
    memory = np.array([r.get("peak_rss_mb", np.nan) for _, r in points])
    return {"arch": r0["arch"], "lengths": lengths.astype(int).tolist(), "reference": int(reference),
            "growth_per_frame": per_frame(r1, "train_s") / per_frame(r0, "train_s"),
            "growth_per_frame_best": per_frame(r1, "train_best_s") / per_frame(r0, "train_best_s"),
            "growth_per_frame_cpu": per_frame(r1, "train_cpu_med_s") / per_frame(r0, "train_cpu_med_s"),
            "time_fit_s_per_frame": fit(time_s), "memory_fit_mb_per_frame": fit(memory),
            "peak_rss_mb": memory.tolist()}


def targets(records):
    """Each target: the worst ratio of median wall-clock times (as judged), and
    for the same pair the ratio of the best times and of the median process
    CPU times, which other jobs on the machine disturb less."""
    out = []

    def add(name, a, b, limit, archs, group="main"):
        wall, best, cpu = (ratio(records, a, b, metric, group)
                           for metric in ("train_s", "train_best_s", "train_cpu_med_s"))
        wall = {k: v for k, v in wall.items() if k[0] in archs}
        if not wall:
            return
        worst = max(wall, key=wall.get)
        out.append({"target": name, "limit": limit, "worst": wall[worst], "worst_best": best.get(worst),
                    "worst_cpu": cpu.get(worst), "worst_at": f"{worst[0]} units={worst[1]}",
                    "met": wall[worst] <= limit, "all": {f"{a}/{u}": v for (a, u), v in wall.items()},
                    "all_best": {f"{a}/{u}": v for (a, u), v in best.items() if a in archs},
                    "all_cpu": {f"{a}/{u}": v for (a, u), v in cpu.items() if a in archs}})

    add("JAX: deep cell training step / hand-written lax.scan", ("deeprnn", "jax"), ("jax_scan", "jax"),
        1.2, DEEP_CELLS)
    add("PyTorch: rnn/srnn training step / torch.nn.RNN", ("deeprnn", "torch"), ("torch_nn", "torch"),
        1.5, TORCH_RNNS)
    add("PyTorch / JAX training step, every architecture", ("deeprnn", "torch"), ("deeprnn", "jax"),
        2.0, workload.ARCHS)
    add("PyTorch, dispatch-bound: training step / hand-written eager PyTorch loop",
        ("deeprnn", "torch"), ("torch_eager", "torch"), 1.2, workload.ARCHS, "dispatch")
    add("PyTorch / JAX training step, dispatch-bound", ("deeprnn", "torch"), ("deeprnn", "jax"),
        2.0, workload.ARCHS, "dispatch")
    add("JAX, dispatch-bound: deep cell training step / hand-written lax.scan", ("deeprnn", "jax"),
        ("jax_scan", "jax"), 1.2, DEEP_CELLS, "dispatch")
    for b in BACKEND_TITLES:
        add(f"{BACKEND_TITLES[b]}: deep_lstm (build_model) / stacked keras.layers.LSTM",
            ("deeprnn", b), ("keras_layers", b), 1.0, ("deep_lstm",))
    for backend in BACKEND_TITLES:
        lin = _linearity(records, backend)
        if lin:
            out.append({"target": f"{BACKEND_TITLES[backend]}: time per frame at T={lin['lengths'][-1]} "
                        f"/ at T={lin['reference']} (linear total time)", "limit": 1.2,
                        "worst": lin["growth_per_frame"], "worst_best": lin["growth_per_frame_best"],
                        "worst_cpu": lin["growth_per_frame_cpu"],
                        "worst_at": lin["arch"], "met": lin["growth_per_frame"] <= 1.2, **lin})
    return out


# --- Markdown ---------------------------------------------------------------


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _fmt(value, digits=0):
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def _main_rows(records, metric, digits=0, impl="deeprnn"):
    backends = [b for b in BACKEND_TITLES if any(r["backend"] == b for r in records)]
    seq_len, rows = info_seq_len(records), []
    for units in sorted({r["units"] for r in records if "main" in r["groups"]}):
        for arch in workload.ARCHS:
            found = [find(records, impl, b, arch, units, seq_len) for b in backends]
            if any(found):
                rows.append([arch, units] + [_fmt(f.get(metric) if f else None, digits) for f in found])
    return ["architecture", "units"] + [BACKEND_TITLES[b] for b in backends], rows


def markdown(results):
    m, records = results["machine"], results["records"]
    s = m["settings"]
    lines = [
        f"# keras-deeprnn on {m.get('device', 'CPU')}: speed against backends and peers\n",
        "Generated by `python benchmarks/run.py`" + (" --quick" if s["quick"] else "") + ".\n",
        f"* Machine: {m['cpu']}, {m['cores']} cores, {m['platform']}",
        "* Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
        f"* Load average (1, 5, 15 min) before: {', '.join(f'{x:.2f}' for x in m['load_before'])}; "
        f"after: {', '.join(f'{x:.2f}' for x in m['load_after'])}; 1-min load during the run: median "
        f"{m['load_during']['median']:.1f}, max {m['load_during']['max']:.1f} ({m['cores']} cores); wall time "
        f"{m['wall_s'] / 60:.1f} min",
        f"* Workload: next-frame prediction on {s['notes']}-note piano rolls, batch {s['batch']}, "
        f"{s['seq_len']} frames, sigmoid output, binary cross-entropy, Adam with clipnorm 1",
        f"* Timing: median over {s['rounds']} interleaved rounds x {s['repeats']} repeats; each "
        + (f"timing is the mean of {s['steps']} steps" if s.get("steps") else
           f"timing is the mean of 1-10 steps (about {s['gflop']:g} GFLOP of matmuls)")
        + (f" ({s['dispatch']['steps']} in the dispatch-bound table)" if s.get("dispatch") else "")
        + "; frames/s = batch x frames / seconds per step",
        "* Peak memory: growth of the worker's peak RSS (VmHWM) over the first two training steps",
        f"* OpenMP wait policy of the workers: {s.get('omp_wait_policy', 'default')}",
        "* Floor: matmul FLOPs of a step / best measured GFLOP/s (NumPy or JAX) at the step's "
        "shape: (32, n)@(n, n) inside the loop, (32*T, n)@(n, n) for whole-sequence products\n",
    ]
    if m.get("matmul_gflops"):
        lines.append("Measured matmul throughput (GFLOP/s): " + ", ".join(
            f"{k} {v:.0f}" for k, v in sorted(m["matmul_gflops"].items())) + "\n")
    has_main = any("main" in r["groups"] for r in records)
    for title, metric, digits in (("Training frames per second", "train_fps", 0),
                                  ("Inference frames per second", "infer_fps", 0),
                                  ("First training step, compilation included (s)", "first_step_s", 1),
                                  ("Peak memory growth (MB)", "peak_rss_mb", 0)) if has_main else ():
        lines.append(f"## keras-deeprnn: {title}\n")
        lines.append(_table(*_main_rows(records, metric, digits)))
    lines.append(_dispatch_tables(records))

    lines.append(_peer_tables(records))

    lines.append("## Targets\n")
    lines.append("Worst ratio of median wall-clock times per training step (the judged figure); for "
                 "the same pair, the ratio of the best times and of median process CPU times, which "
                 "other jobs on the machine disturb less.\n")
    lines.append(_table(["target", "limit", "worst (median wall)", "same pair, best wall",
                         "same pair, median CPU", "at", "met"],
                        [[t["target"], t["limit"], _fmt(t["worst"], 2), _fmt(t.get("worst_best"), 2),
                          _fmt(t.get("worst_cpu"), 2), t["worst_at"], "yes" if t["met"] else "**no**"]
                         for t in results["targets"]]))
    fits = [(t["target"].split(":")[0], t) for t in results["targets"] if "memory_fit_mb_per_frame" in t]
    if fits:
        lines.append("Straight-line fits against length: time = intercept + slope x frames "
                     "(R² of the fit), and the same for peak memory.\n")
        rows = []
        for backend, t in fits:
            time_fit, memory_fit = t["time_fit_s_per_frame"], t["memory_fit_mb_per_frame"]
            rows.append([backend, _fmt(1e3 * time_fit["slope"], 3), _fmt(1e3 * time_fit["intercept"], 1),
                         _fmt(time_fit["r2"], 3), _fmt(memory_fit["slope"], 2),
                         _fmt(memory_fit["intercept"], 0), _fmt(memory_fit["r2"], 3)])
        lines.append(_table(["backend", "ms per frame", "ms fixed", "R² (time)", "MB per frame",
                             "MB fixed", "R² (memory)"], rows))

    scaling = _scaling_tables(records)
    if scaling:
        lines.append("## Scaling\n")
        lines.append(scaling)
    return "\n".join(lines)


def _peer_tables(records):
    """Frames per second beside the peers, and the ratios of step times, of the
    main table; empty for a run without it (`--table dispatch`)."""
    if not any("main" in r["groups"] for r in records):
        return ""
    out = []
    out.append("## Against the peers: training frames per second\n")
    seq_len, rows = info_seq_len(records), []
    for units in sorted({r["units"] for r in records if "main" in r["groups"]}):
        for arch in workload.ARCHS:
            get = lambda impl, b: find(records, impl, b, arch, units, seq_len)  # noqa: E731
            cells = [get("deeprnn", "jax"), get("jax_scan", "jax"), get("deeprnn", "torch"),
                     get("torch_nn", "torch"), get("torch_eager", "torch"),
                     *(get("keras_layers", b) for b in BACKEND_TITLES)]
            if not any(cells):
                continue
            floor = next((c["floor_fps"] for c in cells if c and "floor_fps" in c), None)
            best = max([c["train_fps"] for c in (get("deeprnn", b) for b in BACKEND_TITLES) if c],
                       default=None)
            rows.append([arch, units] + [_fmt(c["train_fps"] if c else None) for c in cells]
                        + [_fmt(floor), _fmt(100 * best / floor if best and floor else None, 0)])
    out.append(_table(["architecture", "units", "keras-deeprnn JAX", "lax.scan", "keras-deeprnn PyTorch",
                       "torch.nn", "eager PyTorch loop", "Keras layers TF", "Keras layers JAX", "Keras layers PyTorch",
                       "floor", "best backend, % of floor"], rows))

    out.append("## Ratios of training time per step (lower is better for keras-deeprnn)\n")
    pairs = [("JAX / lax.scan", ("deeprnn", "jax"), ("jax_scan", "jax")),
             ("PyTorch / torch.nn", ("deeprnn", "torch"), ("torch_nn", "torch")),
             ("PyTorch / eager loop", ("deeprnn", "torch"), ("torch_eager", "torch")),
             ("PyTorch / JAX", ("deeprnn", "torch"), ("deeprnn", "jax")),
             ("torch.nn / lax.scan", ("torch_nn", "torch"), ("jax_scan", "jax")),
             ("TensorFlow / JAX", ("deeprnn", "tensorflow"), ("deeprnn", "jax"))]
    pairs += [(f"{BACKEND_TITLES[b]}: / Keras layers", ("deeprnn", b), ("keras_layers", b))
              for b in BACKEND_TITLES]
    table = {name: ratio(records, a, b) for name, a, b in pairs}
    keys = sorted({k for v in table.values() for k in v}, key=lambda k: (k[1], list(workload.ARCHS).index(k[0])))
    out.append(_table(["architecture", "units"] + [p[0] for p in pairs],
                      [[a, u] + [_fmt(table[p[0]].get((a, u)), 2) for p in pairs] for a, u in keys]))
    return "\n".join(out)


def _dispatch_tables(records):
    """Milliseconds per step of the dispatch-bound table, and the ratios its targets judge."""
    group, rows, ratios = "dispatch", [], []
    found = [r for r in records if group in r["groups"] and "train_s" in r]
    if not found:
        return ""
    seq_len, r0 = info_seq_len(records, group), found[0]
    columns = [("deeprnn", b, f"keras-deeprnn {BACKEND_TITLES[b]}") for b in BACKEND_TITLES]
    columns += [("jax_scan", "jax", "lax.scan"), ("torch_eager", "torch", "eager PyTorch loop"),
                ("torch_nn", "torch", "torch.nn")]
    pairs = [("PyTorch / eager loop", ("deeprnn", "torch"), ("torch_eager", "torch")),
             ("PyTorch / JAX", ("deeprnn", "torch"), ("deeprnn", "jax")),
             ("JAX / lax.scan", ("deeprnn", "jax"), ("jax_scan", "jax")),
             ("eager loop / lax.scan", ("torch_eager", "torch"), ("jax_scan", "jax"))]
    table = {name: ratio(records, a, b, group=group) for name, a, b in pairs}
    cpu = {name: ratio(records, a, b, "train_cpu_med_s", group) for name, a, b in pairs}
    for arch in workload.ARCHS:
        get = [find(records, impl, b, arch, r0["units"], seq_len, group) for impl, b, _ in columns]
        if not any(get):
            continue
        rows.append([arch] + [f"{_fmt(1e3 * g['train_s'], 1)} / {_fmt(1e3 * g['infer_s'], 1)}" if g else "–"
                              for g in get])
        key = (arch, r0["units"])
        ratios.append([arch] + [f"{_fmt(table[n].get(key), 2)} ({_fmt(cpu[n].get(key), 2)})"
                                for n, _, _ in pairs])
    return "\n".join([
        f"## Dispatch-bound: batch {r0.get('batch')}, {seq_len} frames, {r0['units']} units, "
        f"{r0.get('threads')} thread per backend\n",
        "Milliseconds per training step / per forward pass (median over rounds). At this size "
        "the matrices are tiny and the time goes to launching operations.\n",
        _table(["architecture"] + [c[2] for c in columns], rows),
        "Ratios of training time per step (median wall clock; in brackets, median process CPU time):\n",
        _table(["architecture"] + [p[0] for p in pairs], ratios),
    ])


SCALING_GROUPS = ("length", "depth", "width")


def _scaling_tables(records):
    out = []
    length = [r for r in records if "length" in r["groups"] and "train_s" in r]
    backends = [b for b in BACKEND_TITLES if any(r["backend"] == b for r in length)]
    if length:
        rows = []
        for t in sorted({r["seq_len"] for r in length}):
            row = [t]
            for b in backends:
                r = next((r for r in length if r["seq_len"] == t and r["backend"] == b), None)
                row += [_fmt(1e3 * r["train_s"], 1) if r else "–",
                        _fmt(1e6 * r["train_s"] / (t * workload.BATCH), 1) if r else "–",
                        _fmt(r.get("peak_rss_mb")) if r else "–"]
            rows.append(row)
        header = ["frames"] + [f"{BACKEND_TITLES[b]} {c}" for b in backends
                               for c in ("ms/step", "µs/frame", "peak MB")]
        r0 = length[0]
        out.append(f"Sequence length ({r0['arch']}, units {r0['units']}, training step):\n")
        out.append(_table(header, rows))
    for group, what in (("depth", "sRNN levels"), ("width", "units")):
        pts = sorted((r for r in records if group in r["groups"] and "train_s" in r),
                     key=lambda r: (r.get("depth") or {}).get("num_layers", 0) + r["units"])
        if not pts:
            continue
        rows = [[(r.get("depth") or {}).get("num_layers") if group == "depth" else r["units"],
                 _fmt(1e3 * r["train_s"], 1), _fmt(r["train_fps"]), _fmt(r.get("floor_fps")),
                 _fmt(r["train_gflop"], 2), _fmt(r.get("peak_rss_mb"))] for r in pts]
        out.append(f"{what.capitalize()} ({pts[0]['arch'] if group == 'width' else 'srnn'}, "
                   f"{BACKEND_TITLES[pts[0]['backend']]}, {pts[0]['seq_len']} frames):\n")
        out.append(_table([what, "ms/step", "train fps", "floor fps", "GFLOP/step", "peak MB"], rows))
    return "\n".join(out)


# --- Plots ------------------------------------------------------------------


def has_scaling(results):
    """Whether the run measured any scaling point (a dispatch-only run does not)."""
    return any(group in r["groups"] and "train_s" in r for r in results["records"]
               for group in SCALING_GROUPS)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_fps(results, fps_path):
    """Training frames per second per architecture: one panel per width of
    the main table, one for the dispatch-bound table."""
    plt = _pyplot()
    records = results["records"]
    panels = [("main", u) for u in sorted({r["units"] for r in records if "main" in r["groups"]})]
    panels += [("dispatch", u) for u in sorted({r["units"] for r in records if "dispatch" in r["groups"]})]
    series = [("deeprnn", b, f"keras-deeprnn {BACKEND_TITLES[b]}") for b in BACKEND_TITLES]
    series += [("jax_scan", "jax", "lax.scan (JAX)"), ("torch_nn", "torch", "torch.nn"),
               ("torch_eager", "torch", "eager PyTorch loop"),
               ("keras_layers", "jax", "Keras layers (JAX)")]
    fig, axes = plt.subplots(max(1, len(panels)), 1, figsize=(11, 3.6 * max(1, len(panels))),
                             squeeze=False)
    for ax, (group, units) in zip(axes[:, 0], panels):
        seq_len = info_seq_len(records, group)
        archs = list(workload.ARCHS)
        step = 0.8 / len(series)
        for i, (impl, backend, name) in enumerate(series):
            vals = [(find(records, impl, backend, a, units, seq_len, group) or {}).get("train_fps", 0)
                    for a in archs]
            ax.bar([j + i * step for j in range(len(archs))], vals, step, label=name)
        floors = [(find(records, "deeprnn", "jax", a, units, seq_len, group) or {}).get("floor_fps")
                  for a in archs]
        if any(floors):
            ax.scatter([j + 0.4 - step / 2 for j in range(len(archs))], [f or 0 for f in floors],
                       marker="_", s=600, color="k", label="floor (matmul FLOPs)")
        ax.set_xticks([j + 0.4 - step / 2 for j in range(len(archs))], archs)
        ax.set_yscale("log")
        ax.set_ylabel("training frames / s")
        batch = next((r.get("batch", workload.BATCH) for r in records if group in r["groups"]), None)
        threads = next((r.get("threads") for r in records if group in r["groups"]), None)
        ax.set_title(f"{'dispatch-bound: ' if group == 'dispatch' else ''}units {units}, batch {batch}, "
                     f"{seq_len} frames" + (f", {threads} thread per backend" if threads else ""))
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].legend(fontsize=7, ncol=4)
    fig.tight_layout()
    fig.savefig(fps_path, dpi=110)
    plt.close(fig)


def plot_scaling(results, scaling_path):
    plt = _pyplot()
    records = results["records"]
    fig, axes = plt.subplots(1, 4, figsize=(17, 3.8))
    length = [r for r in records if "length" in r["groups"] and "train_s" in r]
    for b in BACKEND_TITLES:
        pts = sorted((r["seq_len"], 1e3 * r["train_s"], r.get("peak_rss_mb")) for r in length
                     if r["backend"] == b)
        if pts:
            xs, ys, mem = zip(*pts)
            axes[0].plot(xs, ys, "o-", label=BACKEND_TITLES[b])
            axes[1].plot(xs, mem, "o-", label=BACKEND_TITLES[b])
    arch = length[0]["arch"] if length else ""
    axes[0].set(xlabel="frames per sequence", ylabel="ms per training step", title=f"time against length ({arch})")
    axes[1].set(xlabel="frames per sequence", ylabel="peak memory growth (MB)",
                title=f"memory against length ({arch})")
    for ax, group, x_of, title in (
            (axes[2], "depth", lambda r: r["depth"]["num_layers"], "depth (srnn levels)"),
            (axes[3], "width", lambda r: r["units"], f"width ({arch} units)")):
        points = [r for r in records if group in r["groups"] and "train_s" in r]
        pts = sorted((x_of(r), 1e3 * r["train_s"], 1e3 * r.get("floor_s", 0)) for r in points)
        if pts:
            xs, ys, fl = zip(*pts)
            ax.plot(xs, ys, "o-", label=f"keras-deeprnn {BACKEND_TITLES[points[0]['backend']]}")
            ax.plot(xs, fl, "k--", label="floor")
            ax.set(xlabel=title.split(" ")[0], ylabel="ms per training step", title=title)
    if any("width" in r["groups"] for r in records):
        axes[3].set_xscale("log", base=2)
        axes[3].set_yscale("log")
    for ax in axes:
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(scaling_path, dpi=110)
    plt.close(fig)
