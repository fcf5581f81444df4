// The events strip: the latest live events, newest first, bounded.

const MAX_EVENTS = 50;

export class EventStrip {
  constructor(list, empty) {
    this.list = list;
    this.empty = empty;
  }

  add(event) {
    const item = document.createElement("li");
    const time = document.createElement("time");
    time.dateTime = event.time;
    time.textContent = new Date(event.time).toLocaleTimeString();
    const topic = document.createElement("span");
    topic.className = "topic";
    topic.textContent = event.key ? `${event.topic} · ${event.key}` : event.topic;
    const summary = document.createElement("span");
    summary.className = "muted";
    summary.textContent = summarize(event.payload);
    item.append(time, topic, summary);
    this.list.prepend(item);
    while (this.list.childElementCount > MAX_EVENTS) this.list.lastElementChild.remove();
    this.empty.hidden = true;
  }

  clear() {
    this.list.replaceChildren();
    this.empty.hidden = false;
  }
}

function summarize(payload) {
  if (payload === null || typeof payload !== "object") return String(payload ?? "");
  const text = Object.entries(payload)
    .filter(([, value]) => value !== null && value !== "" && typeof value !== "object")
    .map(([key, value]) => `${key}=${value}`)
    .join(" ");
  return text.length > 160 ? `${text.slice(0, 157)}…` : text;
}
