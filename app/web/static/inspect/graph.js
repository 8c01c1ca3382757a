/* idgraph inspector — the drawing: cytoscape elements and style of the customers drawn, their layout, and the
 * counts exposed in the page (#graph-stats data-* attributes).
 */
import { explain } from './actions.js';
import { renderDetails, select } from './details.js';
import { $, count, h, hideCandidates } from './dom.js';
import { allProfiles, conflicting, identityNode, linkEdge, mergeEdge, profileName, profileNode, state } from './state.js';

export const KEY_CLASSES = { phone_number: 'key-phone', email_address: 'key-email', account_id: 'key-account' };

export const SOURCE_COLOURS = { crm: '#3949ab', salesforce: '#1e88e5', ivr: '#00897b', webchat: '#d81b60', pos: '#6d4c41' };

export const PALETTE = ['#5e35b1', '#00838f', '#7cb342', '#f4511e', '#6d4c41', '#3949ab', '#c0ca33', '#546e7a'];

export function sourceColour(source) {
  if (SOURCE_COLOURS[source]) return SOURCE_COLOURS[source];
  let hash = 0;
  for (const ch of source) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  return PALETTE[hash % PALETTE.length];
}

export function profileLabel(p) {
  return `${p.source}\n${p.sourceId || p.id.slice(0, 12)}`;
}

export function elementsOf(customers, matchedOn) {
  const nodes = new Map();
  const edges = new Map();
  const matched = new Set((matchedOn || []).map((i) => identityNode(i.key, i.value)));
  for (const customer of customers) {
    for (const p of customer.profiles) {
      nodes.set(profileNode(p.id), {
        group: 'nodes',
        classes: 'profile',
        data: { id: profileNode(p.id), kind: 'profile', ref: p.id, customer: customer.id,
          label: profileLabel(p), colour: sourceColour(p.source) },
      });
    }
    const identities = new Map(customer.identities.map((i) => [identityNode(i.key, i.value), i]));
    for (const p of customer.profiles) {
      for (const link of p.links) {
        const id = identityNode(link.key, link.value);
        if (!identities.has(id)) {
          identities.set(id, { key: link.key, value: link.value, blocked: false, saturated: !link.linking,
            profileCount: 0 });
        }
      }
    }
    for (const [id, i] of identities) {
      const flags = [];
      const classes = ['identity', KEY_CLASSES[i.key] || 'key-other'];
      if (i.blocked) { classes.push('blocked'); flags.push('blocked'); }
      if (i.saturated) { classes.push('saturated'); flags.push('over limit'); }
      if (i.contested) { classes.push('contested'); flags.push('contested'); }
      if (conflicting(customer, i.key, i.value)) { classes.push('conflict'); flags.push('conflict'); }
      if (matched.has(id)) classes.push('matched');
      const previous = nodes.get(id);
      if (previous) { previous.data.customers.push(customer.id); continue; }
      nodes.set(id, {
        group: 'nodes',
        classes: classes.join(' '),
        data: { id, kind: 'identity', key: i.key, value: i.value, customers: [customer.id],
          label: flags.length ? `${i.value}\n[${flags.join(', ')}]` : i.value },
      });
    }
    for (const p of customer.profiles) {
      for (const link of p.links) {
        const id = linkEdge(p.id, link.key, link.value);
        edges.set(id, {
          group: 'edges',
          classes: link.linking ? 'link linking' : 'link nonlinking',
          data: { id, kind: 'link', source: profileNode(p.id), target: identityNode(link.key, link.value),
            profile: p.id, key: link.key, value: link.value },
        });
      }
    }
    for (const m of customer.merges) {
      const id = mergeEdge(m.sourceProfileId, m.targetProfileId);
      if (!nodes.has(profileNode(m.sourceProfileId)) || !nodes.has(profileNode(m.targetProfileId))) continue;
      edges.set(id, {
        group: 'edges',
        classes: 'merged',
        data: { id, kind: 'merge', source: profileNode(m.sourceProfileId), target: profileNode(m.targetProfileId),
          from: m.sourceProfileId, to: m.targetProfileId },
      });
    }
  }
  return [...nodes.values(), ...edges.values()];
}

