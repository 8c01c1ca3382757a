/* idgraph inspector — /graphql, the one data API the page uses, and how it learns the token's scopes.
 */
import { state } from './state.js';

/** What to do when the server refuses the token (inspect.js ends the session). */
export const hooks = { unauthorized: (message) => {} };

export const READ = 'identity:read';

export const WRITE = 'identity:write';

export const ERASE = 'identity:erase';

export const AUDIT = 'identity:audit';

export const PROBE_ID = 'inspector-scope-probe';

export const ID_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;

export const CUSTOMER_FIELDS = `
  fragment InspectorCustomer on Customer {
    id truncated skills
    conflicts { key values limit }
    merges { sourceProfileId targetProfileId at by reason }
    attributeProvenance { name value profileId source updatedAt }
    identities { key value blocked saturated contested contestedKey contestedValues profileCount }
    profiles {
      id source sourceId attributes createdAt updatedAt
      links { key value raw source firstSeen lastSeen linking }
    }
  }`;

export class GqlError extends Error {
  constructor(message, code, path) {
    super(message);
    this.code = code || 'INTERNAL';
    this.path = path || [];
  }
}

/** POST one operation; returns the raw {data, errors} body. A 401 ends the session. */
export async function post(query, variables) {
  let response;
  try {
    response = await fetch('/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${state.token}` },
      body: JSON.stringify({ query, variables: variables || {} }),
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch (err) {
    throw new GqlError(`The server did not answer (${err.message}).`, 'NETWORK');
  }
  if (response.status === 401) {
    hooks.unauthorized('The server refused the token (HTTP 401). Enter a valid token.');
    throw new GqlError('The server refused the token.', 'UNAUTHENTICATED');
  }
  let body;
  try {
    body = await response.json();
  } catch (err) {
    throw new GqlError(`Unexpected answer from the server (HTTP ${response.status}).`, 'INTERNAL');
  }
  return body;
}

/** POST one operation; returns data, or throws the first error. */
export async function gql(query, variables) {
  const body = await post(query, variables);
  if (body.errors && body.errors.length) {
    const first = body.errors[0];
    throw new GqlError(first.message, first.extensions && first.extensions.code, first.path);
  }
  return body.data;
}

/** The code of the error on `field`; a document-wide error (no path) counts for every field. */
export function codeOf(body, field) {
  const error = (body.errors || []).find((e) => !e.path || !e.path.length || e.path[0] === field);
  return error ? (error.extensions && error.extensions.code) || 'INTERNAL' : null;
}

/** What the token may do. A `me { name scopes }` query when the schema has one, else side-effect-free probes:
 * erasureReceipt of an id nobody uses (a read; FORBIDDEN without identity:erase), and unlinkIdentity with a key
 * no strategy has, which the server refuses as INVALID_INPUT before touching the database when the token may
 * write, and with FORBIDDEN when it may not. */
export async function probeScopes() {
  const me = await post('query InspectorWhoAmI { me { name scopes } }');
  if (!me.errors && me.data && me.data.me) {
    const scopes = new Set(me.data.me.scopes);
    let maxPerIdentity = 0;
    if (scopes.has(READ)) {
      const s = await gql('query InspectorStrategy { strategy { maxProfilesPerIdentity } }');
      maxPerIdentity = s.strategy.maxProfilesPerIdentity;
    }
    return { who: me.data.me.name, scopes, maxPerIdentity };
  }
  const scopes = new Set();
  const read = await post(
    `query InspectorProbe($id: ID!) {
      strategy { maxProfilesPerIdentity }
      receipt: erasureReceipt(requestId: $id) { requestId }
    }`,
    { id: PROBE_ID },
  );
  const readCode = codeOf(read, 'strategy');
  if (readCode === null) scopes.add(READ);
  else if (readCode !== 'FORBIDDEN') throw new GqlError(read.errors[0].message, readCode);
  if (codeOf(read, 'receipt') === null && read.data && 'receipt' in read.data) scopes.add(ERASE);
  const write = await post(
    `mutation InspectorProbe($id: ID!, $key: String!) {
      unlinkIdentity(profileId: $id, identity: {key: $key, value: "-"}) { id }
    }`,
    { id: PROBE_ID, key: PROBE_ID },
  );
  // Only the refusal of the resolver itself proves the scope: FORBIDDEN comes before it runs.
  if (['INVALID_INPUT', 'NOT_FOUND'].includes(codeOf(write, 'unlinkIdentity'))) scopes.add(WRITE);
  const maxPerIdentity = read.data && read.data.strategy ? read.data.strategy.maxProfilesPerIdentity : 0;
  return { who: '', scopes, maxPerIdentity };
}

export async function resolve(identities) {
  const data = await gql(
    `query InspectorResolve($identities: [IdentityInput!]!) {
      resolve(identities: $identities) {
        status assurance
        matchedOn { key value }
        rejected { key reason detail }
        ignored { key value reason }
        customer { ...InspectorCustomer }
        candidates { ...InspectorCustomer }
      }
    } ${CUSTOMER_FIELDS}`,
    { identities },
  );
  return data.resolve;
}

export async function fetchCustomer(profileId) {
  const data = await gql(
    `query InspectorCustomer($id: ID!) { customer(profileId: $id) { ...InspectorCustomer } } ${CUSTOMER_FIELDS}`,
    { id: profileId },
  );
  return data.customer;
}

/** The newest changes of the customer of a profile, newest first (identity:audit): ids, actors and times only. */
export async function fetchHistory(profileId, limit) {
  const data = await gql(
    `query InspectorHistory($id: ID!, $limit: Int) {
      customerHistory(profileId: $id, limit: $limit) {
        customerId
        events { cursor type profileIds customerBefore customerAfter actor requestId reason at }
      }
    }`,
    { id: profileId, limit: limit || 50 },
  );
  return data.customerHistory;
}
