/* idgraph inspector — explain, and the steward's writes: unlink, unmerge, erasure preview and erase, each after a
 * confirmation, then a redraw.
 */
import { fetchCustomer, gql, ID_PATTERN } from './api.js';
import { renderDetails } from './details.js';
import { $, count, dl, h, setBusy, setStatus, when } from './dom.js';
import { draw, updateStats } from './graph.js';
import { allProfiles, identityNode, linkEdge, mergeEdge, profileName, profileNode, state } from './state.js';

export async function explain(a, b) {
  if (!a || !b || a === b) {
    setStatus('Pick two different profiles to explain.', 'error');
    return;
  }
  setBusy(true);
  try {
    const data = await gql(
      `query InspectorExplain($a: ID!, $b: ID!) {
        explain(profileA: $a, profileB: $b) {
          connected
          steps {
            fromProfileId toProfileId via
            identity { key value }
            fromLink { raw source firstSeen }
            toLink { raw source firstSeen }
            merge { sourceProfileId targetProfileId at by reason }
          }
          cutBy { key value contestedKey contestedValues }
        }
      }`,
      { a, b },
    );
    showExplanation(a, b, data.explain);
  } catch (err) {
    setStatus(err.message, 'error');
  } finally {
    setBusy(false);
  }
}

export function showExplanation(a, b, explanation) {
  const cy = state.cy;
  cy.elements().removeClass('highlighted faded').unselect();
  state.selected = null;
  if (!explanation.connected) {
    updateStats();
    setStatus(`${profileName(a)} and ${profileName(b)} are not linked.`, 'error');
    const cut = (explanation.cutBy || []).map((i) => h('li', {},
      `${i.key} ${i.value}: contested, its holders hold ${i.contestedValues} values of ${i.contestedKey}`));
    $('details').replaceChildren(h('h2', {}, 'Explanation'),
      h('p', { class: 'explain-result', dataset: { connected: 'false', cut: String(cut.length) } }, cut.length
        ? `${profileName(a)} and ${profileName(b)} are not linked: the values that would join them are contested,`
          + ' so they stopped linking (different people by the strategy\'s max_per_customer):'
        : `${profileName(a)} and ${profileName(b)} are not linked: no shared identity and no merge joins them.`),
      ...(cut.length ? [h('ul', { class: 'steps' }, cut)] : []));
    return;
  }
  const lit = cy.collection();
  const add = (id) => { const el = cy.getElementById(id); if (el.nonempty()) lit.merge(el); };
  const steps = explanation.steps.map((step) => {
    add(profileNode(step.fromProfileId));
    add(profileNode(step.toProfileId));
    if (step.via === 'MERGE' && step.merge) {
      add(mergeEdge(step.merge.sourceProfileId, step.merge.targetProfileId));
      return h('li', {}, `${profileName(step.fromProfileId)} → ${profileName(step.toProfileId)}: merged`
        + ` ${when(step.merge.at)} by ${step.merge.by || '?'}${step.merge.reason ? ` (${step.merge.reason})` : ''}`);
    }
    const i = step.identity;
    add(identityNode(i.key, i.value));
    add(linkEdge(step.fromProfileId, i.key, i.value));
    add(linkEdge(step.toProfileId, i.key, i.value));
    const spelled = [step.fromLink, step.toLink].filter(Boolean).map((l) => `"${l.raw}" in ${l.source}`).join(' and ');
    return h('li', {}, `${profileName(step.fromProfileId)} → ${profileName(step.toProfileId)}: share `
      + `${i.key} ${i.value}${spelled ? `, written ${spelled}` : ''}`);
  });
  cy.elements().not(lit).addClass('faded');
  lit.addClass('highlighted');
  updateStats();
  setStatus(`${profileName(a)} and ${profileName(b)} are linked in ${count(steps.length, 'step')}.`, 'ok');
  $('details').replaceChildren(h('h2', {}, 'Explanation'),
    h('p', { class: 'explain-result', dataset: { connected: 'true', steps: String(steps.length) } },
      `Why ${profileName(a)} and ${profileName(b)} are one customer:`),
    h('ol', { class: 'steps' }, steps));
  $('details').dataset.showing = 'explanation';
}

