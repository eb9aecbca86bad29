// Tiny DOM helpers: elements are built with textContent, never innerHTML, so logged data cannot inject markup.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, ...children);
  return el;
}

export function append(el, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

export const fmt = {
  ms(v) {
    if (v === null || v === undefined) return "–";
    return v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${Math.round(v)} ms`;
  },
  int(v) { return v === null || v === undefined ? "–" : Number(v).toLocaleString("en-US"); },
  cost(v) {
    if (v === null || v === undefined) return "–";
    return v === 0 ? "$0" : v < 0.01 ? `$${v.toFixed(5)}` : `$${v.toFixed(2)}`;
  },
  time(iso) {
    const d = new Date(iso);
    return d.toLocaleString("en-GB", { month: "short", day: "2-digit", hour: "2-digit", minute: "2-digit",
                                       second: "2-digit", hour12: false });
  },
  compact(v) {
    if (v === null || v === undefined) return "–";
    const a = Math.abs(v);
    if (a >= 1e9) return `${(v / 1e9).toFixed(1)}B`;
    if (a >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
    if (a >= 1e3) return `${(v / 1e3).toFixed(1)}k`;
    return Number.isInteger(v) ? String(v) : v.toFixed(2);
  },
};

export function statusPill(status, error) {
  const kind = status >= 500 ? "bad" : status >= 400 ? "warn" : error ? "warn" : "ok";
  return h("span", { class: `pill pill-${kind}` }, String(status));
}

export function pretty(text) {
  if (text === null || text === undefined) return "(not logged)";
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch { return text; }
}
