/* idgraph inspector — what is drawn and who is looking, shared by the other modules; ids of graph elements.
 */
export const TOKEN_KEY = 'idgraph.inspector.token';

export const state = {
  token: '',
  scopes: new Set(),
  who: '',
  maxPerIdentity: 0,
  customers: [], // the customers drawn, in order
  selected: null, // {kind: 'profile'|'identity'|'merge', id}
  cy: null,
  version: 0,
};

export const may = (scope) => state.scopes.has(scope);

export const KEY_LABELS = { phone_number: 'Phone', email_address: 'Email', account_id: 'Account id' };

export const profileNode = (id) => `p:${id}`;

export const identityNode = (key, value) => `i:${JSON.stringify([key, value])}`;

export const linkEdge = (profileId, key, value) => `l:${JSON.stringify([profileId, key, value])}`;

export const mergeEdge = (source, target) => `m:${JSON.stringify([source, target])}`;

export function conflicting(customer, key, value) {
  return customer.conflicts.some((c) => c.key === key && c.values.includes(value));
}

export function allProfiles() {
  return state.customers.flatMap((c) => c.profiles.map((p) => ({ profile: p, customer: c })));
}

export function findProfile(id) {
  return allProfiles().find((x) => x.profile.id === id) || null;
}

export function profileName(id) {
  const found = findProfile(id);
  return found ? `${found.profile.source} · ${found.profile.sourceId || found.profile.id}` : id;
}