export const GRAPH_STYLE = [
  { selector: 'node', style: {
    label: 'data(label)', 'text-wrap': 'wrap', 'text-max-width': '170px', 'font-size': 14,
    'text-valign': 'bottom', 'text-halign': 'center', 'text-margin-y': 5, color: '#1d2330',
    'text-background-color': '#fbfcfe', 'text-background-opacity': 0.85, 'text-background-padding': '2px',
    'border-width': 3 } },
  { selector: 'node.profile', style: {
    shape: 'round-rectangle', width: 54, height: 38, 'background-color': 'data(colour)', 'border-color': '#ffffff',
    'font-weight': 'bold' } },
  { selector: 'node.identity', style: { shape: 'ellipse', width: 30, height: 30 } },
  { selector: 'node.key-phone', style: { 'background-color': '#e8f5e9', 'border-color': '#2e7d32' } },
  { selector: 'node.key-email', style: { 'background-color': '#e3f2fd', 'border-color': '#1565c0' } },
  { selector: 'node.key-account', style: { 'background-color': '#fff3e0', 'border-color': '#e65100' } },
  { selector: 'node.key-other', style: { 'background-color': '#eceff1', 'border-color': '#607d8b' } },
  { selector: 'node.matched', style: { 'font-weight': 'bold', width: 36, height: 36 } },
  { selector: 'node.conflict', style: { 'border-color': '#8e24aa', 'border-width': 6, color: '#6a1b9a' } },
  { selector: 'node.saturated', style: { 'border-color': '#f9a825', 'border-style': 'double', 'border-width': 8 } },
  { selector: 'node.contested', style: { 'border-color': '#00897b', 'border-style': 'double', 'border-width': 8 } },
  { selector: 'node.blocked', style: { 'border-color': '#c62828', 'border-style': 'dashed', 'border-width': 4,
    color: '#b71c1c' } },
  { selector: 'edge', style: { width: 2, 'line-color': '#8a93a6', 'curve-style': 'bezier' } },
  { selector: 'edge.nonlinking', style: { 'line-style': 'dashed', 'line-color': '#e57373', label: 'not linking',
    'font-size': 11, color: '#b71c1c', 'text-rotation': 'autorotate', 'text-background-color': '#fbfcfe',
    'text-background-opacity': 0.9 } },
  { selector: 'edge.merged', style: { width: 5, 'line-color': '#37474f', 'target-arrow-shape': 'triangle',
    'target-arrow-color': '#37474f', 'arrow-scale': 1.3, label: 'merged into', 'font-size': 12,
    'text-rotation': 'autorotate', 'text-background-color': '#fbfcfe', 'text-background-opacity': 1,
    'text-background-padding': '2px', 'z-index-compare': 'manual', 'z-index': 20 } },
  { selector: '.faded', style: { opacity: 0.18 } },
  { selector: 'node.highlighted', style: { 'underlay-color': '#ffb300', 'underlay-opacity': 0.55,
    'underlay-padding': 9, 'underlay-shape': 'ellipse' } },
  { selector: 'edge.highlighted', style: { 'line-color': '#ffb300', 'target-arrow-color': '#ffb300', width: 7,
    'z-index': 10 } },
  { selector: 'node:selected', style: { 'outline-width': 4, 'outline-color': '#1f5fbf', 'outline-offset': 3 } },
  { selector: 'edge:selected', style: { 'line-color': '#1f5fbf', 'target-arrow-color': '#1f5fbf', width: 6 } },
];

export function makeGraph() {
  const cy = cytoscape({
    container: $('graph'),
    style: GRAPH_STYLE,
    minZoom: 0.2,
    maxZoom: 1.6,
    boxSelectionEnabled: false,
    selectionType: 'single',
  });
  cy.on('tap', 'node, edge', (event) => onTap(event.target, event.originalEvent));
  cy.on('tap', (event) => {
    if (event.target === cy) {
      cy.elements().unselect();
      state.selected = null;
      renderDetails();
    }
  });
  return cy;
}

