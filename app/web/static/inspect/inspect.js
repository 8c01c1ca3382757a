/* idgraph inspector — the /inspect page: asks for a token once (sessionStorage only), searches, and wires the
 * modules together.
 *
 * Every value from the server is put in the page as text, never as HTML. Which write buttons exist depends on the
 * token's scopes, learnt once per session (api.js, probeScopes).
 */
import { explain } from './actions.js';
import { fetchCustomer, hooks, ID_PATTERN, probeScopes, READ, resolve } from './api.js';
import { renderDetails, select } from './details.js';
import { $, banner, h, hideCandidates, setBusy, setStatus } from './dom.js';
import { clearHighlight, draw } from './graph.js';
import { state, TOKEN_KEY } from './state.js';

async function startSession(token) {
  state.token = token;
  $('token-error').textContent = '';
  let probed;
  try {
    setBusy(true);
    probed = await probeScopes();
  } catch (err) {
    if (err.code !== 'UNAUTHENTICATED') endSession(`Could not check the token: ${err.message}`);
    return;
  } finally {
    setBusy(false);
  }
  if (!probed.scopes.has(READ)) {
    endSession('This token lacks the identity:read scope the inspector needs.');
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  state.scopes = probed.scopes;
  state.who = probed.who;
  state.maxPerIdentity = probed.maxPerIdentity;
  const scopesEl = $('session-scopes');
  scopesEl.replaceChildren(
    ...(state.who ? [h('span', { class: 'who' }, state.who)] : []),
    ...[...state.scopes].sort().map((s) => h('span', { class: 'scope' }, s)),
  );
  scopesEl.dataset.scopes = [...state.scopes].sort().join(' ');
  $('session').hidden = false;
  $('token-panel').hidden = true;
  $('app').hidden = false;
  renderDetails();
  $('search-value').focus();
}

function endSession(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = '';
  state.scopes = new Set();
  $('session').hidden = true;
  $('app').hidden = true;
  $('token-panel').hidden = false;
  $('token-error').textContent = message || '';
  $('token-input').value = '';
  $('token-input').focus();
}

function guessKey(value) {
  if (value.includes('@')) return 'email_address';
  const digits = value.replace(/\D/g, '').length;
  if (/^\+?[\d\s().\-/]+$/.test(value) && digits >= 6) return 'phone_number';
  return null; // an account id or a profile id
}

async function search(event) {
  event.preventDefault();
  const chosen = $('search-key').value;
  const values = $('search-value').value.split(',').map((v) => v.trim()).filter(Boolean);
  if (!values.length) return;
  hideCandidates();
  setBusy(true);
  setStatus('Searching…');
  try {
    if (chosen === 'profile') {
      await openProfile(values[0]);
      return;
    }
    const keyOf = (value) => (chosen === 'auto' ? guessKey(value) || 'account_id' : chosen);
    const identities = values.map((value) => ({ key: keyOf(value), value }));
    const resolution = await resolve(identities);
    const fallback = chosen === 'auto' && values.length === 1 && !guessKey(values[0]);
    if (resolution.status === 'NOT_FOUND' && fallback && ID_PATTERN.test(values[0])) {
      if (await openProfile(values[0], true)) return;
    }
    showResolution(resolution);
  } catch (err) {
    setStatus(err.message, 'error');
  } finally {
    setBusy(false);
  }
}

async function openProfile(profileId, quiet) {
  if (!ID_PATTERN.test(profileId)) {
    setStatus('A profile id is 1-128 letters, digits or _.:-', 'error');
    return false;
  }
  const customer = await fetchCustomer(profileId);
  if (!customer) {
    if (!quiet) setStatus('No profile with that id.', 'error');
    return false;
  }
  draw([customer]);
  setStatus(`Customer ${customer.id}: the component of profile ${profileId}.`, 'ok');
  select({ kind: 'profile', id: profileId });
  return true;
}

function describeMatch(resolution) {
  const matched = resolution.matchedOn.map((i) => `${i.key} ${i.value}`).join(', ');
  return matched ? ` Matched on ${matched} (${resolution.assurance.toLowerCase()} match).` : '';
}

function showResolution(resolution) {
  const notes = [
    ...resolution.rejected.map((r) => `${r.key} refused: ${r.reason.toLowerCase()}${r.detail ? ` (${r.detail})` : ''}`),
    ...resolution.ignored.map((i) => `${i.key} ${i.value} not used: ${i.reason.toLowerCase()}`),
  ];
  const extra = notes.length ? ` ${notes.join('; ')}.` : '';
  if (resolution.status === 'FOUND') {
    draw([resolution.customer], resolution.matchedOn);
    setStatus(`Found customer ${resolution.customer.id}.${describeMatch(resolution)}${extra}`, 'ok');
  } else if (resolution.status === 'AMBIGUOUS') {
    draw([]);
    showCandidates(resolution.candidates, resolution.matchedOn);
    setStatus(`Ambiguous: ${resolution.candidates.length} customers match. Pick one below.${extra}`);
  } else {
    draw([]);
    setStatus(`No customer found.${extra}`, 'error');
  }
}

function showCandidates(candidates, matchedOn) {
  const list = $('candidate-list');
  list.replaceChildren(
    ...candidates.map((c) =>
      h(
        'li',
        {},
        h(
          'button',
          {
            type: 'button',
            class: 'candidate',
            dataset: { customerId: c.id },
            onclick: () => {
              draw([c], matchedOn);
              setStatus(`Customer ${c.id}, one of ${candidates.length} candidates.`, 'ok');
            },
          },
          `Customer ${c.id}`,
          h(
            'small',
            {},
            `${c.profiles.length} profile${c.profiles.length === 1 ? '' : 's'}: `,
            c.profiles.map((p) => `${p.source} ${p.sourceId || ''}`.trim()).join(', '),
          ),
        ),
      ),
    ),
  );
  $('candidates').hidden = false;
}

function init() {
  setBusy(false);
  hooks.unauthorized = endSession;
  if (typeof cytoscape !== 'function') {
    banner('The graph library is missing: run `make install` (it runs `npm ci` in web/) and reload the page.');
    return;
  }
  $('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const token = $('token-input').value.trim();
    if (token) startSession(token);
  });
  $('forget-token').addEventListener('click', () => endSession(''));
  $('search-form').addEventListener('submit', search);
  $('explain-form').addEventListener('submit', (event) => {
    event.preventDefault();
    explain($('explain-a').value, $('explain-b').value);
  });
  $('explain-clear').addEventListener('click', () => {
    clearHighlight();
    setStatus('');
    renderDetails();
  });
  window.idgraphInspector = { get cy() { return state.cy; }, get scopes() { return [...state.scopes]; } };
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) startSession(saved);
  else endSession('');
}

init();
