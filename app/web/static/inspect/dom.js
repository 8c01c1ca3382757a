/* idgraph inspector — small DOM helpers: elements built from text only (never HTML), times, and the status line.
 */
export const $ = (id) => document.getElementById(id);

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') el.className = value;
    else if (name === 'dataset') Object.assign(el.dataset, value);
    else if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function dl(pairs) {
  return h('dl', {}, pairs.filter(Boolean).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

export function tag(kind, text) {
  return h('span', { class: `tag ${kind}` }, text);
}

export function when(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC').replace(/Z$/, ' UTC');
}

/** Minutes are enough in tables and lists; the full time is in the details' header fields. */
export function whenShort(iso) {
  return when(iso).replace(/:\d\d UTC$/, '');
}

export function show(value) {
  if (value === null || value === undefined) return '—';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

export function count(n, noun) {
  return `${n} ${n === 1 ? noun : noun.replace(/y$/, 'ie') + 's'}`;
}

export function setStatus(text, kind) {
  const el = $('status');
  el.textContent = text || '';
  el.className = `status${kind ? ` ${kind}` : ''}`;
}

export function banner(text) {
  const el = $('banner');
  el.textContent = text || '';
  el.hidden = !text;
}

export function setBusy(busy) {
  document.body.dataset.busy = busy ? 'true' : 'false';
}

export function hideCandidates() {
  $('candidates').hidden = true;
  $('candidate-list').replaceChildren();
}
