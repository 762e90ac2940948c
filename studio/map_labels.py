"""Which cluster labels the map draws at a given view, and where: zoom-aware, never overlapping.

A pure function of the label anchors, the view ranges and the plot's pixel size, so the
placement is tested without a browser. The rule (as DataMapPlot and Nomic Atlas do it):

* the coarsest layer is drawn at full view; each ``ZOOM_PER_LAYER``× zoom reveals one finer layer;
* the font grows with the cluster's size (log scale), coarser layers first;
* greedy placement in priority order (coarser layer, then bigger cluster): a label is drawn
  only if its box lies inside the plot and overlaps no label drawn before it. A label whose
  anchor is in view but whose box would cross the plot edge is shifted inside.

Text boxes are estimated from the character count (a generous average glyph width), so the
browser's real boxes are smaller than the ones checked here.
"""

from __future__ import annotations

import math
import textwrap

import numpy as np
import pandas as pd

MIN_FONT_PX, MAX_FONT_PX = 11.0, 20.0
CHAR_WIDTH_EM = 0.62  # average glyph width / font size, generous for bold sans-serif (+ halo)
LINE_HEIGHT_EM = 1.25
WRAP_CHARS = 22  # long labels wrap to lines of about this many characters…
MAX_LINES = 3  # …at most this many
PAD_PX = 3.0  # empty margin around every box
ZOOM_PER_LAYER = 2.0  # zoom factor that reveals one finer layer
PLACED_COLUMNS = ["x", "y", "text", "layer", "cluster", "font_px", "x0", "y0", "x1", "y1"]


def wrap_label(label: str, width: int = WRAP_CHARS, max_lines: int = MAX_LINES) -> str:
    """The label on at most ``max_lines`` lines of about ``width`` characters (… when cut)."""
    lines = textwrap.wrap(" ".join(str(label).split()), width=width, break_long_words=True) or [""]
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: width - 1].rstrip() + "…"
    return "\n".join(lines)


def text_box_px(text: str, font_px: float) -> tuple[float, float]:
    """(width, height) in pixels of a (multi-line) label, padding included."""
    lines = text.split("\n")
    width = max(len(line) for line in lines) * CHAR_WIDTH_EM * font_px
    height = len(lines) * LINE_HEIGHT_EM * font_px
    return width + 2 * PAD_PX, height + 2 * PAD_PX


def font_sizes(counts: np.ndarray) -> np.ndarray:
    """Font size in px per label: log of the cluster size, scaled to [MIN_FONT_PX, MAX_FONT_PX]."""
    counts = np.log(np.maximum(np.asarray(counts, dtype=float), 1.0))
    if not len(counts):
        return counts
    lo, hi = counts.min(), counts.max()
    scale = (counts - lo) / (hi - lo) if hi > lo else np.full(len(counts), 0.5)
    return np.round(MIN_FONT_PX + scale * (MAX_FONT_PX - MIN_FONT_PX), 1)


def visible_layers(layers, zoom: float) -> list[int]:
    """Layers drawn at ``zoom`` (full span / view span): the coarsest, plus one finer per ZOOM_PER_LAYER×."""
    layers = sorted({int(layer) for layer in layers})
    if not layers:
        return []
    steps = max(0, int(math.floor(math.log(max(zoom, 1.0)) / math.log(ZOOM_PER_LAYER) + 1e-9)))
    return layers[max(0, len(layers) - 1 - steps):]


def _repeated_by_finer(frame: pd.DataFrame, in_view: np.ndarray) -> np.ndarray:
    """Rows whose label text a finer layer's label in view repeats: a parent named like its
    one big child (toponymy does that) would otherwise hide the child's label when zoomed."""
    seen = frame.loc[in_view, ["label", "layer"]]
    finest = seen.groupby("label")["layer"].min()
    own = frame["label"].map(finest)
    return (in_view & own.notna().to_numpy() & (frame["layer"].to_numpy() > own.fillna(-1).to_numpy()))