export function confirmAction(title, text, okLabel) {
  const dialog = $('confirm');
  $('confirm-title').textContent = title;
  $('confirm-text').textContent = text;
  $('confirm-ok').textContent = okLabel;
  dialog.returnValue = '';
  return new Promise((resolveConfirm) => {
    dialog.addEventListener('close', () => resolveConfirm(dialog.returnValue === 'ok'), { once: true });
    dialog.showModal();
    $('confirm-cancel').focus();
  });
}

/** Draw again every profile drawn before (and `extra`), one customer query per resulting customer. */
export async function redraw(extra, keepDetails) {
  const before = state.customers.length;
  const pending = [...new Set([...allProfiles().map((x) => x.profile.id), ...(extra || [])])];
  const customers = [];
  const seen = new Set();
  while (pending.length) {
    const id = pending.shift();
    if (seen.has(id)) continue;
    const customer = await fetchCustomer(id);
    seen.add(id);
    if (!customer) continue;
    customer.profiles.forEach((p) => seen.add(p.id));
    if (!customers.some((c) => c.id === customer.id)) customers.push(customer);
  }
  draw(customers, [], keepDetails);
  return { before, after: customers.length };
}

export function splitNote({ before, after }) {
  if (after > before) return ` The customer split: ${after} customers are drawn now.`;
  if (after < before) return ` ${after} customer${after === 1 ? '' : 's'} left.`;
  return '';
}

export async function unlink(profile, link) {
  const ok = await confirmAction('Unlink identity',
    `Detach ${link.key} ${link.value} from profile ${profile.source} · ${profile.sourceId || profile.id}? `
    + 'The profile stops being linked through this value.', 'Unlink');
  if (!ok) return;
  setBusy(true);
  try {
    await gql(
      `mutation InspectorUnlink($profileId: ID!, $identity: IdentityInput!) {
        unlinkIdentity(profileId: $profileId, identity: $identity) { id }
      }`,
      { profileId: profile.id, identity: { key: link.key, value: link.value } },
    );
    const counts = await redraw([profile.id]);
    setStatus(`Unlinked ${link.key} from ${profileName(profile.id)}.${splitNote(counts)}`, 'ok');
  } catch (err) {
    setStatus(err.message, 'error');
  } finally {
    setBusy(false);
  }
}

export async function unmerge(merge) {
  const ok = await confirmAction('Unmerge',
    `Undo the merge of ${profileName(merge.sourceProfileId)} into ${profileName(merge.targetProfileId)}?`, 'Unmerge');
  if (!ok) return;
  setBusy(true);
  try {
    await gql(
      `mutation InspectorUnmerge($source: ID!, $target: ID!) {
        unmergeProfiles(sourceProfileId: $source, targetProfileId: $target) { id }
      }`,
      { source: merge.sourceProfileId, target: merge.targetProfileId },
    );
    const counts = await redraw([merge.sourceProfileId, merge.targetProfileId]);
    setStatus(`Unmerged.${splitNote(counts)}`, 'ok');
  } catch (err) {
    setStatus(err.message, 'error');
  } finally {
    setBusy(false);
  }
}

export function newRequestId() {
  const bytes = new Uint8Array(4);
  crypto.getRandomValues(bytes);
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
  return `erase-${new Date().toISOString().slice(0, 10)}-${hex}`;
}

