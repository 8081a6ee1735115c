// The one way the timeline asks the server: every answer's status is checked, and an error
// answer becomes an `ApiError` carrying the server's one line, never data.
import { state } from "./timeline-state.js";

/** The dump (or dumps opened together) this page shows, as its address names it. */
export const dumpId = location.pathname.split("/").pop();

/** The address of `path` under this dump's API, with `params` as its query. */
export function apiUrl(path, params) {
  const q = params ? "?" + new URLSearchParams(params).toString() : "";
  return "/api/dumps/" + encodeURIComponent(dumpId) + path + q;
}

/** A request the server refused or could not answer: its status (0 when it never
 * answered) and its one-line reason. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** The JSON answer to `path`; throws `ApiError` for anything but a 2xx JSON answer. */
export async function getJSON(path, params) {
  let r;
  try {
    r = await fetch(apiUrl(path, params));
  } catch (e) {
    throw new ApiError(0, "the viewer did not answer: " + e.message);
  }
  let body = null;
  try {
    body = await r.json();
  } catch {
    body = null;
  }
  if (!r.ok) throw new ApiError(r.status, (body && body.error) || r.statusText || "error " + r.status);
  if (body == null) throw new ApiError(r.status, "the answer was not JSON");
  return body;
}

/** Notes an API error the page showed (the browser test asks for them). */
export function noteProblem(what, e) {
  state.problems.push({ what, status: e.status ?? null, message: e.message });
}
