/*! Assent website consent script, v1. Contract: a <script src=".../sdk/v1/assent.js" data-tenant="SLUG">
 * placed first in <head>. ES2017, no dependencies, CSP-safe: nothing evaluated from strings, no markup from data, no inline styles;
 * tenant texts are data and reach the page through textContent only. */
(function () {
  'use strict';
  const w = window, d = document, nav = navigator;
  if (w.Assent && w.Assent.sdk) return; // included twice: the first copy stays in charge

  const SDK = '1.0.0';
  const COOKIE = 'assent_visitor';
  const MAX_AGE = 33696000; // 13 months
  const OPTIONAL = ['analytics', 'marketing', 'personalisation'];
  const SIGNALS = { // Consent Mode signals per category
    analytics: ['analytics_storage'],
    marketing: ['ad_storage', 'ad_user_data', 'ad_personalization'],
    personalisation: ['personalization_storage']
  };
  const GATED = 'script[type="text/plain"][data-assent-purpose]';
  const FORMS = 'form[data-assent-form]';

  // ---- Consent Mode defaults: synchronous, before any gtag('config') on the page -------------------
  if (typeof w.gtag !== 'function') {
    w.dataLayer = w.dataLayer || [];
    w.gtag = function gtag() { w.dataLayer.push(arguments); };
  }
  const gtag = function () { if (typeof w.gtag === 'function') w.gtag.apply(w, arguments); };
  const signals = (c) => {
    const o = {};
    OPTIONAL.forEach((k) => SIGNALS[k].forEach((s) => { o[s] = c[k] ? 'granted' : 'denied'; }));
    return o;
  };
  gtag('consent', 'default', Object.assign(signals({}), { wait_for_update: 500 }));

  // ---- Where we come from ------------------------------------------------------------------------------
  const me = d.currentScript || d.querySelector('script[data-tenant][src*="/sdk/v1/assent.js"]');
  const slug = me && me.getAttribute('data-tenant');
  let base = '';
  try { base = new URL(me.src, location.href).origin; } catch (e) { /* no usable src: stay inert */ }
  const api = base + '/c/' + encodeURIComponent(slug || '');
  const gpc = nav.globalPrivacyControl === true;
  const lang0 = (me && me.getAttribute('data-lang')) || d.documentElement.getAttribute('lang') ||
    (nav.languages && nav.languages[0]) || nav.language || '';
  let lang = /^ru/i.test(lang0) ? 'ru' : 'en';

  // ---- State ---------------------------------------------------------------------------------------------
  let cfg = null;        // the banner config, once fetched
  let T = {};            // texts in `lang`
  let ticks = {};        // last known categories (prefills the settings view)
  let vid = readVid();   // visitor id from the first-party cookie
  let pending = null;    // Assent.open() called before the config arrived
  let cur = { version: null, gpc: gpc, necessary: true, analytics: false, marketing: false, personalisation: false };

  // ---- Small helpers -------------------------------------------------------------------------------------
  function ready(fn) {
    if (d.readyState === 'loading') d.addEventListener('DOMContentLoaded', fn, { once: true });
    else fn();
  }
  function el(tag, cls, text, attrs) {
    const e = d.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    return e;
  }
  // Only http(s) links from tenant data (never javascript: or data:).
  function safeUrl(u) {
    try { const x = new URL(u, location.href); return /^https?:$/.test(x.protocol) ? x.href : null; } catch (e) { return null; }
  }
  function readVid() {
    const m = d.cookie.match(/(?:^|;\s*)assent_visitor=([^;]+)/);
    try { return m ? decodeURIComponent(m[1]) : null; } catch (e) { return null; }
  }
  function writeVid(v) {
    vid = v || null;
    d.cookie = COOKIE + '=' + encodeURIComponent(v || '') + '; Path=/; Max-Age=' + (v ? MAX_AGE : 0) +
      '; SameSite=Lax' + (location.protocol === 'https:' ? '; Secure' : '');
  }
  async function call(path, body) {
    const init = { mode: 'cors', credentials: 'omit' };
    if (body) {
      init.method = 'POST';
      init.headers = { 'Content-Type': 'application/json' };
      init.body = JSON.stringify(body);
    }
    const r = await fetch(api + path, init);
    if (!r.ok) { const e = new Error('Assent: HTTP ' + r.status); e.status = r.status; throw e; }
    return r.json();
  }
  const record = (body) => call('/consents', body); // 4xx: nothing was recorded
  const cat = (code) => cfg && cfg.categories.filter((c) => c.code === code)[0];
  const isRequired = (code) => code === 'necessary' || !!(cat(code) && cat(code).required);

  // ---- Applying a state: Consent Mode update, gated scripts, event -----------------------------------
  function apply(cats, version, sgpc) {
    cats = cats || {};
    const c = { version: version == null ? null : version, gpc: gpc || sgpc === true, necessary: true };
    // Absent categories are off; marketing is off while the browser sends GPC.
    OPTIONAL.forEach((k) => { c[k] = !!cat(k) && (isRequired(k) || cats[k] === true) && !(k === 'marketing' && gpc); });
    cur = c;
    ticks = Object.assign({}, c);
    gtag('consent', 'update', signals(c));
    ready(scan);
    d.dispatchEvent(new CustomEvent('assent:change', { detail: Object.assign({}, c) }));
  }
  // Only a granted optional category runs its scripts: a "necessary" script needs no gate (load it
  // normally), and running one would let injected markup become code.
  const allowed = (p) => OPTIONAL.indexOf(p) >= 0 && cur[p] === true;
  // On a page that uses nonces, only gated scripts carrying this script's nonce are trusted.
  const NONCE = (me && me.nonce) || '';
  // Replace an inert <script type="text/plain" data-assent-purpose> by a live copy (once: the old one is gone).
  function activate(s) {
    if (!s.parentNode || !allowed(s.getAttribute('data-assent-purpose'))) return;
    if (NONCE && s.nonce !== NONCE) return;
    const n = d.createElement('script');
    Array.from(s.attributes).forEach((a) => {
      if (!/^(type|data-assent-purpose|nonce)$/i.test(a.name)) n.setAttribute(a.name, a.value);
    });
    if (s.nonce) n.nonce = s.nonce;
    n.async = s.hasAttribute('async'); // keep document order for plain external scripts
    n.text = s.text;
    s.parentNode.replaceChild(n, s);
  }
  // Runs once the document is parsed (so inline gated scripts are complete), then on every change.
  function scan() { d.querySelectorAll(GATED).forEach(activate); }
  ready(function () {
    scan();
    new MutationObserver((ms) => ms.forEach((m) => m.addedNodes.forEach((n) => {
      if (n.nodeType !== 1) return;
      if (n.matches(GATED)) activate(n); else if (n.firstElementChild) n.querySelectorAll(GATED).forEach(activate);
      if (cfg && (n.matches(FORMS) || n.querySelector(FORMS))) forms();
    }))).observe(d.documentElement, { childList: true, subtree: true });
  });

  // ---- Stylesheet ----------------------------------------------------------------------------------------
  let cssReady = Promise.resolve();
  if (base && !d.querySelector('link[data-assent]')) {
    const l = el('link', null, null, { rel: 'stylesheet', href: base + '/sdk/v1/assent.css', 'data-assent': '',
      integrity: '__ASSENT_CSS_INTEGRITY__', crossorigin: 'anonymous' });
    cssReady = new Promise((res) => {
      l.addEventListener('load', res); l.addEventListener('error', res);
      setTimeout(res, 2000); // never wait long for looks
    });
    (d.head || d.documentElement).appendChild(l);
  }

  // ---- Banner --------------------------------------------------------------------------------------------
  let dlg = null, prev = null, inSettings = false, busy = false, parts = {};

  function focusables() {
    return Array.from(dlg.querySelectorAll('a[href],button,input'))
      .filter((x) => !x.disabled && x.getClientRects().length);
  }
  function build() {
    prev = d.activeElement;
    dlg = el('div', 'assent-banner', null, {
      id: 'assent-banner', role: 'dialog', 'aria-modal': 'true',
      'aria-labelledby': 'assent-title', 'aria-describedby': 'assent-body', lang: lang
    });
    const box = el('div', 'assent-inner');
    box.append(el('h2', 'assent-title', T.title || '', { id: 'assent-title' }),
      el('p', 'assent-body', T.body || '', { id: 'assent-body' }));
    const pu = safeUrl(cfg.policy_url);
    if (cfg.policy_url && pu) {
      const p = el('p', 'assent-policy');
      p.append(el('a', 'assent-link', T.policy_link || pu, { href: pu, target: '_blank', rel: 'noopener' }));
      box.append(p);
    }
    // Settings view: one checkbox per category of this tenant.
    const view = el('div', 'assent-settings-view', null, { id: 'assent-settings-view' });
    const list = el('ul', 'assent-cats');
    const texts = T.categories || {};
    cfg.categories.forEach((c) => {
      const id = 'assent-cat-' + c.code, t = texts[c.code] || {};
      const req = isRequired(c.code), blocked = c.code === 'marketing' && gpc;
      const li = el('li', 'assent-cat');
      const cb = el('input', 'assent-check', null, { type: 'checkbox', id: id, value: c.code });
      cb.checked = req || (!blocked && ticks[c.code] === true);
      cb.disabled = req || blocked;
      let desc = id + '-desc';
      li.append(cb, el('label', 'assent-cat-name', t.name || c.code, { for: id }),
        el('p', 'assent-cat-desc', t.description || '', { id: desc }));
      if (blocked && T.gpc_note) {
        li.append(el('p', 'assent-gpc-note', T.gpc_note, { id: id + '-gpc' }));
        desc += ' ' + id + '-gpc';
      }
      cb.setAttribute('aria-describedby', desc);
      list.append(li);
    });
    view.append(list);
    parts.err = el('p', 'assent-error', null, { role: 'alert' }); // stays in the DOM so it is announced
    const bar = el('div', 'assent-buttons');
    const btn = (id, text, fn) => {
      const b = el('button', 'assent-btn', text || '', { type: 'button', id: id });
      b.addEventListener('click', fn);
      bar.append(b);
      return b;
    };
    parts.accept = btn('assent-accept', T.accept_all, () => choose('accept'));
    btn('assent-reject', T.reject_all, () => choose('reject'));
    parts.settings = btn('assent-settings', T.settings, () => setView(true));
    parts.save = btn('assent-save', T.save, () => choose('customise'));
    parts.view = view;
    box.append(view, parts.err, bar);
    dlg.append(box);
    d.body.insertBefore(dlg, d.body.firstChild); // first in reading order, shown at the bottom
  }
  function setView(settings) {
    inSettings = settings;
    parts.view.hidden = parts.save.hidden = !settings;
    parts.settings.hidden = settings;
    dlg.classList.toggle('assent-is-settings', settings);
    const f = focusables();
    (settings ? f.filter((x) => x.type === 'checkbox')[0] || parts.save : parts.accept).focus();
  }
  async function show(view) {
    await cssReady;
    ready(function () {
      if (!dlg) build();
      parts.err.textContent = '';
      setView(view === 'settings');
    });
  }
  function close() {
    if (!dlg) return;
    dlg.remove();
    dlg = null;
    if (prev && prev !== d.body && prev.focus && d.contains(prev)) prev.focus();
    prev = null;
  }
  // Keyboard: Tab/Shift+Tab cycle inside the dialog (even when focus has wandered out), Escape leaves settings.
  d.addEventListener('keydown', function (e) {
    if (!dlg) return;
    if (e.key === 'Escape' || e.key === 'Esc') {
      if (inSettings) { e.preventDefault(); setView(false); parts.settings.focus(); }
      return;
    }
    if (e.key !== 'Tab') return;
    const f = focusables(), a = d.activeElement;
    if (!f.length) return;
    const out = !dlg.contains(a);
    if (e.shiftKey ? out || a === f[0] : out || a === f[f.length - 1]) {
      e.preventDefault();
      (e.shiftKey ? f[f.length - 1] : f[0]).focus();
    }
  }, true);

  async function choose(kind) {
    if (busy) return;
    busy = true;
    dlg.setAttribute('aria-busy', 'true');
    const granted = kind === 'reject' ? [] : cfg.categories.filter((c) => {
      if (isRequired(c.code)) return false;
      if (kind === 'accept') return true; // the server strips marketing under GPC
      const cb = d.getElementById('assent-cat-' + c.code);
      return !!cb && cb.checked && !cb.disabled;
    }).map((c) => c.code);
    try {
      const r = await record({ visitor_id: vid, version: cfg.version, kind: kind, granted: granted, gpc: gpc, lang: lang });
      if (r.visitor_id) writeVid(r.visitor_id);
      close();
      apply(r.categories, r.version == null ? cfg.version : r.version, r.gpc);
    } catch (e) {
      if (kind === 'reject') { close(); apply({}, cur.version, false); } // refusing always works: nothing is granted
      else if (dlg) parts.err.textContent = T.form_error || 'Error';
    } finally {
      busy = false;
      if (dlg) dlg.removeAttribute('aria-busy');
    }
  }

  // ---- Forms ---------------------------------------------------------------------------------------------
  const done = new WeakSet();
  function forms() {
    d.querySelectorAll(FORMS).forEach((f) => {
      const code = f.getAttribute('data-assent-form');
      const spec = cfg.forms && Object.prototype.hasOwnProperty.call(cfg.forms, code) && cfg.forms[code];
      if (!spec || done.has(f)) return;
      done.add(f);
      const fs = el('fieldset', 'assent-form-consents');
      (spec.consents || []).forEach((c) => {
        const id = 'assent-form-' + code + '-' + c.purpose;
        const row = el('div', 'assent-form-consent');
        const cb = el('input', null, null, { type: 'checkbox', name: 'assent_consent', value: c.purpose, id: id });
        cb.required = !!c.required;
        const txt = (c.text && (c.text[lang] || c.text[cfg.default_lang])) || c.purpose;
        const span = el('span', 'assent-form-text');
        span.append(el('label', null, txt, { for: id }));
        const u = safeUrl(c.document_url);
        if (c.document_url && u) span.append(' ', el('a', 'assent-doc', T.document_link || u, { href: u, target: '_blank', rel: 'noopener' }));
        row.append(cb, span);
        fs.append(row);
      });
      const alert = el('p', 'assent-form-error', null, { role: 'alert' });
      fs.append(alert);
      const sub = f.querySelector('button:not([type]),button[type=submit],input[type=submit],input[type=image]');
      if (sub) sub.parentNode.insertBefore(fs, sub); else f.append(fs);

      let sending = false;
      f.addEventListener('submit', async function (e) {
        e.preventDefault();
        if (sending) return;
        const boxes = Array.from(fs.querySelectorAll('input[name="assent_consent"]'));
        if (boxes.some((b) => b.required && !b.checked)) { f.reportValidity(); return; } // for novalidate forms
        sending = true;
        alert.textContent = '';
        const by = e.submitter;
        try {
          const r = await record({
            visitor_id: vid, version: cfg.version, kind: 'form', form: code,
            granted: boxes.filter((b) => b.checked).map((b) => b.value), lang: lang
          });
          if (r.visitor_id) writeVid(r.visitor_id);
          f.querySelectorAll('input.assent-hidden').forEach((x) => x.remove());
          const hide = (n, v) => f.append(el('input', 'assent-hidden', null, { type: 'hidden', name: n, value: v == null ? '' : v }));
          hide('assent_visitor', r.visitor_id || vid);
          hide('assent_proof', r.choice_id);
          if (by && by.name) hide(by.name, by.value); // form.submit() would drop the clicked button's value
          HTMLFormElement.prototype.submit.call(f); // works even when a control is named "submit"
        } catch (x) {
          alert.textContent = T.form_error || 'Error';
        } finally {
          sending = false;
        }
      });
    });
  }

  // ---- Public API ----------------------------------------------------------------------------------------
  w.Assent = {
    sdk: SDK,
    get version() { return cfg ? cfg.version : null; }, // the banner version in force
    consents: () => Object.assign({}, cur),
    open(view) { if (cfg) show(view); else pending = view || 'main'; } // open('settings') goes straight there
  };

  // ---- Start: config (+ state when we know the visitor). Any failure leaves everything optional denied. ----
  (async function () {
    if (!slug || !base) return;
    const [c, st] = await Promise.all([
      call('/config').catch(() => null),
      vid ? call('/state', { visitor_id: vid }).catch((e) => {
        if (e.status === 422) { writeVid(null); return null; } // not ours: a new visitor
        return false;                                            // unknown: fail closed, don't nag
      }) : null
    ]);
    if (!c || !Array.isArray(c.categories) || !c.text) return;
    cfg = c;
    if (!c.text[lang] && c.text[c.default_lang]) lang = c.default_lang;
    T = c.text[lang] || {};
    ready(forms);
    if (st && st.categories) ticks = Object.assign({}, st.categories);
    if (st && st.version != null && st.version === c.version) apply(st.categories, st.version, st.gpc);
    else if (st !== false) pending = pending || 'main';
    if (pending) show(pending);
  })();
})();