export async function erasePreview(profileId) {
  setBusy(true);
  let preview;
  try {
    const data = await gql(
      `query InspectorErasurePreview($id: ID!) {
        erasurePreview(profileId: $id) { profileIds identities { key value } keptIdentities { key value } }
      }`,
      { id: profileId },
    );
    preview = data.erasurePreview;
  } catch (err) {
    setStatus(err.message, 'error');
    return;
  } finally {
    setBusy(false);
  }
  state.selected = null;
  state.cy.elements().unselect();
  const requestInput = h('input', { id: 'erase-request-id', name: 'requestId', required: true, value: newRequestId(),
    pattern: '[A-Za-z0-9_.:\\-]{1,128}', spellcheck: 'false' });
  const reasonInput = h('input', { id: 'erase-reason', name: 'reason', required: true,
    placeholder: 'e.g. GDPR art. 17 request #1234' });
  const form = h('form', { id: 'erase-form', autocomplete: 'off', onsubmit: (event) => {
    event.preventDefault();
    erase(profileId, preview, requestInput.value.trim(), reasonInput.value.trim());
  } },
  h('label', { for: 'erase-request-id' }, 'Request id'), requestInput,
  h('label', { for: 'erase-reason' }, 'Reason'), reasonInput,
  h('div', { class: 'actions' },
    h('button', { type: 'submit', class: 'danger', dataset: { action: 'erase' } }, 'Erase customer…'),
    h('button', { type: 'button', class: 'secondary', onclick: () => renderDetails() }, 'Cancel')));
  $('details').replaceChildren(
    h('h2', {}, 'Erasure preview'),
    h('p', { class: 'muted' }, 'Nothing has been deleted yet. Erasing deletes the profiles and identities below, '
      + 'keeps a receipt without personal data, and suppresses the values so a late sync cannot bring them back.'),
    h('h3', {}, `Profiles to delete (${preview.profileIds.length})`),
    h('ul', { class: 'erase-profiles' },
      preview.profileIds.map((id) => h('li', { dataset: { profileId: id } }, profileName(id)))),
    h('h3', {}, `Identities to delete (${preview.identities.length})`),
    h('ul', { class: 'erase-identities' }, preview.identities.map((i) => h('li', {}, `${i.key}: ${i.value}`))),
    h('h3', {}, `Identities kept: other customers hold them (${preview.keptIdentities.length})`),
    preview.keptIdentities.length
      ? h('ul', { class: 'erase-kept' }, preview.keptIdentities.map((i) => h('li', {}, `${i.key}: ${i.value}`)))
      : h('p', { class: 'muted' }, 'None.'),
    form,
  );
  $('details').dataset.showing = 'erasure-preview';
  setStatus(`Erasure preview: ${count(preview.profileIds.length, 'profile')} and `
    + `${count(preview.identities.length, 'identity')} would be deleted. Nothing was deleted.`);
  reasonInput.focus();
}

export async function erase(profileId, preview, requestId, reason) {
  if (!ID_PATTERN.test(requestId) || !reason) {
    setStatus('An erasure needs a request id (letters, digits or _.:-) and a reason.', 'error');
    return;
  }
  const ok = await confirmAction('Erase customer',
    `Permanently delete ${count(preview.profileIds.length, 'profile')} and `
    + `${count(preview.identities.length, 'identity')}? `
    + 'This cannot be undone.', 'Erase');
  if (!ok) return;
  setBusy(true);
  try {
    const data = await gql(
      `mutation InspectorErase($id: ID!, $requestId: ID!, $reason: String!) {
        eraseCustomer(profileId: $id, requestId: $requestId, reason: $reason) {
          requestId status profilesDeleted identitiesDeleted suppressed at
        }
      }`,
      { id: profileId, requestId, reason },
    );
    const receipt = data.eraseCustomer;
    await redraw([], true);
    $('details').replaceChildren(
      h('h2', {}, 'Erasure receipt'),
      dl([
        ['Request id', receipt.requestId],
        ['Status', receipt.status],
        ['Profiles deleted', String(receipt.profilesDeleted)],
        ['Identities deleted', String(receipt.identitiesDeleted)],
        ['Values suppressed', String(receipt.suppressed)],
        ['At', when(receipt.at)],
      ]),
    );
    $('details').dataset.showing = 'erasure-receipt';
    setStatus(`Erased: ${count(receipt.profilesDeleted, 'profile')}, `
      + `${count(receipt.identitiesDeleted, 'identity')} (request ${receipt.requestId}).`, 'ok');
  } catch (err) {
    setStatus(err.message, 'error');
  } finally {
    setBusy(false);
  }
}
