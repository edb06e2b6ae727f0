"""Plots of the benchmark JSON files (matplotlib, Agg backend, PNG out).

Usage::

    python benchmarks/plots.py [benchmarks/results/quality.json] [benchmarks/results/throughput_compare.json]
    python benchmarks/plots.py --table [benchmarks/results/quality.json]   # README markdown table
    (also for sts_multilingual.json and throughput_compare.json)

``recall_vs_bytes`` draws single-stage recall@10 (filled markers) and
two-stage recall@10 with N=100 dense rescoring (hollow markers) against bytes
per vector, log x axis, one colour per family. ``throughput_bars`` draws
encode and scan rates per method.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

FAMILY_COLORS = {"clark_hash": "tab:blue", "package": "tab:red", "reference": "tab:gray",
                 "dense": "black", "faiss": "tab:green", "sentence-transformers": "tab:purple"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _short(name: str) -> str:
    return (name.replace("clark_hash ", "CH ").replace("ref: ", "ref ")
            .replace(", float query", " (float q)").replace(", hamming", " (hamming)")
            .replace("normalized mean+c reconstruction", "norm. recon."))


def recall_vs_bytes(result: dict, png: Path) -> Path:
    """Left: best recall@10 per family at each size (log2 bytes), single stage
    (filled) and two-stage N=100 (hollow). Right: every method at 48 bytes."""
    plt = _plt()
    rows = result["methods"]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(15, 7.5), dpi=100,
                                 gridspec_kw={"width_ratios": [1, 1.15]})
    fams = sorted({r["family"] for r in rows})
    for fam in fams:
        c = FAMILY_COLORS.get(fam, "tab:orange")
        best = {}
        for r in rows:
            if r["family"] == fam and (r["bytes_per_vector"] not in best
                                       or r["recall@10"] > best[r["bytes_per_vector"]]["recall@10"]):
                best[r["bytes_per_vector"]] = r
        xs = sorted(best)
        ax.plot(xs, [best[x]["recall@10"] for x in xs], "-o", color=c, label=f"{fam} (best per size)")
        if fam != "dense":
            ax.plot(xs, [best[x]["two_stage_recall@10_dense_N100"] for x in xs], ":o", color=c,
                    markerfacecolor="none")
        for x in xs:
            ax.annotate(_short(best[x]["method"]), (x, best[x]["recall@10"]), fontsize=7,
                        xytext=(4, {"clark_hash": -10, "reference": -12}.get(fam, 6)),
                        textcoords="offset points")
    ax.plot([], [], ":o", color="k", markerfacecolor="none", label="two-stage, N=100 rescored")
    ax.axhline(0.65, color="tab:red", ls="--", lw=0.8)
    ax.axhline(0.98, color="tab:green", ls="--", lw=0.8)
    ax.axvline(48, color="0.6", ls="--", lw=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("bytes per vector (log2)")
    ax.set_ylabel("recall@10 vs exact cosine")
    ax.set_ylim(0, 1.02)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("best codec of each family per size", fontsize=10)

    at48 = sorted((r for r in rows if r["bytes_per_vector"] == 48), key=lambda r: r["recall@10"])
    y = range(len(at48))
    bx.barh(y, [r["recall@10"] for r in at48],
            color=[FAMILY_COLORS.get(r["family"], "tab:orange") for r in at48], label="single stage")
    bx.scatter([r["two_stage_recall@10_dense_N100"] for r in at48], y, marker="|", s=120, color="k",
               label="two-stage (N=100, dense rescoring)", zorder=3)
    bx.set_yticks(list(y))
    bx.set_yticklabels([_short(r["method"]) for r in at48], fontsize=7)
    bx.axvline(0.65, color="tab:red", ls="--", lw=0.8, label="target 0.65 single stage")
    bx.axvline(0.98, color="tab:green", ls="--", lw=0.8, label="target 0.98 two-stage")
    bx.set_xlim(0, 1.0)
    bx.set_xlabel("recall@10")
    bx.grid(True, axis="x", alpha=0.3)
    bx.legend(fontsize=7, loc="lower right")
    bx.set_title("every codec at 48 bytes per vector", fontsize=10)
    fig.suptitle(f"{result['dataset']}: {result['corpus']} sentences, {result['queries']} held-out queries, "
                 "all-MiniLM-L6-v2 (colours: " + ", ".join(
                     f"{f}={FAMILY_COLORS.get(f, 'tab:orange').replace('tab:', '')}" for f in fams) + ")",
                 fontsize=10)
    fig.tight_layout()
    png = Path(png)
    fig.savefig(png)
    plt.close(fig)
    return png


def throughput_bars(result: dict, png: Path) -> Path:
    plt = _plt()
    rows = result["methods"]
    names = [r["method"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.32 * len(rows) + 1.5), dpi=110, sharey=True)
    for ax, key, title in ((axes[0], "encode_vectors_per_s", "encode (vectors/s)"),
                           (axes[1], "scan_codes_per_s", "scan one query (codes/s)")):
        vals = [r.get(key) or 0 for r in rows]
        cols = [FAMILY_COLORS.get(r["family"], "tab:orange") for r in rows]
        ax.barh(range(len(rows)), vals, color=cols)
        ax.set_xscale("log")
        ax.set_title(title, fontsize=9)
        ax.grid(True, axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(rows)))
    axes[0].set_yticklabels(names, fontsize=7)
    axes[0].invert_yaxis()
    fig.suptitle(f"Throughput, {result['corpus']} x {result['dim']}-d, 1 thread where settable",
                 fontsize=10)
    fig.tight_layout()
    png = Path(png)
    fig.savefig(png)
    plt.close(fig)
    return png


def recall_table(result: dict) -> str:
    """The README's recall-vs-bytes table (markdown), sorted by bytes then recall@10."""
    head = ("| method | bytes | recall@1 | recall@10 | recall@100 | two-stage recall@10 (N=100 dense) "
            "| two-stage (N=100 int8) | STS-B Spearman (dense) | Pearson vs dense |\n"
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    lines = [head]
    for r in sorted(result["methods"], key=lambda r: (r["bytes_per_vector"], -r["recall@10"])):
        sts = r.get("sts", {}).get("stsb_test")
        sp = f"{sts['spearman']:.4f} ({sts['dense_spearman']:.4f})" if sts else "-"
        pe = f"{sts['pearson_vs_dense']:.4f}" if sts else "-"
        lines.append(f"| {r['method']} | {r['bytes_per_vector']} | {r['recall@1']:.3f} | "
                     f"{r['recall@10']:.3f} | {r['recall@100']:.3f} | "
                     f"{r['two_stage_recall@10_dense_N100']:.3f} | "
                     f"{r['two_stage_recall@10_int8_N100']:.3f} | {sp} | {pe} |")
    return "\n".join(lines)


def sts_table(result: dict) -> str:
    """Markdown: per STS17 pair file, Spearman (dense) / Pearson vs dense."""
    sets = list(result["methods"][0]["sts"])
    lines = ["| method | bytes | " + " | ".join(sets) + " |",
             "|---|---:|" + "---:|" * len(sets)]
    for r in result["methods"]:
        lines.append(f"| {r['method']} | {r['bytes_per_vector']} | " + " | ".join(
            f"{r['sts'][k]['spearman']:.3f} ({r['sts'][k]['dense_spearman']:.3f}) / "
            f"{r['sts'][k]['pearson_vs_dense']:.3f}" for k in sets) + " |")
    return "\n".join(lines)


def throughput_table(result: dict) -> str:
    lines = [f"{result['corpus']} x {result['dim']}-d ({result['vectors']}), {result['threads']} thread(s).",
             "", "| method | bytes | encode vectors/s | scan codes/s (top-10, one query) |",
             "|---|---:|---:|---:|"]
    for r in result["methods"]:
        lines.append(f"| {r['method']} | {r['bytes_per_vector']} | {r['encode_vectors_per_s']:,} | "
                     f"{r['scan_codes_per_s']:,} |")
    return "\n".join(lines)


def table(result: dict) -> str:
    """The README table matching a result file's kind."""
    kind = result.get("benchmark", "")
    if kind.startswith("throughput"):
        return throughput_table(result)
    if kind.startswith("STS17"):
        return sts_table(result)
    return recall_table(result)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    res = Path(__file__).resolve().parent / "results"
    if argv[:1] == ["--table"]:
        print(table(json.loads(Path(argv[1] if len(argv) > 1 else res / "quality.json").read_text())))
        return 0
    paths = [Path(p) for p in argv] or [res / "quality.json", res / "throughput_compare.json"]
    for p in paths:
        if not p.exists():
            print(f"{p}: missing, skipped")
            continue
        data = json.loads(p.read_text())
        if "throughput" in p.name:
            print(throughput_bars(data, p.with_suffix(".png")))
        else:
            print(recall_vs_bytes(data, p.with_name("recall_vs_bytes.png")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
