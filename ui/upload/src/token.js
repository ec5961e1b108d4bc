// Where the upload token comes from: the URL fragment (never sent to a server), or a
// postMessage from the embedding application; kept in sessionStorage so a reload of this
// tab resumes with the same token (it is short-lived, and only this origin can read it).

const STORED = "filegate:token";
export const TOKEN_MESSAGE = "filegate:token";

/** The token from "#token=...", removed from the address bar (and history) at once. */
export function tokenFromFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("token");
  if (token === null) return null;
  params.delete("token");
  const rest = params.toString();
  history.replaceState(null, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
  return token.trim() || null;
}

export function rememberToken(token) {
  try {
    sessionStorage.setItem(STORED, token);
  } catch {
    // Storage can be off (private modes, blocked third-party storage): the page still works.
  }
}

export function storedToken() {
  try {
    return sessionStorage.getItem(STORED);
  } catch {
    return null;
  }
}

/**
 * Accept tokens posted by the window that embeds this page, from an allowed origin only.
 * Any other sender (another frame, a popup, an origin not configured) is ignored.
 */
export function listenForToken(allowedOrigins, onToken) {
  window.addEventListener("message", (event) => {
    if (event.source !== window.parent || window.parent === window) return;
    if (!allowedOrigins.includes(event.origin)) return;
    const data = event.data;
    if (data && data.type === TOKEN_MESSAGE && typeof data.token === "string" && data.token) {
      onToken(data.token);
    }
  });
}

/** Tell the embedding window (if one of the allowed origins) what happened. */
export function tellParent(allowedOrigins, message) {
  if (window.parent === window) return;
  for (const origin of allowedOrigins) {
    // Delivered only if the parent has this origin; the others are dropped by the browser.
    window.parent.postMessage(message, origin);
  }
}
