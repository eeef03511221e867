// Day view page (docs/day-view.md). Plain script, no build step, no third-party code: it works offline.
// The token never goes into the URL: it is typed by the user, sent only in the Authorization header, and
// kept (when "keep for this tab" is ticked) in sessionStorage, which ends with the tab.
"use strict";

(function () {
  const TOKEN_KEY = "capacity.dayView.token";
  const ASSIGN_PATH = "/api/ops/dashboard/assign-tables";
  const $ = (id) => document.getElementById(id);
  const form = $("day-form");
  const tokenInput = $("token");
  const remember = $("remember");
  const restaurantInput = $("restaurant");
  const dateInput = $("date");
  const dryRunButton = $("dry-run");

  function setState(state, message) {
    document.body.dataset.state = state;
    $("status").textContent = message || "";
  }

  function localToday() {
    const now = new Date();
    const pad = (n) => String(n).padStart(2, "0");
    return `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`;
  }

  function dayPath() {
    const rid = encodeURIComponent(restaurantInput.value.trim());
    return `/api/ops/dashboard/days/${rid}/${encodeURIComponent(dateInput.value)}`;
  }

  function headers(extra) {
    return Object.assign({ Authorization: `Bearer ${tokenInput.value.trim()}` }, extra || {});
  }

  async function problemText(response) {
    try {
      const body = await response.json();
      return `${response.status} ${body.code || ""}: ${body.message || body.title || response.statusText}`;
    } catch (_) {
      return `${response.status} ${response.statusText}`;
    }
  }

  async function call(path, options, kind) {
    const response = await fetch(path, Object.assign({ cache: "no-store", credentials: "omit" }, options));
    if (!response.ok) throw new Error(await problemText(response));
    return kind === "json" ? response.json() : response.text();
  }

  // The SVG comes from this service; it is parsed as XML (never as HTML) and imported as nodes.
  function showSvg(container, svgText) {
    const doc = new DOMParser().parseFromString(svgText, "image/svg+xml");
    const root = doc.documentElement;
    if (root.nodeName !== "svg") throw new Error("the timeline could not be read");
    container.replaceChildren(document.importNode(root, true));
  }

  function optional(label, value) {
    if (value === undefined || value === null) return "";
    const shown = typeof value === "object" ? JSON.stringify(value) : String(value);
    return ` · ${label} ${shown}`;
  }

  function boundText(bound) {
    if (!bound || typeof bound.upperBound !== "number") return optional("bound", bound);
    const verdict = bound.optimal ? "optimal" : "not proven optimal";
    return ` · at most ${bound.upperBound} can be seated (${verdict}, ${bound.method})`;
  }

  async function showDay(event) {
    if (event) event.preventDefault();
    if (!form.reportValidity()) return;
    if (remember.checked) sessionStorage.setItem(TOKEN_KEY, tokenInput.value.trim());
    else sessionStorage.removeItem(TOKEN_KEY);
    setState("loading", "Loading the day…");
    dryRunButton.disabled = true;
    $("plan-panel").hidden = true;
    $("panels").classList.remove("side-by-side");
    try {
      const [day, svg] = await Promise.all([
        call(dayPath(), { headers: headers() }, "json"),
        call(`${dayPath()}/timeline.svg`, { headers: headers() }, "text"),
      ]);
      showSvg($("current"), svg);
      const onTables = day.bookings.filter((b) => b.tableIds.length > 0).length;
      const waiting = day.bookings.filter((b) => b.needsTable).length;
      $("current-facts").textContent =
        `${day.restaurantName} · ${day.date} (${day.timezone}) · ${day.tables.length} tables · ` +
        `${day.bookings.length} bookings, ${onTables} on tables, ${waiting} without a table · ` +
        `${day.holds.length} hold${day.holds.length === 1 ? "" : "s"}`;
      document.body.dataset.bookingsOnTables = String(onTables);
      dryRunButton.disabled = false;
      setState("ready", `Showing ${day.date}.`);
    } catch (error) {
      setState("error", error.message);
    }
  }

  async function showDryRun() {
    setState("loading", "Running the dry run…");
    try {
      const plan = await call(ASSIGN_PATH, {
        method: "POST",
        headers: headers({ "Content-Type": "application/json" }),
        body: JSON.stringify({
          restaurantId: restaurantInput.value.trim(), date: dateInput.value, dryRun: true, captureDecisions: false,
        }),
      }, "json");
      const svg = await call(`${dayPath()}/timeline.svg`, {
        method: "POST",
        headers: headers({ "Content-Type": "application/json" }),
        body: JSON.stringify(plan),
      }, "text");
      showSvg($("plan"), svg);
      $("plan-facts").textContent =
        `planner ${plan.planner} · ${plan.assigned.length} would be assigned · ${plan.skipped.length} skipped` +
        boundText(plan.bound) + optional("run", plan.runId);
      document.body.dataset.planAssigned = String(plan.assigned.length);
      $("plan-panel").hidden = false;
      $("panels").classList.add("side-by-side");
      setState("ready", "Dry run shown next to the current state (nothing was written).");
    } catch (error) {
      setState("error", error.message);
    }
  }

  function forget() {
    sessionStorage.removeItem(TOKEN_KEY);
    tokenInput.value = "";
    remember.checked = false;
    setState("idle", "Token forgotten.");
  }

  // Non-secret fields may come from the address (?restaurantId=…&date=…); a token there is never read.
  const query = new URLSearchParams(window.location.search);
  restaurantInput.value = query.get("restaurantId") || "";
  dateInput.value = query.get("date") || localToday();
  const kept = sessionStorage.getItem(TOKEN_KEY);
  if (kept) {
    tokenInput.value = kept;
    remember.checked = true;
  }
  form.addEventListener("submit", showDay);
  dryRunButton.addEventListener("click", showDryRun);
  $("forget").addEventListener("click", forget);
})();
