// Small DOM and storage helpers shared by the core and the game modules.

export const $ = (id) => document.getElementById(id);
export const params = new URLSearchParams(location.search);

/** Build an element: h('button', {class: 'x', text: 'Hi', onclick: fn, dataset: {a: 1}}, ...children). */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key === 'dataset') for (const [k, v] of Object.entries(value)) el.dataset[k] = String(v);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

// Small line icons (no icon fonts, no emoji: they may be missing on the device). Games add their own.
const ICONS = {
  micOff: '<path d="M9 9V6a3 3 0 0 1 6 0v5m-.6 2.4A3 3 0 0 1 9 12M5 11a7 7 0 0 0 11.3 5.5M19 11a7 7 0 0 1-.5 2.6M12 18v3M3 3l18 18"/>',
  camOff: '<path d="M3 7h9a2 2 0 0 1 2 2v6m-1 2H5a2 2 0 0 1-2-2V7m12 4 6-3v8l-6-3M3 3l18 18"/>',
  eye: '<path d="M2 12s3.6-6.5 10-6.5S22 12 22 12s-3.6 6.5-10 6.5S2 12 2 12z"/><circle cx="12" cy="12" r="3"/>',
  eyeOff: '<path d="M4 4l16 16M10.6 6.1A9.6 9.6 0 0 1 12 6c6.4 0 10 6 10 6a17 17 0 0 1-3 3.6M6.6 7.6C3.8 9.4 2 12 2 12s3.6 6 10 6a9 9 0 0 0 4.2-1"/>',
};

/** Icons a game module draws with (`{name: svg path markup}`). */
export function addIcons(icons) {
  Object.assign(ICONS, icons || {});
}

export function icon(name, cls = 'icon') {
  const span = document.createElement('span');
  span.className = cls;
  span.setAttribute('aria-hidden', 'true');
  span.innerHTML = `<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">${ICONS[name] || ''}</svg>`;
  return span;
}

export function storageGet(store, key) {
  try { return store.getItem(key); } catch { return null; }
}

export function storageSet(store, key, value) {
  try {
    if (value === null) store.removeItem(key);
    else store.setItem(key, value);
  } catch { /* storage may be disabled */ }
}

export function formatClock(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const m = Math.floor(total / 60);
  const s = total % 60;
  return `${m}:${String(s).padStart(2, '0')}`;
}

export function capitalize(text) {
  const s = String(text ?? '');
  return s ? s[0].toUpperCase() + s.slice(1) : s;
}

/** A server message as a sentence (it comes without a capital and a full stop). */
export function sentence(text) {
  const s = capitalize(text).trim();
  return /[.!?]$/.test(s) ? s : `${s}.`;
}
