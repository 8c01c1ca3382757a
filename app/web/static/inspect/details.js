/* idgraph inspector — the side panel: a customer's summary, a profile, an identity or a merge. Write and erase
 * buttons are only put in the page when the token has the scope.
 */
import { erasePreview, unlink, unmerge } from './actions.js';
import { ERASE, WRITE } from './api.js';
import { $, dl, h, setStatus, show, tag, when, whenShort } from './dom.js';
import { historySection } from './history.js';
import {
  allProfiles, conflicting, findProfile, identityNode, KEY_LABELS, linkEdge, may, mergeEdge, profileName, profileNode,
  state,
} from './state.js';

export function select(what) {
  state.selected = what;
  const cy = state.cy;
  if (cy) {
    cy.elements().unselect();
    let id = null;
    if (what.kind === 'profile') id = profileNode(what.id);
    else if (what.kind === 'identity' && what.profile) id = linkEdge(what.profile, what.key, what.value);
    else if (what.kind === 'identity') id = identityNode(what.key, what.value);
    else if (what.kind === 'merge') id = mergeEdge(what.from, what.to);
    if (id) cy.getElementById(id).select();
  }
  renderDetails();
}

export function renderDetails() {
  const panel = $('details');
  const what = state.selected;
  let content;
  if (!state.customers.length) content = [h('p', { class: 'muted' }, 'Search for a customer to start.')];
  else if (!what) content = state.customers.map(customerSummary);
  else if (what.kind === 'profile') content = profileDetails(what.id);
  else if (what.kind === 'identity') content = identityDetails(what.key, what.value);
  else content = mergeDetails(what.from, what.to);
  panel.replaceChildren(...content.flat(Infinity).filter(Boolean));
  panel.dataset.showing = what ? what.kind : 'customer';
}

export function nodeButton(label, what) {
  return h('button', { type: 'button', class: 'linkish', onclick: () => select(what) }, label);
}

export function customerSummary(customer) {
  const conflicts = customer.conflicts.map((c) => h('li', {}, tag('conflict', 'conflict'),
    `${c.key}: ${c.values.join(', ')} (at most ${c.limit} allowed)`));
  return h('section', { class: 'customer', dataset: { customerId: customer.id } },
    h('h2', {}, `Customer ${customer.id}`),
    customer.truncated
      ? h('p', { class: 'error' }, 'This component is larger than the display bound: only part of it is drawn.') : '',
    dl([
      ['Profiles', String(customer.profiles.length)],
      ['Identities', String(customer.identities.length)],
      ['Merges', String(customer.merges.length)],
      ['Routing skills', customer.skills.join(', ') || '—'],
    ]),
    conflicts.length ? [h('h3', {}, 'Conflicts'), h('ul', {}, conflicts)] : '',
    h('h3', {}, 'Attributes (surviving values)'),
    customer.attributeProvenance.length
      ? h('table', { class: 'provenance' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'Value'), h('th', {}, 'From'), h('th', {}, 'Updated'))),
        h('tbody', {}, customer.attributeProvenance.map((a) => h('tr', {},
          h('td', {}, a.name), h('td', {}, show(a.value)),
          h('td', {}, nodeButton(profileName(a.profileId), { kind: 'profile', id: a.profileId })),
          h('td', {}, whenShort(a.updatedAt))))))
      : h('p', { class: 'muted' }, 'No attributes.'),
    h('h3', {}, 'Profiles'),
    h('ul', { class: 'nodelist' }, customer.profiles.map((p) => h('li', {},
      nodeButton(`${p.source} · ${p.sourceId || p.id}`, { kind: 'profile', id: p.id })))),
    h('h3', {}, 'Identities'),
    h('ul', { class: 'nodelist' }, customer.identities.map((i) => h('li', {},
      nodeButton(`${KEY_LABELS[i.key] || i.key}: ${i.value}`, { kind: 'identity', key: i.key, value: i.value }),
      identityTags(customer, i)))),
    historySection(customer),
    may(ERASE) ? h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'danger', dataset: { action: 'erase-preview' },
        onclick: () => erasePreview(customer.id) }, 'Erasure preview…')) : '',
  );
}

export function identityTags(customer, i) {
  return [
    i.blocked ? tag('blocked', 'blocked') : '',
    i.saturated ? tag('saturated', 'over limit') : '',
    i.contested ? tag('contested', 'contested') : '',
    conflicting(customer, i.key, i.value) ? tag('conflict', 'conflict') : '',
  ];
}

