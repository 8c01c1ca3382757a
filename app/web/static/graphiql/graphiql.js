// GraphiQL for idgraph. React, ReactDOM and GraphiQL are loaded before this file from /graphiql/vendor/, served by
// idgraph from its npm packages: the page works with no internet.
//
// Queries, variables and headers hold personal data and the bearer token, so nothing is kept in the browser:
// GraphiQL's tabs, history and settings live in this page's memory and end with it, headers are never persisted,
// and nothing is copied into the URL.
/* global React, ReactDOM, GraphiQL */
(() => {
  "use strict";

  const root = document.getElementById("graphiql");
  if (typeof React === "undefined" || typeof ReactDOM === "undefined" || typeof GraphiQL === "undefined") {
    root.textContent =
      "GraphiQL's browser files did not load: run `make install` (it runs `npm ci` in web/), then reload this page.";
    root.dataset.state = "failed";
    return;
  }

  const ENDPOINT = "/graphql";
  const TOKEN_HINT = "<paste your token>";
  const DEFAULT_HEADERS = JSON.stringify({ Authorization: `Bearer ${TOKEN_HINT}` }, null, 2);
  const DEFAULT_QUERY = `# Paste your API token into the Headers tab below (\`make run\` prints a dev token),
# then run this query with Ctrl-Enter or the play button.
# Nothing you type here is stored by the browser: reloading the page forgets it all.

{
  me {
    name
    scopes
  }
}
`;
  const NEW_TOKEN_DELAY_MS = 400; // typing a token by hand: load the schema once it stops changing

  /** The Storage interface, kept in memory: GraphiQL's state never reaches localStorage. */
  function memoryStorage() {
    const items = new Map();
    return {
      getItem: (key) => (items.has(key) ? items.get(key) : null),
      setItem: (key, value) => void items.set(key, String(value)),
      removeItem: (key) => void items.delete(key),
      clear: () => items.clear(),
      key: (index) => [...items.keys()][index] ?? null,
      get length() {
        return items.size;
      },
    };
  }

  /** The Authorization header of a header object (any case), or "". */
  function authorization(headers) {
    for (const [name, value] of Object.entries(headers ?? {})) {
      if (name.toLowerCase() === "authorization") return String(value);
    }
    return "";
  }

  /** The Authorization header of the Headers tab's text, or "" when it is not a JSON object (yet). */
  function authorizationIn(text) {
    try {
      const headers = JSON.parse(text || "{}");
      return headers && typeof headers === "object" ? authorization(headers) : "";
    } catch {
      return "";
    }
  }

  /** POST to /graphql as any client does. A request still carrying the hint is answered here, not sent. */
  async function send(params, options) {
    const headers = options?.headers ?? {};
    if (authorization(headers).includes(TOKEN_HINT)) {
      return { errors: [{ message: 'Paste your API token into the Headers tab: {"Authorization": "Bearer <token>"}' }] };
    }
    const response = await fetch(ENDPOINT, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json", ...headers },
      body: JSON.stringify(params),
      credentials: "omit",
      cache: "no-store",
    });
    const text = await response.text();
    try {
      return JSON.parse(text);
    } catch {
      return { errors: [{ message: `HTTP ${response.status}: ${text.slice(0, 500)}` }] };
    }
  }

  const storage = memoryStorage();

  function App() {
    // GraphiQL loads the schema again whenever its fetcher changes: a new fetcher for each new token does that, so
    // completion and the docs work as soon as a token is pasted.
    const [token, setToken] = React.useState("");
    const timer = React.useRef(0);
    const fetcher = React.useMemo(() => (params, options) => send(params, options), [token]);
    const onEditHeaders = React.useCallback((text) => {
      window.clearTimeout(timer.current);
      timer.current = window.setTimeout(() => setToken(authorizationIn(text)), NEW_TOKEN_DELAY_MS);
    }, []);
    return React.createElement(GraphiQL, {
      fetcher,
      storage,
      shouldPersistHeaders: false,
      showPersistHeadersSettings: false,
      defaultHeaders: DEFAULT_HEADERS,
      defaultQuery: DEFAULT_QUERY,
      defaultEditorToolsVisibility: "headers",
      onEditHeaders,
    });
  }

  root.dataset.state = "ready";
  ReactDOM.createRoot(root).render(React.createElement(App));
})();
