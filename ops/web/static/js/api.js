// Calls to the hub's JSON API. Every error body is {"error": {"code", "message", "field"}}.

export class ApiError extends Error {
  constructor(status, code, message, field = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

let unauthorized = null;
let generation = 0;

/** A call the hub has not answered by then has failed: nothing waits on the network forever. */
const TIMEOUT_MS = 30000;
const timedOut = () => new ApiError(0, "timeout", `no answer from the hub in ${TIMEOUT_MS / 1000} s`);

/** The session began or ended on purpose: a 401 to a call made before means nothing now. */
export function sessionChanged() {
  generation += 1;
}

/** Call back when a call answers 401 (the session ended), e.g. to keep drafts and sign in. */
export function onUnauthorized(handler) {
  unauthorized = handler;
}

/** Call the API; resolve with the parsed body (null for 204), reject with an ApiError. */
export async function api(method, path, body = undefined) {
  const init = {
    method,
    credentials: "same-origin",
    headers: { Accept: "application/json" },
    signal: AbortSignal.timeout(TIMEOUT_MS),
  };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const startedIn = generation;
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error.name === "TimeoutError") throw timedOut();
    throw new ApiError(0, "network_error", String(error));
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch (error) {
    if (error.name === "TimeoutError") throw timedOut();
    // Not JSON: only possible from something in front of the hub.
  }
  if (!response.ok) {
    const error = data?.error ?? {};
    const current = startedIn === generation;
    if (response.status === 401 && unauthorized && current && !path.startsWith("/api/v1/auth/")) {
      unauthorized(error.message ?? "");
    }
    throw new ApiError(
      response.status,
      error.code ?? "http_error",
      error.message ?? response.statusText,
      error.field ?? null,
    );
  }
  return data;
}

export const login = (username, password) =>
  api("POST", "/api/v1/auth/login", { username, password });
export const logout = () => api("POST", "/api/v1/auth/logout");
export const me = () => api("GET", "/api/v1/auth/me");
export const hubStatus = () => api("GET", "/api/v1/hub/status");

/** GET a list route that another part of the hub may not serve yet: null when it is absent. */
export async function optional(path) {
  try {
    return await api("GET", path);
  } catch (error) {
    if (error.status === 404 || error.status === 405) return null;
    throw error;
  }
}