export function profileDetails(id) {
  const found = findProfile(id);
  if (!found) return [h('p', { class: 'muted' }, 'That profile is not drawn any more.')];
  const { profile: p, customer } = found;
  const provenance = new Map(customer.attributeProvenance.map((a) => [a.name, a]));
  const attributes = Object.entries(p.attributes || {});
  const identities = new Map(customer.identities.map((i) => [identityNode(i.key, i.value), i]));
  return [
    h('h2', {}, 'Profile'),
    dl([
      ['Source', p.source],
      ['Source id', p.sourceId || '—'],
      ['Profile id', p.id],
      ['Customer', customer.id],
      ['Created', when(p.createdAt)],
      ['Updated', when(p.updatedAt)],
    ]),
    h('h3', {}, 'Attributes'),
    attributes.length
      ? h('table', { class: 'attributes' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'Value'), h('th', {}, 'Customer keeps'))),
        h('tbody', {}, attributes.map(([name, value]) => {
          const winner = provenance.get(name);
          let verdict;
          if (!winner) verdict = '—';
          else if (winner.profileId === p.id) {
            verdict = [tag('winner', 'this value'), `${winner.source}, ${whenShort(winner.updatedAt)}`];
          }
          else verdict = [tag('loser', 'overridden'), `${show(winner.value)} from `,
            nodeButton(profileName(winner.profileId), { kind: 'profile', id: winner.profileId }),
            `, ${whenShort(winner.updatedAt)}`];
          return h('tr', { dataset: { attribute: name } },
            h('td', {}, name), h('td', {}, show(value)), h('td', {}, verdict));
        })))
      : h('p', { class: 'muted' }, 'No attributes.'),
    h('h3', {}, 'Identities'),
    p.links.length
      ? h('ul', { class: 'links' }, p.links.map((link) => {
        const stored = identities.get(identityNode(link.key, link.value));
        return h('li', { dataset: { key: link.key, value: link.value } },
          h('div', { class: 'link-head' },
            h('span', { class: 'key' }, `${KEY_LABELS[link.key] || link.key}:`),
            nodeButton(link.value, { kind: 'identity', key: link.key, value: link.value }),
            link.linking ? '' : tag('nonlinking', 'not linking'), stored ? identityTags(customer, stored) : '',
            may(WRITE) ? unlinkButton(p, link) : ''),
          h('div', { class: 'link-meta' }, `written "${link.raw}" · seen ${whenShort(link.firstSeen)} → `
            + whenShort(link.lastSeen)));
      }))
      : h('p', { class: 'muted' }, 'No identities.'),
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'secondary', onclick: () => {
        $('explain-a').value = p.id;
        $('explain-b').focus();
        setStatus('Pick the second profile (or shift-click it in the graph), then Explain link.');
      } }, 'Explain link with…'),
      may(ERASE) ? h('button', { type: 'button', class: 'danger', dataset: { action: 'erase-preview' },
        onclick: () => erasePreview(p.id) }, 'Erasure preview…') : ''),
  ];
}

export function unlinkButton(profile, link) {
  return h('button', {
    type: 'button', class: 'small danger', dataset: { action: 'unlink', key: link.key, profileId: profile.id },
    onclick: () => unlink(profile, link),
  }, 'Unlink');
}

export function identityDetails(key, value) {
  const holders = allProfiles().flatMap(({ profile, customer }) =>
    profile.links.filter((l) => l.key === key && l.value === value).map((link) => ({ profile, customer, link })));
  const stored = state.customers.flatMap((c) => c.identities.map((i) => ({ i, c })))
    .find(({ i }) => i.key === key && i.value === value);
  const identity = stored ? stored.i : { key, value, blocked: false, saturated: false, profileCount: holders.length };
  const customer = stored ? stored.c : null;
  const conflict = customer ? customer.conflicts.find((c) => c.key === key && c.values.includes(value)) : null;
  const outside = identity.profileCount - holders.length;
  return [
    h('h2', {}, 'Identity ', identityTags(customer || { conflicts: [] }, identity)),
    dl([
      ['Key', key],
      ['Normalized value', value],
      ['Held by', `${identity.profileCount} profile${identity.profileCount === 1 ? '' : 's'}`
        + (outside > 0 ? ` (${outside} outside what is drawn)` : '')],
      ['Blocked', identity.blocked ? 'yes: on the strategy\'s blocked list, links no one' : 'no'],
      ['Over the limit', identity.saturated
        ? `yes: shared by more than ${state.maxPerIdentity || 'the limit of'} profiles, links no one` : 'no'],
      ['Contested', identity.contested
        ? `yes: its holders hold ${identity.contestedValues} values of ${identity.contestedKey}, more than one customer `
          + 'may: links no one until that goes away'
        : 'no'],
      conflict
        ? ['Conflict', `the customer holds ${conflict.values.length} ${key} values; at most ${conflict.limit} allowed`]
        : null,
    ]),
    h('h3', {}, 'Spellings, per profile'),
    h('ul', { class: 'links holders' }, holders.map(({ profile, link }) => h('li', { dataset: { profileId: profile.id } },
      h('div', { class: 'link-head' },
        nodeButton(`${profile.source} · ${profile.sourceId || profile.id}`, { kind: 'profile', id: profile.id }),
        link.linking ? '' : tag('nonlinking', 'not linking'),
        may(WRITE) ? unlinkButton(profile, link) : ''),
      h('div', { class: 'link-meta' }, `written "${link.raw}" (${link.source}) · first seen `
        + `${whenShort(link.firstSeen)} · last seen ${whenShort(link.lastSeen)}`)))),
  ];
}

export function mergeDetails(from, to) {
  const merge = state.customers.flatMap((c) => c.merges)
    .find((m) => m.sourceProfileId === from && m.targetProfileId === to);
  if (!merge) return [h('p', { class: 'muted' }, 'That merge is not drawn any more.')];
  return [
    h('h2', {}, 'Merge'),
    dl([
      ['Merged profile', nodeButton(profileName(from), { kind: 'profile', id: from })],
      ['Into', nodeButton(profileName(to), { kind: 'profile', id: to })],
      ['At', when(merge.at)],
      ['By', merge.by || '—'],
      ['Reason', merge.reason || '—'],
    ]),
    may(WRITE) ? h('div', { class: 'actions' }, h('button', { type: 'button', class: 'danger',
      dataset: { action: 'unmerge' }, onclick: () => unmerge(merge) }, 'Unmerge…')) : '',
  ];
}
