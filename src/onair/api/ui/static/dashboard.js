// The dashboard: the next 24 hours, what runs now, recent failures; live from the event stream.
"use strict";

(() => {
  const { $, el } = Onair;
  const GROUPS = ["Broadcasts", "Sounds", "Playlists", "System"];
  let following = false;
  let running = [];
  let skew = 0; // server clock minus this browser's, so elapsed times are the server's
  let last = null; // the latest overview, drawn again when the filter or the width changes
  const MARK = 20; // px a timeline mark needs; closer marks are drawn as one, with a count

  function owner(item) { return item.owner || "system"; }

  // The search box (in the name) and the owner filter, applied to every section.
  function visible(item) {
    const text = $("search").value.trim().toLowerCase();
    const who = $("owner").value;
    return (!text || item.name.toLowerCase().includes(text)) && (!who || owner(item) === who);
  }

  function owners(data) {
    const select = $("owner"), chosen = select.value;
    const found = new Set([...data.timeline, ...data.running, ...data.failures].map(owner));
    if (chosen) found.add(chosen);
    select.replaceChildren(el("option", { value: "", text: "everyone" }),
      ...[...found].sort().map((o) => el("option", { value: o, text: o })));
    select.value = chosen;
    select.parentElement.hidden = data.viewer.scope === "own"; // a user sees only their own
  }

  // Marks of one lane, left to right, merged when closer than MARK px on this screen.
  function clusters(items, now, span, width) {
    const placed = items
      .map((item) => ({ item, left: Math.min(100, Math.max(0, ((Date.parse(item.at) - now) / span) * 100)) }))
      .sort((a, b) => a.left - b.left);
    const gap = width > 0 ? (MARK / width) * 100 : 0;
    const groups = [];
    for (const p of placed) {
      const current = groups[groups.length - 1];
      if (current && p.left - current.left < gap) current.items.push(p.item);
      else groups.push({ left: p.left, items: [p.item] });
    }
    return groups;
  }

  function timeline(data) {
    const now = Date.parse(data.now), span = Date.parse(data.horizon) - now;
    const shown = data.timeline.filter(visible);
    const box = $("timeline");
    box.replaceChildren();
    const axis = el("div", { class: "axis" }, el("span", { class: "label" }));
    const track = el("div", { class: "track" });
    for (let h = 0; h <= 24; h += 6) {
      const at = new Date(now + h * 3600e3);
      const tick = el("span", { class: "tick", text: h === 0 ? "now" : Onair.hourOf(at) });
      tick.style.left = `${(h / 24) * 100}%`; // through CSSOM: the page's CSP refuses style attributes
      track.append(tick);
    }
    axis.append(track);
    box.append(axis);
    for (const group of GROUPS) {
      const items = shown.filter((i) => i.group === group);
      const row = el("div", { class: "row", "data-group": group }, el("span", { class: "label", text: `${group} (${items.length})` }));
      const lane = el("div", { class: "track" });
      row.append(lane);
      box.append(row);
      for (const { left, items: together } of clusters(items, now, span, lane.clientWidth)) {
        const [first] = together;
        const names = together.slice(0, 10).map((i) => `${i.name} · ${Onair.when(i.at)}`);
        if (together.length > 10) names.push(`and ${together.length - 10} more`);
        const mark = el("a", {
          class: together.length > 1 ? "mark cluster" : `mark op-${first.operation}`,
          href: `/ui/tasks/${first.id}`, title: names.join("\n"), "data-task": first.id,
          "data-tasks": [...new Set(together.map((i) => i.id))].join(" "),
          "data-count": together.length > 1 ? String(together.length) : null,
          text: together.length > 1 ? String(together.length) : null,
        });
        mark.style.left = `${left}%`;
        lane.append(mark);
      }
    }
    const list = $("upcoming");
    list.replaceChildren(...shown.slice(0, 50).map((item) =>
      el("li", { "data-task": item.id, "data-owner": owner(item) },
        Onair.time(item.at), " ",
        el("a", { href: `/ui/tasks/${item.id}`, text: item.name }), " ",
        el("span", { class: "tag", text: item.operation }), " ",
        el("span", { class: "tag owner", text: owner(item) }),
        item.retry ? el("span", { class: "tag retry", text: `retry, attempt ${item.retry}` }) : "",
        item.paused ? el("span", { class: "tag paused", text: "paused" }) : "")));
    $("truncated").hidden = !data.truncated;
  }

  function runningNow(data) {
    running = data.running.filter(visible);
    $("running").replaceChildren(...running.map((task) => {
      const button = el("button", { class: "cancel danger", "data-task": task.id, text: "Cancel" });
      button.addEventListener("click", async () => {
        button.disabled = true;
        await Onair.cancel(data.viewer.cancel, task.id);
        refresh();
      });
      return el("tr", { "data-task": task.id },
        el("td", {}, el("a", { href: `/ui/tasks/${task.id}`, text: task.name })),
        el("td", { class: "owner", text: owner(task) }),
        el("td", { text: task.operation }),
        el("td", {}, Onair.time(task.started)),
        el("td", { class: "elapsed", "data-started": task.started }),
        el("td", {}, button));
    }));
    $("running-none").hidden = running.length > 0;
    tick();
  }

  function failures(data) {
    const shown = data.failures.filter(visible);
    $("failures").replaceChildren(...shown.map((task) =>
      el("li", { "data-task": task.id, "data-owner": owner(task) },
        el("a", { href: `/ui/tasks/${task.id}`, text: task.name }), " ",
        el("span", { class: "tag", text: task.operation }), " ",
        el("span", { class: "tag owner", text: owner(task) }), " ",
        Onair.time(task.at),
        el("pre", { class: "error", text: task.error || "" }))));
    $("failures-none").hidden = shown.length > 0;
  }

  function draw() {
    if (last === null) return;
    timeline(last);
    runningNow(last);
    failures(last);
    const total = last.timeline.length + last.running.length + last.failures.length;
    const filtered = $("search").value.trim() || $("owner").value;
    const count = last.timeline.filter(visible).length + running.length + last.failures.filter(visible).length;
    $("shown").textContent = filtered ? `${count} of ${total} shown` : "";
  }

  function aired(data) {
    $("aired").replaceChildren(...data.aired.map((item) => {
      const late = item.lateness_seconds;
      return el("tr", { "data-item": item.id, "data-end": item.end },
        el("td", {}, el("a", { href: `/ui/tasks/${item.task_id}`, text: item.name }), " ",
          el("span", { class: "tag", text: item.kind })),
        el("td", {}, Onair.time(item.planned_at)),
        el("td", {}, item.first_audio_at
          ? Onair.time(item.first_audio_at)
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
    last = data;
    owners(data);
    draw();
    aired(data);
    readiness(data);
    document.body.dataset.loaded = String(Date.now());
    if (!following) {
      following = true;
      Onair.follow(data.viewer.events, refresh, refresh);
    }
  }

  const refresh = Onair.debounce(load, 150);
  $("search").addEventListener("input", draw);
  $("owner").addEventListener("change", draw);
  $("filters").addEventListener("submit", (e) => e.preventDefault());
  window.addEventListener("resize", Onair.debounce(draw, 100));
  setInterval(tick, 1000);
  Onair.start(load);
})();
