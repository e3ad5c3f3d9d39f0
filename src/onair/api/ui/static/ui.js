// onair dashboard: what every page shares. Plain JavaScript, no build step.
// The token (when the service asks for one) lives in sessionStorage and goes out as a Bearer
// header; the event stream is read with fetch() rather than EventSource, because EventSource
// cannot send that header.
"use strict";

const Onair = (() => {
  const KEY = "onair-token";
  const protectedService = document.body.dataset.protected === "true";
  const $ = (id) => document.getElementById(id);

  function token() { return sessionStorage.getItem(KEY); }

  function headers() {
    const t = token();
    return t ? { Authorization: `Bearer ${t}` } : {};
  }

  class Refused extends Error {}

  function askForToken(message) {
    $("login").hidden = false;
    $("main").hidden = true;
    $("login-error").textContent = message || "";
    $("signout").hidden = !token();
  }

  async function api(path, options = {}) {
    const response = await fetch(path, { ...options, headers: { ...headers(), ...(options.headers || {}) } });
    if (response.status === 401) {
      askForToken(token() ? "This token was refused." : "");
      throw new Refused(await response.text());
    }
    return response;
  }

  async function json(path) {
    const response = await api(path);
    if (!response.ok) {
      const error = new Error(`${path}: ${response.status}`);
      error.status = response.status;
      throw error;
    }
    return response.json();
  }

  function setLive(on) {
    const live = $("live");
    live.textContent = on ? "live" : "offline";
    live.classList.toggle("on", on);
  }

  // Follows a Server-Sent Events stream for as long as the page lives: `onEvent(event)` for
  // each event, `onOpen()` at each (re)connection, when the page should reload its state.
  async function follow(url, onEvent, onOpen) {
    let last = null;
    for (;;) {
      try {
        const extra = last === null ? {} : { "Last-Event-ID": String(last) };
        const response = await fetch(url, { headers: { ...headers(), ...extra } });
        if (response.status === 401 || response.status === 403) {
          askForToken("This token may not follow events.");
          return;
        }
        if (!response.ok || !response.body) throw new Error(`events: ${response.status}`);
        setLive(true);
        onOpen();
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            let data = "";
            for (const line of block.split("\n")) {
              if (line.startsWith("id:")) last = Number(line.slice(3).trim());
              else if (line.startsWith("data:")) data += line.slice(5).trim();
            }
            if (data) onEvent(JSON.parse(data));
          }
        }
      } catch (error) {
        console.warn("event stream:", error);
      }
      setLive(false);
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }

  // Calls `fn` once, `ms` after the last of a burst of calls.
  function debounce(fn, ms) {
    let timer = null;
    return () => { clearTimeout(timer); timer = setTimeout(fn, ms); };
  }

  async function cancel(template, id) {
    const response = await api(template.replace("{id}", id), { method: "DELETE" });
    if (!response.ok) alert(`Cancel refused (${response.status}): ${await response.text()}`);
  }

  // POSTs `body` (JSON) to `template` with the task's id; refusals are shown.
  async function post(template, id, body, what) {
    const init = { method: "POST" };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { "content-type": "application/json" };
    }
    const response = await api(template.replace("{id}", id), init);
    if (!response.ok) alert(`${what} refused (${response.status}): ${await response.text()}`);
  }

  function el(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "text") node.textContent = value;
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children) node.append(child);
    return node;
  }

  // Every time on the dashboard is in one zone, the station's (`ONAIR__UI__TIMEZONE`), named in
  // the header, 24-hour, as `2026-12-03 18:45:26`; `utc(iso)` is the same instant in UTC, for
  // the hover title.
  const ZONE = document.body.dataset.zone || "UTC";
  const FORMAT = new Intl.DateTimeFormat("en-CA", {
    timeZone: ZONE, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
  });

  function when(iso) {
    if (!iso) return "";
    const part = Object.fromEntries(FORMAT.formatToParts(new Date(iso)).map((p) => [p.type, p.value]));
    return `${part.year}-${part.month}-${part.day} ${part.hour}:${part.minute}:${part.second}`;
  }

  function hourOf(date) {
    const part = Object.fromEntries(FORMAT.formatToParts(date).map((p) => [p.type, p.value]));
    return `${part.hour}:${part.minute}`;
  }

  function utc(iso) {
    return iso ? `${new Date(iso).toISOString().slice(0, 19).replace("T", " ")} UTC` : "";
  }

  // A <time> of `iso`: in the station's zone, its UTC instant on hover.
  function time(iso) {
    return el("time", { datetime: iso, text: when(iso), title: utc(iso) });
  }

  function elapsed(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    return (h ? `${h}h ` : "") + (h || m ? `${m}m ` : "") + `${s}s`;
  }

  function lateness(seconds) {
    if (seconds === null || seconds === undefined) return "";
    return Math.abs(seconds) < 1 ? `${(seconds * 1000).toFixed(1)} ms` : `${seconds.toFixed(2)} s`;
  }

  function showWho(viewer) {
    $("who").textContent = viewer.user ? `${viewer.user} (own tasks)` : viewer.role === "admin" ? "admin" : "";
  }

  // Runs `load` once the page may read data: at once, or after a token is given.
  function start(load) {
    $("login").addEventListener("submit", (e) => {
      e.preventDefault();
      sessionStorage.setItem(KEY, $("token").value.trim());
      $("token").value = "";
      $("login").hidden = true;
      $("main").hidden = false;
      $("signout").hidden = false;
      load();
    });
    $("signout").addEventListener("click", () => { sessionStorage.removeItem(KEY); location.reload(); });
    if (protectedService && !token()) { askForToken(""); return; }
    $("signout").hidden = !token();
    load();
  }

  return { api, json, follow, debounce, cancel, post, el, when, utc, time, hourOf, elapsed, lateness, showWho, start, Refused, $ };
})();
