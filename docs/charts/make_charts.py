#!/usr/bin/env python3
"""Draws the charts of BENCHMARKS.md and LOAD.md from the measured figures beside this script.

    python3 docs/charts/make_charts.py

Each `*.csv` here is one chart: a first line `# title | unit | scale` (scale `linear` or `log`),
then `label,value` rows (a value per row; a third column `group` colours bars by group). The
script writes `<name>.svg` next to it, with no dependency beyond Python 3's standard library, so
the charts can be redrawn wherever the figures are re-measured. Edit the CSV with new figures,
run the script, commit both.
"""

import csv
import html
import math
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
WIDTH, BAR, GAP, LEFT, RIGHT, TOP = 760, 22, 8, 230, 110, 48
COLOURS = ["#3b6ea5", "#d08c2e", "#5a9e5a", "#a55a8c"]


def read(path):
    with path.open(newline="") as source:
        header = source.readline().lstrip("#").strip()
        title, unit, scale = (part.strip() for part in header.split("|"))
        rows = [row for row in csv.reader(source) if row and not row[0].startswith("#")]
    bars = [(row[0], float(row[1]), row[2] if len(row) > 2 else "") for row in rows]
    return title, unit, scale, bars


def ticks(floor, top, scale):
    """Axis marks: each power of ten on a log scale, five even steps on a linear one."""
    if scale == "log":
        marks, mark = [], floor
        while mark <= top:
            marks.append(mark)
            mark *= 10
        return marks
    step = 10 ** math.floor(math.log10(top / 5))
    step *= next(m for m in (1, 2, 5, 10) if top / (step * m) <= 6)
    return [step * i for i in range(int(top // step) + 1)]


def draw(path):
    title, unit, scale, bars = read(path)
    span = WIDTH - LEFT - RIGHT
    top = max(value for _, value, _ in bars) * 1.05
    low = min(value for _, value, _ in bars)
    floor = 10 ** math.floor(math.log10(low)) if scale == "log" else 0
    groups = sorted({group for _, _, group in bars if group})

    def x(value):
        if scale == "log":
            return span * math.log10(value / floor) / math.log10(top / floor)
        return span * value / top

    height = TOP + len(bars) * (BAR + GAP) + 44 + (22 if groups else 0)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'font-family="system-ui, sans-serif" font-size="13">',
        f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">'
        f"{html.escape(title)}</text>",
    ]
    for index, (label, value, group) in enumerate(bars):
        y = TOP + index * (BAR + GAP)
        colour = COLOURS[groups.index(group) % len(COLOURS)] if group else COLOURS[0]
        width = max(x(value), 1)
        out.append(
            f'<text x="{LEFT - 8}" y="{y + BAR * 0.7}" text-anchor="end">{html.escape(label)}</text>'
        )
        out.append(f'<rect x="{LEFT}" y="{y}" width="{width:.1f}" height="{BAR}" fill="{colour}"/>')
        shown = f"{value:,.2f}".rstrip("0").rstrip(".")
        out.append(
            f'<text x="{LEFT + width + 6:.1f}" y="{y + BAR * 0.7}">{shown} {html.escape(unit)}</text>'
        )
    axis_y = TOP + len(bars) * (BAR + GAP) + 4
    out.append(f'<line x1="{LEFT}" y1="{axis_y}" x2="{LEFT + span}" y2="{axis_y}" stroke="#888"/>')
    for tick in ticks(floor, top, scale):
        tx = LEFT + x(tick)
        out.append(f'<line x1="{tx:.1f}" y1="{axis_y}" x2="{tx:.1f}" y2="{axis_y + 5}" stroke="#888"/>')
        out.append(f'<text x="{tx:.1f}" y="{axis_y + 18}" text-anchor="middle" fill="#555">{tick:g}</text>')
    note = f"{unit}, logarithmic scale" if scale == "log" else unit
    out.append(f'<text x="{LEFT - 8}" y="{axis_y + 18}" text-anchor="end" fill="#555">{html.escape(note)}</text>')
    gx = LEFT
    for index, group in enumerate(groups):
        out.append(f'<rect x="{gx}" y="{axis_y + 28}" width="12" height="12" fill="{COLOURS[index % len(COLOURS)]}"/>')
        out.append(f'<text x="{gx + 18}" y="{axis_y + 38}">{html.escape(group)}</text>')
        gx += 18 + 8 * len(group) + 24
    out.append("</svg>")
    target = path.with_suffix(".svg")
    target.write_text("\n".join(out) + "\n")
    print(f"wrote {target.relative_to(HERE.parent.parent)}")


if __name__ == "__main__":
    for csv_path in sorted(HERE.glob("*.csv")):
        draw(csv_path)
