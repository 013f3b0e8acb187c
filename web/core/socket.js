// The one WebSocket to the server (opened and reopened by the session in app.js).

export const link = { ws: null, node: null, redirects: 0 };

/** Most `redirect`s followed in a row before giving up (a cluster answers with one). */
export const MAX_REDIRECTS = 3;

/**
 * The WebSocket URL of the node this page talks to: the one a `redirect` named (a cluster's
 * owner of the room), else this page's own server.
 */
export function wsUrl() {
  if (link.node) return `${link.node.protocol === 'https:' ? 'wss:' : 'ws:'}//${link.node.host}/ws`;
  return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/ws`;
}

/** The node a `redirect` names, or null when `url` is not an http(s) base URL. */
export function redirectTarget(url) {
  try {
    const u = new URL(String(url));
    return u.protocol === 'http:' || u.protocol === 'https:' ? u : null;
  } catch {
    return null;
  }
}

/** Send one message; false when the socket is not open. */
export function send(msg) {
  const ws = link.ws;
  if (ws && ws.readyState === WebSocket.OPEN) {
    ws.send(JSON.stringify(msg));
    return true;
  }
  return false;
}
