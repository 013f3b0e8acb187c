// The one WebSocket to the server (opened and reopened by the session in app.js).

export const link = { ws: null };

/** Send one message; false when the socket is not open. */
export function send(msg) {
  const ws = link.ws;
  if (ws && ws.readyState === WebSocket.OPEN) {
    ws.send(JSON.stringify(msg));
    return true;
  }
  return false;
}
