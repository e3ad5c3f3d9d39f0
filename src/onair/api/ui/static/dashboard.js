// The dashboard: the next 24 hours, what runs now, recent failures; live from the event stream.
"use strict";

(() => {
  const { $, el } = Onair;
  const GROUPS = ["Broadcasts", "Sounds", "Playlists", "System"];
  let following = false;
  let running = [];
  let skew = 0; // server clock minus this browser's, so elapsed times are the server's

  function timeline(data) {
    const now = Date.parse(data.now), span = Date.parse(data.horizon) - now;
    const box = $("timeline");
    box.replaceChildren();
    const axis = el("div", { class: "axis" }, el("span", { class: "label" }));
    const track = el("div", { class: "track" });
    for (let h = 0; h <= 24; h += 6) {
      const at = new Date(now + h * 3600e3);
      track.append(el("span", { class: "tick", style: `left:${(h / 24) * 100}%`, text: h === 0 ? "now" : at.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", hour12: false }) }));
    }
    axis.append(track);
    box.append(axis);
    for (const group of GROUPS) {
      const items = data.timeline.filter((i) => i.group === group);
      const row = el("div", { class: "row", "data-group": group }, el("span", { class: "label", text: `${group} (${items.length})` }));
      const lane = el("div", { class: "track" });
      for (const item of items) {
        const left = Math.min(100, Math.max(0, ((Date.parse(item.at) - now) / span) * 100));
        lane.append(el("a", { class: `mark op-${item.operation}`, href: `/ui/tasks/${item.id}`, style: `left:${left}%`, title: `${item.name} · ${Onair.when(item.at)}`, "data-task": item.id }));
      }
      row.append(lane);
      box.append(row);
    }
    const list = $("upcoming");
    list.replaceChildren(...data.timeline.slice(0, 50).map((item) =>
      el("li", { "data-task": item.id },
        el("time", { datetime: item.at, text: Onair.when(item.at) }), " ",
        el("a", { href: `/ui/tasks/${item.id}`, text: item.name }), " ",
        el("span", { class: "tag", text: item.operation }))));
    $("truncated").hidden = !data.truncated;
  }

  function runningNow(data) {
    running = data.running;
    $("running").replaceChildren(...running.map((task) => {
      const button = el("button", { class: "cancel danger", "data-task": task.id, text: "Cancel" });
      button.addEventListener("click", async () => {
        button.disabled = true;
        await Onair.cancel(data.viewer.cancel, task.id);
        refresh();
      });
      return el("tr", { "data-task": task.id },
        el("td", {}, el("a", { href: `/ui/tasks/${task.id}`, text: task.name })),
        el("td", { text: task.operation }),
        el("td", {}, el("time", { datetime: task.started, text: Onair.when(task.started) })),
        el("td", { class: "elapsed", "data-started": task.started }),
        el("td", {}, button));
    }));
    $("running-none").hidden = running.length > 0;
    tick();
  }

  function failures(data) {
    $("failures").replaceChildren(...data.failures.map((task) =>
      el("li", { "data-task": task.id },
        el("a", { href: `/ui/tasks/${task.id}`, text: task.name }), " ",
        el("span", { class: "tag", text: task.operation }), " ",
        el("time", { datetime: task.at, text: Onair.when(task.at) }),
        el("pre", { class: "error", text: task.error || "" }))));
    $("failures-none").hidden = data.failures.length > 0;
  }

  function aired(data) {
    $("aired").replaceChildren(...data.aired.map((item) => {
      const late = item.lateness_seconds;
      return el("tr", { "data-item": item.id, "data-end": item.end },
        el("td", {}, el("a", { href: `/ui/tasks/${item.task_id}`, text: item.name }), " ",
          el("span", { class: "tag", text: item.kind })),
        el("td", {}, el("time", { datetime: item.planned_at, text: Onair.when(item.planned_at) })),
        el("td", {}, item.first_audio_at
          ? el("time", { datetime: item.first_audio_at, text: Onair.when(item.first_audio_at) })
          : "—"),
        el("td", { class: "lateness", text: late === null ? "—" : `${(late * 1000).toFixed(0)} ms` }),
        el("td", { text: `${item.seconds_aired.toFixed(1)} s` }),
        el("td", { text: item.error ? `${item.end}: ${item.error}` : item.end }));
    }));
    $("aired-none").hidden = data.aired.length > 0;
  }

  function readiness(data) {
    $("readiness").replaceChildren(...data.readiness.map((item) =>
      el("li", { "data-task": item.task_id, "data-state": item.state },
        el("a", { href: `/ui/tasks/${item.task_id}`, text: `${item.event} at ${item.start}` }), " ",
        el("span", { class: "tag", text: item.state.replace("_", " ") }),
        ...item.reasons.map((reason) => el("pre", { class: "error", text: reason.message })))));
    $("readiness-none").hidden = data.readiness.length > 0;
  }

  function tick() {
    const now = Date.now() + skew;
    for (const cell of document.querySelectorAll("td.elapsed")) {
      cell.textContent = Onair.elapsed((now - Date.parse(cell.dataset.started)) / 1000);
    }
  }

  async function load() {
    let data;
    try {
      data = await Onair.json("/ui/api/overview");
    } catch (error) {
      if (!(error instanceof Onair.Refused)) console.error(error);
      return;
    }
    skew = Date.parse(data.now) - Date.now();
    Onair.showWho(data.viewer);
    timeline(data);
    runningNow(data);
    failures(data);
    aired(data);
    readiness(data);
    document.body.dataset.loaded = String(Date.now());
    if (!following) {
      following = true;
      Onair.follow(data.viewer.events, refresh, refresh);
    }
  }

  const refresh = Onair.debounce(load, 150);
  setInterval(tick, 1000);
  Onair.start(load);
})();
