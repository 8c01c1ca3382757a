/* idgraph inspector — the history panel of a customer summary: merges, unmerges, links, unlinks and erasures of the
 * customer and the profiles it held, newest first, with who and when (customerHistory, identity:audit). Events hold
 * ids only. Loaded once per drawing of the customer and kept in memory only (never in browser storage or the URL).
 */
import { AUDIT, fetchHistory } from './api.js';
import { h, tag, whenShort } from './dom.js';
import { may, profileName } from './state.js';

export const HISTORY_LIMIT = 50;

const LABELS = {
  PROFILE_CREATED: 'created',
  PROFILE_UPDATED: 'updated',
  IDENTITY_LINKED: 'linked',
  IDENTITY_UNLINKED: 'unlinked',
  IDENTITY_SATURATED: 'stopped linking',
  IDENTITY_RELEASED: 'links again',
  MERGE: 'merged',
  UNMERGE: 'unmerged',
  CUSTOMER_ERASED: 'customer erased',
  PROFILE_ERASED: 'profile erased',
  RETENTION_PURGE: 'purged',
};

// One load per customer object: a redraw (after a write) makes new objects, so the history is read again.
const loads = new WeakMap();

function names(ids) {
  return ids.map((id) => profileName(id)).join(', ');
}

function describe(event) {
  const [first, second] = event.profileIds;
  switch (event.type) {
    case 'MERGE': return `${profileName(first)} merged into ${profileName(second)}`;
    case 'UNMERGE': return `${profileName(first)} unmerged from ${profileName(second)}`;
    case 'IDENTITY_LINKED': return `identity linked to ${names(event.profileIds)}`;
    case 'IDENTITY_UNLINKED': return `identity unlinked from ${names(event.profileIds)}`;
    case 'IDENTITY_SATURATED': return `an identity of ${names(event.profileIds)} stopped linking`;
    case 'IDENTITY_RELEASED': return `an identity of ${names(event.profileIds)} links again`;
    case 'CUSTOMER_ERASED':
    case 'PROFILE_ERASED':
    case 'RETENTION_PURGE': {
      const n = event.profileIds.length;
      return `${n} profile${n === 1 ? '' : 's'} erased: ${event.profileIds.join(', ')}`;
    }
    default: return names(event.profileIds);
  }
}

function item(event) {
  return h('li', { dataset: { cursor: event.cursor, type: event.type } },
    h('div', { class: 'link-head' }, tag(`change ${event.type.toLowerCase()}`, LABELS[event.type] || event.type),
      h('span', {}, describe(event))),
    h('div', { class: 'link-meta' }, `${whenShort(event.at)} · by ${event.actor}`
      + (event.reason ? ` · ${event.reason}` : '')));
}

function fill(section, load) {
  let body;
  if (load.status === 'loading') body = h('p', { class: 'muted' }, 'Loading…');
  else if (load.status === 'error') body = h('p', { class: 'error' }, `History not loaded: ${load.error}`);
  else if (!load.events.length) body = h('p', { class: 'muted' }, 'No recorded changes.');
  else {
    body = [
      h('ul', { class: 'links history-list' }, load.events.map(item)),
      load.events.length >= HISTORY_LIMIT ? h('p', { class: 'hint' }, `The newest ${HISTORY_LIMIT} changes.`) : '',
    ];
  }
  section.replaceChildren(h('h3', {}, 'History'), ...[body].flat().filter(Boolean));
  section.dataset.status = load.status;
  section.dataset.events = String(load.events ? load.events.length : 0);
}

/** The history section of a customer summary; empty without identity:audit. It fills itself when the read ends. */
export function historySection(customer) {
  if (!may(AUDIT)) return '';
  const section = h('section', { class: 'history', dataset: { customerId: customer.id } });
  let load = loads.get(customer);
  if (!load) {
    load = { status: 'loading', events: null, error: '', waiting: new Set() };
    loads.set(customer, load);
    const done = load;
    fetchHistory(customer.id, HISTORY_LIMIT)
      .then((history) => { done.status = 'ok'; done.events = history ? history.events : []; })
      .catch((err) => { done.status = 'error'; done.error = err.message; })
      .finally(() => {
        for (const el of done.waiting) if (el.isConnected) fill(el, done);
        done.waiting.clear();
      });
  }
  if (load.status === 'loading') load.waiting.add(section);
  fill(section, load);
  return section;
}
