// Strings: one table per language (web/i18n/<lang>.js); game modules add theirs under their own prefix.
// t(key, params): a table value is a string with {placeholders} or a function of the params (plurals).

import en from '../i18n/en.js';
import ko from '../i18n/ko.js';
import { storageGet, storageSet } from './dom.js';

/** The languages offered, in the order the switch lists them. */
export const LANGUAGES = {
  en: { name: 'English', table: { ...en } },
  ko: { name: '한국어', table: { ...ko } },
};
const LANG_KEY = 'parlor.lang'; // localStorage: the language picked with the switch

/** The switch's choice, else the browser's language (ko* → Korean), else English. */
function initialLanguage() {
  const saved = storageGet(localStorage, LANG_KEY);
  if (saved && LANGUAGES[saved]) return saved;
  const wanted = navigator.languages?.length ? navigator.languages : [navigator.language || 'en'];
  for (const tag of wanted) {
    const base = String(tag).toLowerCase().split('-')[0];
    if (LANGUAGES[base]) return base;
  }
  return 'en';
}

let current = initialLanguage();
const listeners = [];
const warned = new Set();

export const language = () => current;

/** A game module's strings: `{en: {...}, ko: {...}}`, keys prefixed with the game's kind. */
export function addStrings(tables) {
  for (const [lang, table] of Object.entries(tables || {})) {
    if (LANGUAGES[lang]) Object.assign(LANGUAGES[lang].table, table);
  }
}

/** The string `key` in the current language (English when it has none yet). */
export function t(key, params = {}) {
  let value = LANGUAGES[current].table[key];
  if (value === undefined) {
    value = LANGUAGES.en.table[key];
    if (!warned.has(`${current}:${key}`)) {
      warned.add(`${current}:${key}`);
      console.warn(`parlor: no ${current} string for ${key}`);
    }
  }
  if (value === undefined) return key;
  if (typeof value === 'function') return String(value(params));
  return String(value).replace(/\{(\w+)\}/g, (m, name) => (params[name] === undefined ? m : String(params[name])));
}

/** Whether `key` has a string (a game may leave some to the core). */
export const has = (key) => LANGUAGES.en.table[key] !== undefined;

/** Static page text: elements with data-i18n (text), data-i18n-placeholder, -aria-label, -title, -alt. */
export function applyStatic(root = document) {
  document.documentElement.lang = current;
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const attr of ['placeholder', 'aria-label', 'title', 'alt']) {
    const data = `data-i18n-${attr}`;
    for (const el of root.querySelectorAll(`[${data}]`)) el.setAttribute(attr, t(el.getAttribute(data)));
  }
}

export function onLanguageChange(fn) {
  listeners.push(fn);
}

export function setLanguage(lang) {
  if (!LANGUAGES[lang] || lang === current) return;
  current = lang;
  storageSet(localStorage, LANG_KEY, lang);
  applyStatic();
  for (const fn of listeners) {
    try { fn(lang); } catch (err) { console.error('parlor: language change', err); }
  }
}

/** The language switch in the top bar. */
export function mountSwitch(select) {
  select.replaceChildren(...Object.entries(LANGUAGES).map(([code, { name }]) => {
    const option = document.createElement('option');
    option.value = code;
    option.textContent = name;
    option.lang = code;
    return option;
  }));
  select.value = current;
  select.addEventListener('change', () => setLanguage(select.value));
  onLanguageChange((lang) => { select.value = lang; });
}
