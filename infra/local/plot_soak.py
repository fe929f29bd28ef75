"""Draws the soak's resident memory (bench/results/soak-rss.csv) as soak-rss.png.

Usage: plot_soak.py RESULTS_DIR
"""
import csv
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(results: Path) -> None:
    rows = list(csv.DictReader((results / "soak-rss.csv").open()))
    seconds = [float(r["seconds"]) for r in rows]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    ax.plot(seconds, [float(r["bench_mb"]) for r in rows], marker="o",
            label="bench process: gateway, functions, client sockets")
    if any(r["moto_mb"] for r in rows):
        ax.plot([s for s, r in zip(seconds, rows) if r["moto_mb"]],
                [float(r["moto_mb"]) for r in rows if r["moto_mb"]], marker="s",
                label="moto (keeps every stored item)")
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("resident memory (MB)")
    ax.set_title("Soak: resident memory every 10 s")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(results / "soak-rss.png")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