export function onTap(element, original) {
  const data = element.data();
  if (data.kind === 'profile' && original && original.shiftKey && state.selected && state.selected.kind === 'profile'
      && state.selected.id !== data.ref) {
    const first = state.selected.id;
    $('explain-a').value = first;
    $('explain-b').value = data.ref;
    explain(first, data.ref);
    return;
  }
  if (data.kind === 'profile') select({ kind: 'profile', id: data.ref });
  else if (data.kind === 'identity') select({ kind: 'identity', key: data.key, value: data.value });
  else if (data.kind === 'link') select({ kind: 'identity', key: data.key, value: data.value, profile: data.profile });
  else if (data.kind === 'merge') select({ kind: 'merge', from: data.from, to: data.to });
}

/** Deterministic: a tree grown from each customer's oldest profile (its id); rings for very large components. */
export function layOut(cy, customers) {
  if (!cy.nodes().length) return;
  if (cy.nodes().length > 400) {
    cy.layout({ name: 'concentric', animate: false, fit: true, padding: 30, minNodeSpacing: 12 }).run();
    return;
  }
  const roots = customers.map((c) => cy.getElementById(profileNode(c.id))).filter((n) => n.nonempty());
  cy.layout({ name: 'breadthfirst', roots: cy.collection(roots), directed: false, spacingFactor: 1,
    avoidOverlap: true, nodeDimensionsIncludeLabels: true, animate: false, fit: false }).run();
}

/** Replace the drawing with these customers (several after a split, none to clear it). */
export function draw(customers, matchedOn, keepDetails) {
  hideCandidates();
  state.customers = customers;
  state.selected = null;
  const cy = state.cy || (state.cy = makeGraph());
  cy.batch(() => {
    cy.elements().remove();
    cy.add(elementsOf(customers, matchedOn));
  });
  layOut(cy, customers);
  // The tree grows downwards: turn a tall drawing on its side when the pane is wide, so that it is drawn larger.
  const box = cy.nodes().boundingBox();
  if (box.h > box.w * 1.15 && cy.width() > cy.height()) {
    cy.nodes().positions((node) => ({ x: node.position('y'), y: node.position('x') }));
  }
  cy.fit(undefined, 30);
  fillExplainSelects();
  updateStats();
  if (!keepDetails) renderDetails();
}

export function updateStats() {
  const cy = state.cy;
  const el = $('graph-stats');
  state.version += 1;
  const size = (selector) => cy.elements(selector).length;
  const stats = {
    nodes: cy.nodes().length,
    edges: cy.edges().length,
    profiles: size('node.profile'),
    identities: size('node.identity'),
    linking: size('edge.linking'),
    nonlinking: size('edge.nonlinking'),
    merges: size('edge.merged'),
    customers: state.customers.length,
    highlighted: size('.highlighted'),
    version: state.version,
  };
  Object.assign(el.dataset, Object.fromEntries(Object.entries(stats).map(([k, v]) => [k, String(v)])));
  if (!stats.nodes) {
    el.textContent = 'Nothing drawn.';
    return;
  }
  el.textContent = `${count(stats.nodes, 'node')} (${count(stats.profiles, 'profile')}, `
    + `${count(stats.identities, 'identity')}) · ${count(stats.edges, 'edge')} `
    + `(${stats.linking} linking, ${stats.nonlinking} not linking, ${count(stats.merges, 'merge')}) · `
    + count(stats.customers, 'customer');
}

export function fillExplainSelects() {
  const options = allProfiles().map(({ profile }) => [profile.id, profileName(profile.id)]);
  for (const [n, id] of [[0, 'explain-a'], [1, 'explain-b']]) {
    const select = $(id);
    select.replaceChildren(...options.map(([value, label]) => h('option', { value }, label)));
    if (options.length > n) select.selectedIndex = n;
  }
  $('explain-form').querySelector('button[type="submit"]').disabled = options.length < 2;
}

export function clearHighlight() {
  if (!state.cy) return;
  state.cy.elements().removeClass('highlighted faded');
  updateStats();
}
