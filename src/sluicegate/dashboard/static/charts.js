// Small SVG charts drawn by hand: time series (lines or stacked bars) and horizontal bars for groups.
// Colours come from classes in style.css (series-0 … series-5): no inline style, the CSP allows none.
import { fmt, h } from "./dom.js";

const NS = "http://www.w3.org/2000/svg";
const W = 640, H = 220, PAD = { left: 52, right: 12, top: 12, bottom: 26 };

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  for (const c of children) if (c) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

function frame(svg, xs, max, yFormat, xFormat) {
  const plotW = W - PAD.left - PAD.right, plotH = H - PAD.top - PAD.bottom;
  for (let i = 0; i <= 5; i++) {
    const y = PAD.top + plotH - (plotH * i) / 5;
    svg.append(s("line", { x1: PAD.left, x2: W - PAD.right, y1: y, y2: y, class: "grid" }));
    svg.append(s("text", { x: PAD.left - 6, y: y + 4, class: "axis", "text-anchor": "end" }, yFormat((max * i) / 5)));
  }
  const ticks = Math.min(xs.length, 6);
  for (let i = 0; i < ticks; i++) {
    const index = ticks === 1 ? 0 : Math.round((i * (xs.length - 1)) / (ticks - 1));
    const x = PAD.left + ((index + 0.5) * plotW) / xs.length;
    const anchor = ticks > 1 && i === 0 ? "start" : ticks > 1 && i === ticks - 1 ? "end" : "middle";
    svg.append(s("text", { x: anchor === "start" ? PAD.left : anchor === "end" ? W - PAD.right : x, y: H - 6,
                           class: "axis", "text-anchor": anchor }, xFormat(xs[index])));
  }
  return { plotW, plotH };
}

function legend(series) {
  return h("div", { class: "legend" }, series.map((one, i) =>
    h("span", { class: "legend-item" }, h("span", { class: `swatch series-${one.colour ?? i}` }), one.name)));
}

function tip(text) { return s("title", {}, text); }

// series: [{name, values: [number|null], colour}], xs: [ms]; kind "line" or "bars" (stacked).
export function timeChart({ title, xs, series, kind = "line", yFormat = fmt.compact, xFormat = shortTime }) {
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": title });
  const totals = xs.map((_, i) => series.reduce((sum, one) => sum + (kind === "bars" ? one.values[i] || 0 : 0), 0));
  const peak = kind === "bars" ? Math.max(0, ...totals)
                               : Math.max(0, ...series.flatMap((one) => one.values.filter((v) => v !== null)));
  const max = niceMax(peak);
  const { plotW, plotH } = frame(svg, xs, max, yFormat, xFormat);
  const step = plotW / Math.max(xs.length, 1);
  const yOf = (v) => PAD.top + plotH - (plotH * v) / max;
  if (kind === "bars") {
    const base = xs.map(() => 0);
    series.forEach((one, si) => one.values.forEach((v, i) => {
      if (!v) return;
      const x = PAD.left + i * step + step * 0.15, top = yOf(base[i] + v), bottom = yOf(base[i]);
      svg.append(s("rect", { x, y: top, width: Math.max(step * 0.7, 1), height: Math.max(bottom - top, 0.5),
                             class: `bar series-${one.colour ?? si}` },
                   tip(`${xFormat(xs[i])} · ${one.name}: ${yFormat(v)}`)));
      base[i] += v;
    }));
  } else {
    series.forEach((one, si) => {
      const points = one.values.map((v, i) => (v === null ? null : [PAD.left + (i + 0.5) * step, yOf(v)]));
      const d = points.reduce((path, p, i) => (p ? `${path}${path && points[i - 1] ? "L" : "M"}${p[0].toFixed(1)},${p[1].toFixed(1)}` : path), "");
      svg.append(s("path", { d, class: `line series-${one.colour ?? si}` }));
      points.forEach((p, i) => p && svg.append(s("circle", { cx: p[0], cy: p[1], r: xs.length > 60 ? 1.5 : 3,
        class: `dot series-${one.colour ?? si}` }, tip(`${xFormat(xs[i])} · ${one.name}: ${yFormat(one.values[i])}`))));
    });
  }
  return h("figure", { class: "chart-card card" }, h("figcaption", {}, title), svg, legend(series));
}

// rows: [{label, value, detail}] sorted by value; one horizontal bar each.
export function groupBars({ title, rows, yFormat = fmt.compact }) {
  const rowH = 26, height = Math.max(rows.length, 1) * rowH + 8, labelW = 170;
  const svg = s("svg", { viewBox: `0 0 ${W} ${height}`, class: "chart", role: "img", "aria-label": title });
  const max = Math.max(1, ...rows.map((r) => r.value));
  rows.forEach((r, i) => {
    const y = 4 + i * rowH, width = ((W - labelW - 90) * r.value) / max;
    svg.append(s("text", { x: labelW - 8, y: y + 17, class: "axis label", "text-anchor": "end" }, truncate(r.label, 24)));
    svg.append(s("rect", { x: labelW, y: y + 4, width: Math.max(width, 1), height: rowH - 8, rx: 3,
                           class: `bar series-${i % 6}` }, tip(`${r.label}: ${yFormat(r.value)}`)));
    svg.append(s("text", { x: labelW + width + 6, y: y + 17, class: "axis value" }, yFormat(r.value)));
  });
  return h("figure", { class: "chart-card card" }, h("figcaption", {}, title), svg);
}

function truncate(text, n) { return text.length > n ? `${text.slice(0, n - 1)}…` : text; }

export function shortTime(ms) {
  const d = new Date(ms);
  return d.toLocaleString("en-GB", { month: "short", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false });
}