def place_labels(anchors: pd.DataFrame, x_range, y_range, width_px: float, height_px: float,
                 full_span: float | None = None) -> pd.DataFrame:
    """The labels drawn in this view and their screen boxes (pixels, y down from the top).

    ``anchors``: one row per cluster label with x, y (data), label, layer, count and
    optionally cluster. ``full_span``: the data width of the full view (default: the anchors'
    x extent); the zoom is ``full_span / view width``. Returns ``PLACED_COLUMNS`` in drawing
    priority order; x, y are the (possibly shifted) data positions of the box centres.
    """
    empty = pd.DataFrame(columns=PLACED_COLUMNS)
    if anchors is None or not len(anchors) or width_px <= 0 or height_px <= 0:
        return empty
    (vx0, vx1), (vy0, vy1) = sorted(x_range), sorted(y_range)
    if not (vx1 > vx0 and vy1 > vy0):
        return empty
    frame = anchors.reset_index(drop=True)
    if full_span is None:
        full_span = float(frame["x"].max() - frame["x"].min()) or (vx1 - vx0)
    zoom = full_span / (vx1 - vx0)
    fonts = font_sizes(frame["count"].to_numpy())
    shown = set(visible_layers(frame["layer"], zoom))
    x, y = frame["x"].to_numpy(dtype=float), frame["y"].to_numpy(dtype=float)
    in_view = (x >= vx0) & (x <= vx1) & (y >= vy0) & (y <= vy1) & frame["layer"].isin(shown).to_numpy()
    in_view &= ~_repeated_by_finer(frame, in_view)
    order = sorted(np.flatnonzero(in_view), key=lambda i: (-int(frame["layer"].iat[i]), -float(frame["count"].iat[i]), i))
    sx, sy = width_px / (vx1 - vx0), height_px / (vy1 - vy0)
    boxes = np.empty((0, 4))
    rows = []
    for i in order:
        text = wrap_label(frame["label"].iat[i])
        if not text.strip():
            continue
        w, h = text_box_px(text, fonts[i])
        if w > width_px or h > height_px:
            continue
        cx = min(max((x[i] - vx0) * sx, w / 2), width_px - w / 2)  # shifted inside the plot
        cy = min(max((vy1 - y[i]) * sy, h / 2), height_px - h / 2)
        box = np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
        if len(boxes) and np.any((boxes[:, 0] < box[2]) & (box[0] < boxes[:, 2])
                                 & (boxes[:, 1] < box[3]) & (box[1] < boxes[:, 3])):
            continue
        boxes = np.vstack([boxes, box])
        rows.append((vx0 + cx / sx, vy1 - cy / sy, text, int(frame["layer"].iat[i]),
                     str(frame["cluster"].iat[i]) if "cluster" in frame else str(i), float(fonts[i]), *box))
    return pd.DataFrame(rows, columns=PLACED_COLUMNS) if rows else empty


def overlapping_pairs(placed: pd.DataFrame) -> int:
    """Number of pairs of drawn boxes that overlap (what the tests require to be 0)."""
    b = placed[["x0", "y0", "x1", "y1"]].to_numpy(dtype=float)
    if len(b) < 2:
        return 0
    hit = ((b[:, None, 0] < b[None, :, 2]) & (b[None, :, 0] < b[:, None, 2])
           & (b[:, None, 1] < b[None, :, 3]) & (b[None, :, 1] < b[:, None, 3]))
    return int(np.triu(hit, 1).sum())


def boxes_outside(placed: pd.DataFrame, width_px: float, height_px: float) -> int:
    """Number of drawn boxes not wholly inside the plot."""
    b = placed[["x0", "y0", "x1", "y1"]].to_numpy(dtype=float)
    eps = 1e-6
    return int(((b[:, 0] < -eps) | (b[:, 1] < -eps) | (b[:, 2] > width_px + eps) | (b[:, 3] > height_px + eps)).sum())
