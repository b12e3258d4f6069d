"""Procedural urban scenes labelled in the 19 Cityscapes train ids.

One scene is a pure function of (seed, split, index): a perspective street (road with lane marks,
sidewalks, terrain verges), facades with windows, walls and fences, trees, poles with traffic
lights and signs, and cars, trucks, buses, trams, people, riders, bicycles and motorcycles scaled
by their distance to the horizon. Thin structures (poles, sign posts, bicycle frames, fence slats)
and class textures are there so that noise really hurts segmentation.

Output: image float32 (H, W, 3) RGB in [0, 1]; labels uint8 (H, W) train ids.
"""
from __future__ import annotations

import numpy as np

from .classes import ID

Array = np.ndarray


class Canvas:
    """An image and its label map, painted front to back by the caller (painter's order)."""

    def __init__(self, h: int, w: int, rng: np.random.Generator) -> None:
        self.h, self.w, self.rng = h, w, rng
        self.img = np.zeros((h, w, 3), np.float32)
        self.lab = np.full((h, w), 255, np.uint8)
        # Grain of a few pixels (not white noise: a clean target must be recoverable, in part, from a noisy one).
        fine = _smooth_noise(rng, h, w, cell=3)
        self.fine = fine / max(float(fine.std()), 1e-6)
        self.coarse = _smooth_noise(rng, h, w, cell=8)  # blotchy texture field

    def paint(self, ys: slice, xs: slice, mask: Array, color: Array, label: int,
              fine: float = 0.03, coarse: float = 0.0) -> None:
        """Paint ``color`` (3,) with texture where ``mask`` (bbox-sized bool) holds."""
        if mask.size == 0 or not mask.any():
            return
        tex = fine * self.fine[ys, xs] + coarse * self.coarse[ys, xs]
        region = self.img[ys, xs]
        region[mask] = np.clip(color[None, :] * (1.0 + tex[mask][:, None]), 0.0, 1.0)
        self.lab[ys, xs][mask] = label

    def box(self, x0: float, y0: float, x1: float, y1: float) -> tuple[slice, slice, Array, Array] | None:
        """Clip a box to the canvas; return its slices and pixel-centre grids (yy, xx)."""
        ix0, iy0 = max(int(np.floor(x0)), 0), max(int(np.floor(y0)), 0)
        ix1, iy1 = min(int(np.ceil(x1)) + 1, self.w), min(int(np.ceil(y1)) + 1, self.h)
        if ix1 <= ix0 or iy1 <= iy0:
            return None
        yy, xx = np.mgrid[iy0:iy1, ix0:ix1].astype(np.float32)
        return slice(iy0, iy1), slice(ix0, ix1), yy + 0.5, xx + 0.5

    def rect(self, x0, y0, x1, y1, color, label, **tex) -> None:
        b = self.box(x0, y0, x1, y1)
        if b:
            ys, xs, yy, xx = b
            self.paint(ys, xs, (xx >= x0) & (xx < x1) & (yy >= y0) & (yy < y1), color, label, **tex)

    def ellipse(self, cx, cy, rx, ry, color, label, ring: float = 0.0, **tex) -> None:
        """Filled ellipse, or a ring of relative thickness ``ring`` (0 = filled)."""
        b = self.box(cx - rx, cy - ry, cx + rx, cy + ry)
        if b:
            ys, xs, yy, xx = b
            r = ((xx - cx) / max(rx, 0.5)) ** 2 + ((yy - cy) / max(ry, 0.5)) ** 2
            mask = (r <= 1.0) & (r >= (1.0 - ring) ** 2) if ring > 0 else r <= 1.0
            self.paint(ys, xs, mask, color, label, **tex)

    def line(self, x0, y0, x1, y1, width, color, label, **tex) -> None:
        """A segment of pixel ``width``."""
        pad = width
        b = self.box(min(x0, x1) - pad, min(y0, y1) - pad, max(x0, x1) + pad, max(y0, y1) + pad)
        if b:
            ys, xs, yy, xx = b
            dx, dy = x1 - x0, y1 - y0
            n2 = max(dx * dx + dy * dy, 1e-6)
            t = np.clip(((xx - x0) * dx + (yy - y0) * dy) / n2, 0.0, 1.0)
            d2 = (xx - x0 - t * dx) ** 2 + (yy - y0 - t * dy) ** 2
            self.paint(ys, xs, d2 <= (width / 2) ** 2, color, label, **tex)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: int) -> Array:
    """Unit-variance-ish noise on a grid of ``cell`` pixels, bilinearly interpolated to (h, w)."""
    grid = rng.standard_normal((h // cell + 2, w // cell + 2)).astype(np.float32)
    ys, xs = np.arange(h, dtype=np.float32) / cell, np.arange(w, dtype=np.float32) / cell
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bot = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bot * fy


def _jitter(rng: np.random.Generator, rgb: tuple[float, float, float], amount: float = 0.06) -> Array:
    return np.clip(np.asarray(rgb, np.float32) + rng.uniform(-amount, amount, 3), 0.02, 0.98).astype(np.float32)


def _vivid(rng: np.random.Generator) -> Array:
    """A random paint colour (vehicles, clothes): any hue, so that shape must tell the class."""
    hue = rng.uniform(0, 6)
    c = np.clip(np.abs((hue + np.array([0.0, 4.0, 2.0])) % 6 - 3) - 1, 0, 1)
    sat, val = rng.uniform(0.3, 0.9), rng.uniform(0.25, 0.9)
    return (val * (1 - sat + sat * c)).astype(np.float32)


class Street:
    """Perspective ground geometry: for a row y below the horizon, the x edges of each band."""

    def __init__(self, h: int, w: int, rng: np.random.Generator) -> None:
        self.h, self.w = h, w
        self.horizon = h * rng.uniform(0.36, 0.5)
        self.vx = w * rng.uniform(0.4, 0.6)
        self.road = w * rng.uniform(0.45, 0.7)  # half-width of the road at the bottom row
        self.walk = w * rng.uniform(0.22, 0.4)  # sidewalk width at the bottom row
        self.verge = (w * rng.uniform(0.1, 0.3), w * rng.uniform(0.1, 0.3))  # terrain widths (l, r)
        self.verge = tuple(v if rng.random() < 0.6 else 0.0 for v in self.verge)

    def depth(self, y: Array | float) -> Array | float:
        """0 at the horizon, 1 at the bottom row."""
        return np.clip((np.asarray(y) - self.horizon) / (self.h - self.horizon), 0.0, None)

    def edges(self, y: Array | float) -> dict[str, tuple[Array, Array]]:
        t = self.depth(y)
        road = (self.vx - self.road * t, self.vx + self.road * t)
        walk = (road[0] - self.walk * t, road[1] + self.walk * t)
        verge = (walk[0] - self.verge[0] * t, walk[1] + self.verge[1] * t)
        return {"road": road, "walk": walk, "verge": verge}

    def y_at_outer(self, x: Array, side: int) -> Array:
        """Row where the outer ground boundary of ``side`` (-1 left, +1 right) meets column x."""
        rate = self.road + self.walk + self.verge[0 if side < 0 else 1]
        t = np.clip(side * (x - self.vx) / rate, 0.0, None)
        return self.horizon + t * (self.h - self.horizon)


def render_scene(h: int, w: int, rng: np.random.Generator) -> tuple[Array, Array]:
    cv = Canvas(h, w, rng)
    st = Street(h, w, rng)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    whole = (slice(0, h), slice(0, w))

    # Sky: vertical gradient, clear or overcast.
    top, bottom = (_jitter(rng, (0.35, 0.55, 0.85)), _jitter(rng, (0.75, 0.85, 0.95))) if rng.random() < 0.7 \
        else (_jitter(rng, (0.6, 0.62, 0.66)), _jitter(rng, (0.82, 0.82, 0.84)))
    g = np.clip(yy / max(st.horizon, 1.0), 0, 1)[..., None]
    cv.img[:] = top * (1 - g) + bottom * g
    cv.img[:] *= 1.0 + 0.015 * cv.coarse[..., None]
    cv.lab[:] = ID["sky"]

    # Ground bands, far to near does not matter: they do not overlap.
    ground = yy > st.horizon
    e = st.edges(yy)
    verge_col, walk_col = _jitter(rng, (0.62, 0.6, 0.3), 0.06), _jitter(rng, (0.62, 0.58, 0.56), 0.08)
    beyond = ground & ((xx < e["verge"][0]) | (xx >= e["verge"][1]))
    cv.paint(*whole, beyond, verge_col * 0.85, ID["terrain"], fine=0.08, coarse=0.1)
    cv.paint(*whole, ground & ~beyond, verge_col, ID["terrain"], fine=0.08, coarse=0.1)
    furrows = (cv.lab == ID["terrain"]) & (np.sin(yy * 2.2) > 0.6)
    cv.paint(*whole, furrows, verge_col * 0.7, ID["terrain"], fine=0.08)
    walk = ground & (xx >= e["walk"][0]) & (xx < e["walk"][1])
    cv.paint(*whole, walk, walk_col, ID["sidewalk"], fine=0.04)
    t = st.depth(yy)
    tiles = walk & (np.abs(np.sin(np.log(np.maximum(t, 1e-3)) * 9.0)) < 0.12)
    cv.paint(*whole, tiles, walk_col * 0.8, ID["sidewalk"], fine=0.04)
    road = ground & (xx >= e["road"][0]) & (xx < e["road"][1])
    cv.paint(*whole, road, _jitter(rng, (0.3, 0.3, 0.32), 0.05), ID["road"], fine=0.08)
    # Lane marks (labelled road, as in Cityscapes): dashed centre line and solid edge lines.
    lane_w = np.maximum(0.012 * st.road * t, 0.6)
    centre = road & (np.abs(xx - st.vx) < lane_w) & (np.sin(np.log(np.maximum(t, 1e-3)) * 14.0) > 0)
    cv.paint(*whole, centre, np.array([0.92, 0.92, 0.88], np.float32), ID["road"], fine=0.02)
    for edge in e["road"]:
        cv.paint(*whole, road & (np.abs(xx - edge) < lane_w * 1.5) & (np.abs(xx - edge) > lane_w * 0.5),
                 np.array([0.85, 0.85, 0.82], np.float32), ID["road"], fine=0.02)

    # Facades on both sides: between a roof line and the ground boundary, both converging.
    for side in (-1, 1):
        x = 0.0
        x_end = st.vx - 0.04 * w if side < 0 else w - st.vx - 0.04 * w
        while x < x_end:
            seg = min(w * rng.uniform(0.08, 0.3), x_end - x)
            x0, x1 = (x, x + seg) if side < 0 else (st.vx + 0.04 * w + x, st.vx + 0.04 * w + x + seg)
            x += seg
            height = rng.uniform(0.6, 1.6) * st.horizon  # roof height at the image border
            cols = (xx >= x0) & (xx < x1)
            rel = np.abs(xx - st.vx) / max(st.vx if side < 0 else w - st.vx, 1.0)
            roof = st.horizon - height * rel
            base = st.y_at_outer(xx, side)
            facade = cols & (yy >= roof) & (yy < base) & ((xx < st.vx) if side < 0 else (xx >= st.vx))
            if rng.random() < 0.15:  # a gap with trees behind instead of a house
                cv.paint(*whole, facade & (yy >= roof + 0.3 * (base - roof)), _jitter(rng, (0.2, 0.38, 0.12)),
                         ID["vegetation"], fine=0.25, coarse=0.2)
                continue
            colour = _jitter(rng, [(0.72, 0.62, 0.48), (0.55, 0.3, 0.25), (0.6, 0.6, 0.62),
                                   (0.82, 0.78, 0.68)][rng.integers(4)], 0.07)
            cv.paint(*whole, facade, colour, ID["building"], fine=0.05, coarse=0.04)
            u = np.log(np.maximum(np.abs(xx - st.vx), 1.0)) * rng.uniform(9, 14)
            v = (yy - roof) / np.maximum(base - roof, 1.0) * rng.integers(3, 7)
            win = facade & ((u % 1.0) > 0.45) & ((v % 1.0) > 0.35) & ((v % 1.0) < 0.75) & (v > 0.5)
            cv.paint(*whole, win, _jitter(rng, (0.2, 0.25, 0.33)), ID["building"], fine=0.05)
            # Walls and fences along the foot of the facade.
            r = rng.random()
            if r < 0.6:
                band = facade & (yy >= base - (base - roof) * rng.uniform(0.2, 0.32))
                if r < 0.3:
                    cv.paint(*whole, band, _jitter(rng, (0.58, 0.56, 0.5)), ID["wall"], fine=0.06)
                    cv.paint(*whole, band & (np.sin((yy - base) * 1.7) > 0.85), _jitter(rng, (0.45, 0.43, 0.4)),
                             ID["wall"], fine=0.05)
                else:
                    slats = band & ((u * 3 % 1.0) < 0.5)
                    cv.paint(*whole, band, _jitter(rng, (0.3, 0.32, 0.3)), ID["fence"], fine=0.05)
                    cv.paint(*whole, slats, _jitter(rng, (0.62, 0.6, 0.55)), ID["fence"], fine=0.05)

    # Objects: sampled, then drawn far to near so that near ones occlude far ones.
    objects: list[tuple[float, str, float]] = []  # (depth, kind, lateral position in [0, 1])
    for kind, lo, hi in (("car", 1, 4), ("truck", 0, 1), ("bus", 0, 1), ("train", 0, 0), ("rider", 0, 2),
                         ("motorcycle", 0, 1), ("person", 1, 4), ("bicycle", 0, 2), ("pole", 1, 3),
                         ("light", 1, 2), ("sign", 1, 2), ("tree", 0, 3)):
        n = rng.integers(lo, hi + 1) if hi > 0 else int(rng.random() < 0.15)
        for _ in range(n):
            objects.append((float(rng.uniform(0.3, 1.0)), kind, float(rng.random())))
    objects.sort()
    for depth, kind, lateral in objects:
        _draw_object(cv, st, rng, kind, depth, lateral)

    # Global illumination of the scene.
    cv.img *= rng.uniform(0.8, 1.15)
    np.clip(cv.img, 0.0, 1.0, out=cv.img)
    assert (cv.lab != 255).all()
    return cv.img, cv.lab


def _draw_object(cv: Canvas, st: Street, rng: np.random.Generator, kind: str, t: float, lateral: float) -> None:
    y = st.horizon + t * (st.h - st.horizon)  # the row the object stands on
    e = st.edges(y)
    s = t * st.h  # pixel scale: an object of relative height 1 is s pixels tall
    road_l, road_r = float(e["road"][0]), float(e["road"][1])
    walk = [(float(e["walk"][0]), road_l), (road_r, float(e["walk"][1]))][int(lateral > 0.5)]
    frac = (lateral * 2) % 1.0
    if kind in ("car", "truck", "bus", "train", "rider", "motorcycle"):
        x = road_l + (road_r - road_l) * (0.1 + 0.8 * frac)
    elif kind in ("pole", "light", "sign", "tree"):
        x = walk[0] + 0.15 * (walk[1] - walk[0]) if lateral <= 0.5 else walk[1] - 0.15 * (walk[1] - walk[0])
    else:
        x = walk[0] + (walk[1] - walk[0]) * (0.2 + 0.6 * frac)
    if kind == "car":
        _vehicle(cv, rng, x, y, s * 0.55, s * 0.3, ID["car"], windows=1)
    elif kind == "truck":
        wd, hg = s * 0.75, s * 0.55
        col = _vivid(rng)
        cv.rect(x - wd / 2, y - hg, x + wd * 0.2, y - hg * 0.12, _jitter(rng, (0.85, 0.85, 0.85)), ID["truck"],
                fine=0.03)
        cv.rect(x + wd * 0.2, y - hg * 0.7, x + wd / 2, y - hg * 0.12, col, ID["truck"], fine=0.03)
        cv.rect(x + wd * 0.28, y - hg * 0.65, x + wd * 0.46, y - hg * 0.45, _jitter(rng, (0.15, 0.2, 0.28)),
                ID["truck"], fine=0.03)
        for wx in (x - wd * 0.35, x - wd * 0.1, x + wd * 0.35):
            cv.ellipse(wx, y - hg * 0.1, hg * 0.12, hg * 0.12, np.array([0.06, 0.06, 0.06], np.float32), ID["truck"])
    elif kind in ("bus", "train"):
        wd, hg = s * (1.1 if kind == "bus" else 1.6), s * 0.5
        colour = _jitter(rng, [(0.85, 0.7, 0.1), (0.75, 0.15, 0.12), (0.9, 0.9, 0.88)][rng.integers(3)]) \
            if kind == "bus" else _jitter(rng, (0.85, 0.85, 0.8))
        label = ID[kind]
        cv.rect(x - wd / 2, y - hg, x + wd / 2, y - hg * 0.08, colour, label, fine=0.03)
        n = 7 if kind == "bus" else 10
        for i in range(n):
            wx = x - wd / 2 + wd * (i + 0.2) / n
            cv.rect(wx, y - hg * 0.85, wx + wd * 0.6 / n, y - hg * 0.5, _jitter(rng, (0.12, 0.16, 0.22)), label)
        if kind == "train":
            cv.rect(x - wd / 2, y - hg * 0.4, x + wd / 2, y - hg * 0.33, _jitter(rng, (0.2, 0.3, 0.7)), label)
            cv.line(x, y - hg, x + wd * 0.1, y - hg * 1.3, max(s * 0.01, 0.8), np.array([0.2, 0.2, 0.2], np.float32),
                    label)
        else:
            for wx in (x - wd * 0.35, x + wd * 0.35):
                cv.ellipse(wx, y - hg * 0.08, hg * 0.1, hg * 0.1, np.array([0.06, 0.06, 0.06], np.float32), label)
    elif kind in ("bicycle", "motorcycle", "rider"):
        motor = kind == "motorcycle" or (kind == "rider" and rng.random() < 0.4)
        vlabel = ID["motorcycle"] if motor else ID["bicycle"]
        r = s * (0.1 if motor else 0.1)
        gap = r * 2.6
        frame = _vivid(rng)
        thick = max(r * (0.45 if motor else 0.35), 1.5)
        tyre = np.array([0.05, 0.05, 0.05], np.float32)
        cv.ellipse(x - gap / 2, y - r, r, r, tyre, vlabel, ring=0 if motor else 0.35)
        cv.ellipse(x + gap / 2, y - r, r, r, tyre, vlabel, ring=0 if motor else 0.35)
        if motor:
            cv.rect(x - gap * 0.35, y - r * 2.4, x + gap * 0.35, y - r * 1.1, frame, vlabel, fine=0.03)
        else:
            for a, b in (((x - gap / 2, y - r), (x, y - r)), ((x, y - r), (x + gap * 0.2, y - 2.5 * r)),
                         ((x - gap / 2, y - r), (x - gap * 0.05, y - 2.4 * r)), ((x + gap * 0.2, y - 2.5 * r),
                                                                                  (x + gap / 2, y - r))):
                cv.line(a[0], a[1], b[0], b[1], thick, frame, vlabel)
        if kind == "rider":
            _human(cv, rng, x, y - r * 1.9, s * 0.36, ID["rider"], riding=True)
    elif kind == "person":
        _human(cv, rng, x, y, s * 0.5, ID["person"], riding=False)
    elif kind in ("pole", "light", "sign"):
        height = s * rng.uniform(0.9, 1.3)
        width = max(s * 0.02, 3.0) * rng.uniform(1.0, 1.5)
        grey = _jitter(rng, (0.5, 0.5, 0.5))
        cv.rect(x - width / 2, y - height, x + width / 2, y, grey, ID["pole"], fine=0.03)
        if kind == "light":
            bw, bh = s * 0.09, s * 0.22
            top = y - height
            cv.rect(x - bw / 2, top, x + bw / 2, top + bh, _jitter(rng, (0.15, 0.15, 0.1)), ID["traffic light"])
            lit = rng.integers(3)
            for i, c in enumerate(((0.95, 0.1, 0.1), (0.95, 0.75, 0.1), (0.1, 0.9, 0.3))):
                cc = np.asarray(c, np.float32) * (1.0 if i == lit else 0.35)
                cv.ellipse(x, top + bh * (i + 0.5) / 3, bw * 0.32, bh * 0.13, cc, ID["traffic light"], fine=0.02)
        elif kind == "sign":
            rad = s * rng.uniform(0.07, 0.1)
            cy = y - height + rad
            shape = rng.integers(3)
            if shape == 0:
                cv.ellipse(x, cy, rad, rad, np.array([0.85, 0.1, 0.1], np.float32), ID["traffic sign"])
                cv.ellipse(x, cy, rad * 0.7, rad * 0.7, np.array([0.95, 0.95, 0.95], np.float32), ID["traffic sign"])
            elif shape == 1:
                cv.rect(x - rad, cy - rad, x + rad, cy + rad, np.array([0.1, 0.3, 0.8], np.float32), ID["traffic sign"])
                cv.rect(x - rad * 0.3, cy - rad * 0.6, x + rad * 0.3, cy + rad * 0.6,
                        np.array([0.95, 0.95, 0.95], np.float32), ID["traffic sign"])
            else:
                for k in range(int(2 * rad) + 1):  # triangle, one row at a time
                    half = rad * k / max(2 * rad, 1)
                    cv.rect(x - half, cy - rad + k, x + half, cy - rad + k + 1,
                            np.array([0.95, 0.8, 0.1], np.float32), ID["traffic sign"])
    elif kind == "tree":
        height = s * rng.uniform(0.8, 1.4)
        trunk = max(s * 0.025, 1.0)
        green = _jitter(rng, (0.12, 0.32, 0.08), 0.05)
        cv.rect(x - trunk / 2, y - height * 0.6, x + trunk / 2, y, _jitter(rng, (0.3, 0.22, 0.15)),
                ID["vegetation"], fine=0.1)
        for _ in range(rng.integers(3, 7)):
            cx = x + rng.normal(0, s * 0.08)
            cy = y - height * rng.uniform(0.6, 0.95)
            rr = s * rng.uniform(0.08, 0.16)
            cv.ellipse(cx, cy, rr, rr * rng.uniform(0.8, 1.1), green, ID["vegetation"], fine=0.3, coarse=0.15)


def _vehicle(cv: Canvas, rng: np.random.Generator, x: float, y: float, wd: float, hg: float, label: int,
             windows: int) -> None:
    body = _vivid(rng)
    cv.rect(x - wd / 2, y - hg * 0.62, x + wd / 2, y - hg * 0.12, body, label, fine=0.03)
    cv.rect(x - wd * 0.32, y - hg, x + wd * 0.3, y - hg * 0.6, body * 0.9, label, fine=0.03)
    glass = _jitter(rng, (0.18, 0.24, 0.32))
    cv.rect(x - wd * 0.28, y - hg * 0.93, x - wd * 0.02, y - hg * 0.64, glass, label, fine=0.03)
    cv.rect(x + wd * 0.02, y - hg * 0.93, x + wd * 0.26, y - hg * 0.64, glass, label, fine=0.03)
    tyre = np.array([0.05, 0.05, 0.05], np.float32)
    for wx in (x - wd * 0.3, x + wd * 0.3):
        cv.ellipse(wx, y - hg * 0.14, hg * 0.16, hg * 0.16, tyre, label)


def _human(cv: Canvas, rng: np.random.Generator, x: float, y: float, hg: float, label: int, riding: bool) -> None:
    """A person ``hg`` pixels tall whose feet (or seat, when riding) are at row y."""
    shirt, trousers = _vivid(rng), _vivid(rng) * 0.6
    skin = _jitter(rng, [(0.85, 0.68, 0.55), (0.55, 0.38, 0.28), (0.95, 0.8, 0.7)][rng.integers(3)], 0.04)
    limb = max(hg * 0.12, 1.5)
    if riding:
        cv.line(x, y, x + hg * 0.25, y + hg * 0.35, limb, trousers, label)
        torso_bottom = y
    else:
        cv.line(x - hg * 0.05, y - hg * 0.45, x - hg * 0.08, y, limb, trousers, label)
        cv.line(x + hg * 0.05, y - hg * 0.45, x + hg * 0.08, y, limb, trousers, label)
        torso_bottom = y - hg * 0.42
    torso_top = torso_bottom - hg * 0.38
    cv.rect(x - hg * 0.13, torso_top, x + hg * 0.13, torso_bottom, shirt, label, fine=0.04)
    cv.line(x + hg * 0.1, torso_top + hg * 0.05, x + hg * (0.3 if riding else 0.16), torso_top + hg * 0.28,
            limb * 0.8, shirt, label)
    cv.ellipse(x, torso_top - hg * 0.08, hg * 0.075, hg * 0.09, skin, label, fine=0.02)
