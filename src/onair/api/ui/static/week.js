// The week view: a grid by day (columns) and hour (rows), like a station's programme
// calendar, from the simulated week (`/ui/api/week`); live from the event stream.
"use strict";

(() => {
  const { $, el } = Onair;
  let following = false;

  function dayKey(date) {
    return `${date.getFullYear()}-${date.getMonth()}-${date.getDate()}`;
  }

  function grid(data) {
    const first = new Date(data.now);
    first.setHours(0, 0, 0, 0);
    const days = [...Array(8).keys()].map((i) => new Date(first.getFullYear(), first.getMonth(), first.getDate() + i));
    const cells = new Map();
    for (const run of data.runs) {
      const at = new Date(run.at);
      const key = `${dayKey(at)}|${at.getHours()}`;
      if (!cells.has(key)) cells.set(key, []);
      cells.get(key).push(run);
    }
    const head = el("tr", {}, el("th", { text: "" }),
      ...days.map((d) => el("th", { text: d.toLocaleDateString(undefined, { weekday: "short", month: "short", day: "numeric" }) })));
    const rows = [...Array(24).keys()].map((hour) =>
      el("tr", {}, el("th", { class: "hour", text: `${String(hour).padStart(2, "0")}:00` }),
        ...days.map((d) => {
          const runs = cells.get(`${dayKey(d)}|${hour}`) || [];
          return el("td", { "data-day": d.toISOString().slice(0, 10), "data-hour": String(hour) },
            ...runs.map((run) => el("a", {
              class: `chip op-${run.operation} ${run.outcome}`,
              href: `/ui/tasks/${run.id}`,
              title: `${run.name} · ${run.local}${run.note ? ` · ${run.note}` : ""}`,
              "data-task": run.id,
              "data-outcome": run.outcome,
              text: `${new Date(run.at).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" })} ${run.name}`,
            })));
        })));
    $("week").replaceChildren(el("thead", {}, head), el("tbody", {}, ...rows));
    $("week-truncated").hidden = !data.truncated;
    $("conflicts").replaceChildren(...data.conflicts.map((c) =>
      el("li", { "data-resource": c.resource },
        el("time", { datetime: c.at, text: Onair.when(c.at) }), " ",
        el("a", { href: `/ui/tasks/${c.first.id}`, text: c.first.name }), " and ",
        el("a", { href: `/ui/tasks/${c.second.id}`, text: c.second.name }), ` both hold ${c.resource}`)));
    $("conflicts-none").hidden = data.conflicts.length > 0;
  }

  async function load() {
    let data;
    try {
      data = await Onair.json("/ui/api/week");
    } catch (error) {
      if (!(error instanceof Onair.Refused)) console.error(error);
      return;
    }
    Onair.showWho(data.viewer);
    grid(data);
    document.body.dataset.loaded = String(Date.now());
    if (!following) {
      following = true;
      Onair.follow(data.viewer.events, refresh, refresh);
    }
  }

  const refresh = Onair.debounce(load, 300);
  Onair.start(load);
})();
