// The live feed: one WebSocket that reconnects by itself, with jittered exponential backoff.

const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 15000;
const PING_EVERY_MS = 25000;

// Close codes after which reconnecting cannot help until the user signs in again.
const SIGNED_OUT = 1008;

export class LiveFeed {
  /**
   * @param {object} handlers
   * @param {(state: "connecting"|"open"|"closed") => void} handlers.onState
   * @param {(message: object) => void} handlers.onMessage  every server message (hello, event, …)
   * @param {(code: number, reason: string) => void} handlers.onEnded  a close that stops retrying
   * @param {string} [handlers.path]  the feed to open (a wall screen opens its wall's feed)
   */
  constructor({ onState, onMessage, onEnded, path = "/api/v1/live" }) {
    this.path = path;
    this.onState = onState;
    this.onMessage = onMessage;
    this.onEnded = onEnded;
    this.socket = null;
    this.failures = 0;
    this.timer = null;
    this.pinger = null;
    this.stopped = true;
  }

  start() {
    this.stopped = false;
    this.failures = 0;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.pinger);
    if (this.socket) this.socket.close(1000, "bye");
    this.socket = null;
  }

  /** Send a client message ({"type": "ping"} or {"type": "subscribe", "topics": [...]}). */
  send(message) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  connect() {
    if (this.stopped) return;
    this.onState("connecting");
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}${this.path}`);
    this.socket = socket;
    socket.addEventListener("message", (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message.type === "hello") {
        this.failures = 0;
        this.onState("open");
      }
      this.onMessage(message);
    });
    socket.addEventListener("open", () => {
      clearInterval(this.pinger);
      this.pinger = setInterval(() => this.send({ type: "ping" }), PING_EVERY_MS);
    });
    socket.addEventListener("close", (event) => {
      clearInterval(this.pinger);
      if (this.socket !== socket) return;
      this.socket = null;
      this.onState("closed");
      if (this.stopped) return;
      if (event.code === SIGNED_OUT) {
        this.stopped = true;
        this.onEnded(event.code, event.reason);
        return;
      }
      this.retry();
    });
  }

  retry() {
    const base = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** this.failures);
    const delay = base * (0.8 + 0.4 * Math.random());
    this.failures += 1;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }
}
