// One task: its facts, rule, next instants and run history; live from the event stream.
"use strict";

(() => {
  const { $, el } = Onair;
  const id = $("task").dataset.task;
  let following = false;
  let viewer = null;

  // Parameters in words: a sound or playlist by its name (its id on hover), the rest as
  // `key: value` pairs.
  function parameters(task) {
    const shown = { ...task.operation_parameters };
    const media = task.media;
    const parts = [];
    if (media) {
      delete shown[`${media.kind}_id`];
      parts.push(`${media.kind} ${media.name === null ? "(deleted)" : `“${media.name}”`}`);
    }
    for (const [key, value] of Object.entries(shown)) parts.push(`${key}: ${JSON.stringify(value)}`);
    return parts.join(" · ") || "—";
  }

  function facts(task) {
    const rows = [
      ["Status", task.status], ["Operation", task.operation], ["Owner", task.owner || "system"],
      ["Created", Onair.when(task.created), Onair.utc(task.created)],
      ["Next", Onair.when(task.next) || "—", Onair.utc(task.next)],
      ["Latest start", Onair.when(task.started) || "—", Onair.utc(task.started)], ["Runs", String(task.runs)],
      ["Parameters", parameters(task)],
    ];
    if (task.error) rows.push(["Error", task.error]);
    $("facts").replaceChildren(...rows.flatMap(([k, v, utc]) => [el("dt", { text: k }), el("dd", { text: v, title: utc || null, "data-fact": k.toLowerCase() })]));
    if (task.media) $("facts").querySelector("[data-fact=parameters]").title = `${task.media.kind} ${task.media.id}`;
  }

  // A task that is not there (removed, or not the viewer's) shows that alone.
  function missing() {
    $("task-missing").hidden = false;
    $("task-name").textContent = "No such task";
    for (const section of document.querySelectorAll("section.detail")) section.hidden = true;
    $("facts").replaceChildren();
    $("cancel").hidden = true;
    document.body.dataset.loaded = String(Date.now());
  }

  async function load() {
    let data;
    try {
      data = await Onair.json(`/ui/api/tasks/${id}`);
    } catch (error) {
      if (error.status === 404) missing();
      else if (!(error instanceof Onair.Refused)) console.error(error);
      return;
    }
    viewer = data.viewer;
    $("task-missing").hidden = true;
    for (const section of document.querySelectorAll("section.detail")) section.hidden = false;
    Onair.showWho(viewer);
    const task = data.task;
    $("task-name").textContent = `${task.name} · ${task.status}`;
    facts(task);
    $("cancel").hidden = !task.cancellable;
    const pause = task.pause;
    $("paused").hidden = !pause;
    $("paused").textContent = pause ? `Paused by ${pause.by} since ${Onair.when(pause.at)}${pause.note ? `: ${pause.note}` : ""}` : "";
    $("pausing").hidden = !task.cancellable || Boolean(pause);
    $("resume").hidden = !task.cancellable || !pause;
    $("rule-words").textContent = task.description;
    $("rule").textContent = JSON.stringify(task.condition, null, 2);
    const series = task.condition.type !== "at" && task.condition.type !== "now";
    $("next").replaceChildren(...data.next.map((i) =>
      el("tr", { "data-at": i.utc }, el("td", { text: i.utc.replace("+00:00", "Z") }), el("td", { text: i.local }), el("td", { text: i.note || "" }),
        el("td", {}, series && task.cancellable && !(i.note || "").startsWith("moved from") ? el("button", { class: "skip", "data-at": i.utc, text: "Skip" }) : ""))));
    const changes = [
      ...task.changes.skipped.map((at) => `skipped ${Onair.when(at)}`),
      ...task.changes.moved.map((m) => `moved ${Onair.when(m.at)} → ${Onair.when(m.to)}`),
    ];
    $("changes").replaceChildren(...changes.map((text) => el("li", { text })));
    $("changes-none").hidden = changes.length > 0;
    $("next-none").hidden = data.next.length > 0;
    $("runs").replaceChildren(...data.runs.map((r) =>
      el("tr", { "data-run": r.id },
        el("td", {}, Onair.time(r.due)), el("td", {}, r.started ? Onair.time(r.started) : ""),
        el("td", { class: "lateness", text: Onair.lateness(r.lateness) }),
        el("td", { text: r.outcome || "running" }), el("td", { text: r.node }),
        el("td", { class: "error", text: r.error || "" }))));
    $("runs-none").hidden = data.runs.length > 0;
    document.body.dataset.loaded = String(Date.now());
    if (!following) {
      following = true;
      Onair.follow(`${viewer.events}?task=${id}`, refresh, refresh);
    }
  }

  const refresh = Onair.debounce(load, 150);
  $("next").addEventListener("click", async (event) => {
    const button = event.target.closest("button.skip");
    if (!button) return;
    button.disabled = true;
    await Onair.post(viewer.skip, id, { at: button.dataset.at }, "Skip");
    refresh();
  });
  $("pause").addEventListener("click", async () => {
    const note = $("pause-note").value.trim();
    await Onair.post(viewer.pause, id, note ? { note } : {}, "Pause");
    $("pause-note").value = "";
    refresh();
  });
  $("resume").addEventListener("click", async () => {
    await Onair.post(viewer.resume, id, undefined, "Resume");
    refresh();
  });
  $("cancel").addEventListener("click", async () => {
    $("cancel").disabled = true;
    await Onair.cancel(viewer.cancel, id);
    $("cancel").disabled = false;
    refresh();
  });
  Onair.start(load);
})();
