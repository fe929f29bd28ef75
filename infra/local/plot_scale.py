"""Draws the simulator's scenarios (docs/scale/*.csv, written by messaging-sim) as PNGs:
for each scenario, its rates over time per design (left) and its latency CDF (right).

Usage: .venv-plot/bin/python infra/local/plot_scale.py docs/scale
"""

import csv
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# scenario: (what the series plots, the CSV column, the y label, what a CDF entry is)
SCENARIOS = {
    "storm": ("connected", "connects a second", "time to connect (s)"),
    "announcement": ("delivered", "deliveries a second", "send → delivery (s)"),
    "chatting": ("delivered", "deliveries a second", "send → delivery (s)"),
}
THROTTLED = {"storm": "refused_connects", "announcement": "throttled_posts", "chatting": "throttled_posts"}


def read(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {k: [float(r[k]) for r in rows] for k in rows[0]} if rows else {}


def main(folder):
    folder = Path(folder)
    for scenario, (column, ylabel, xlabel) in SCENARIOS.items():
        series = sorted(folder.glob(f"{scenario}-*-series.csv"))
        if not series:
            continue
        fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5))
        for path in series:
            variant = path.name[len(scenario) + 1 : -len("-series.csv")]
            s = read(path)
            if not s:
                continue
            line = left.plot(s["t_s"], s[column], label=variant, linewidth=1.2)[0]
            left.plot(s["t_s"], s[THROTTLED[scenario]], linestyle=":", color=line.get_color(), linewidth=1)
            c = read(folder / f"{scenario}-{variant}-cdf.csv")
            if c:
                right.plot(c["latency_s"], c["fraction"], label=variant, color=line.get_color())
        if scenario == "storm":
            # Today's storm goes on for the whole hour; its first minutes say it all.
            left.set_xlim(0, 400)
        left.set_xlabel("simulated time (s)")
        left.set_ylabel(f"{ylabel} (dotted: throttled)")
        left.set_title(f"{scenario}: rates")
        left.legend(fontsize=8)
        right.set_xscale("log")
        right.set_xlabel(xlabel)
        right.set_ylabel("fraction at or below")
        right.set_title(f"{scenario}: latency CDF")
        right.grid(True, which="both", alpha=0.3)
        right.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(folder / f"{scenario}.png", dpi=90)
        plt.close(fig)
        print(folder / f"{scenario}.png")
    v = folder / "validation.csv"
    if v.exists():
        d = read(v)
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(d["recipients"], d["bench_last_s"], "o-", label="bench (moto, local gateway)")
        ax.plot(d["recipients"], d["simulated_last_s"], "s--", label="simulator (bench service times)")
        ax.set_xscale("log")
        ax.set_xlabel("recipients of one message")
        ax.set_ylabel("send → last delivery (s)")
        ax.set_title("validation against the bench")
        ax.legend()
        fig.tight_layout()
        fig.savefig(folder / "validation.png", dpi=90)
        plt.close(fig)
        print(v.with_suffix(".png"))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/scale")
