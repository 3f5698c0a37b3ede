// Unit tests of the export card's logic (node --test tests/frontend/): the pure helpers, and the
// card's export and server-list steps driven with a fake `hass` (no browser needed).
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  CARD_TYPE,
  EDITOR_TYPE,
  FORMATS,
  HomelabMetricsExportCard,
  RANGES,
  describeError,
  disabledReason,
  editConfig,
  errorMessage,
  exportFilename,
  exportPath,
  rangeStart,
  validateConfig,
} from "../../custom_components/homelab_metrics/frontend/homelab-metrics-export-card.js";

const HOUR = 3600;
const DAY = 86400;
// 2027-01-15 10:20:30 UTC: not on an hour boundary, so flooring shows.
const NOW = Date.UTC(2027, 0, 15, 10, 20, 30) / 1000;

test("the module loads outside a browser and names the card as dashboards do", () => {
  assert.equal(CARD_TYPE, "homelab-metrics-export-card");
  assert.equal(EDITOR_TYPE, "homelab-metrics-export-card-editor");
  assert.deepEqual(
    RANGES.map((r) => r.value),
    ["24h", "7d", "30d", "12m"],
  );
  assert.deepEqual(FORMATS, ["csv", "json"]);
  assert.equal(typeof globalThis.window, "undefined");
});

test("config defaults the range, keeps other keys and refuses bad values", () => {
  assert.deepEqual(validateConfig({ type: "custom:x", server: "nas" }), {
    type: "custom:x",
    server: "nas",
    range: "24h",
  });
  assert.equal(validateConfig({ range: "12m", title: "x" }).range, "12m");
  assert.throws(() => validateConfig({ range: "1y" }), /range must be one of 24h, 7d, 30d, 12m \(got "1y"\)/);
  assert.throws(() => validateConfig({ range: 7 }), /range must be one of/);
  assert.throws(() => validateConfig({ server: 42 }), /server must be a server id/);
  assert.throws(() => validateConfig({ server: "" }), /server must be a server id/);
  assert.throws(() => validateConfig({ title: ["a"] }), /title must be text/);
  for (const bad of [null, undefined, "nas", []]) {
    assert.throws(() => validateConfig(bad), /needs a configuration/);
  }
});

test("a config given to the card is not modified", () => {
  const config = Object.freeze({ server: "nas" });
  const checked = validateConfig(config);
  assert.notEqual(checked, config);
  assert.equal(config.range, undefined);
});

test("range start matches the integration: hourly ranges start on the hour", () => {
  assert.equal(rangeStart("24h", NOW), NOW - DAY);
  assert.equal(rangeStart("12m", NOW), NOW - 365 * DAY);
  const week = rangeStart("7d", NOW);
  assert.equal(week % HOUR, 0);
  assert.ok(week <= NOW - 7 * DAY && week > NOW - 7 * DAY - HOUR);
  const month = rangeStart("30d", NOW);
  assert.equal(month % HOUR, 0);
  assert.ok(month <= NOW - 30 * DAY && month > NOW - 30 * DAY - HOUR);
  // On the hour the start is exactly now - length.
  const onTheHour = NOW - (NOW % HOUR);
  assert.equal(rangeStart("7d", onTheHour), onTheHour - 7 * DAY);
  assert.throws(() => rangeStart("1y", NOW), /unknown range "1y"/);
});

test("export path is the view's URL with an encoded server id", () => {
  assert.equal(exportPath("nas", "7d", "csv"), "/api/homelab_metrics/servers/nas/export?range=7d&format=csv&tz=utc");
  assert.equal(
    exportPath("a/b?c", "24h", "json", "local"),
    "/api/homelab_metrics/servers/a%2Fb%3Fc/export?range=24h&format=json&tz=local",
  );
  const url = new URL(exportPath("nas", "12m", "json"), "http://hass.local");
  assert.equal(url.searchParams.get("range"), "12m");
  assert.throws(() => exportPath("nas", "1y", "csv"), /unknown range/);
  assert.throws(() => exportPath("nas", "24h", "xml"), /unknown format "xml"/);
});

test("filename follows the integration's pattern with the UTC date", () => {
  assert.equal(exportFilename("nas", "7d", "csv", NOW), "nas-metrics-7d-2027-01-15.csv");
  // 23:30 on the 14th in UTC is already the 15th in Berlin, but the card asks for UTC.
  const lateEvening = Date.UTC(2027, 0, 14, 23, 30) / 1000;
  assert.equal(exportFilename("nas", "24h", "json", lateEvening), "nas-metrics-24h-2027-01-14.json");
  assert.equal(exportFilename('..a "b"\n/c', "24h", "csv", NOW), "a_b_c-metrics-24h-2027-01-15.csv");
  const long = exportFilename("x".repeat(300), "12m", "json", NOW);
  assert.equal(long, `${"x".repeat(150)}.json`);
});

test("disabled reasons: loading, no servers, no choice, unknown id, offline without data", () => {
  const servers = [
    { server_id: "nas", name: "NAS", online: true, last_sample: null },
    { server_id: "pi", name: "Pi", online: false, last_sample: NOW - 2 * DAY },
  ];
  assert.equal(disabledReason(null, "nas", "24h", NOW), null);
  assert.match(disabledReason([], null, "24h", NOW), /No Homelab Metrics server is set up yet/);
  assert.equal(disabledReason(servers, null, "24h", NOW), "Choose a server.");
  assert.equal(disabledReason(servers, "nope", "24h", NOW), 'There is no Homelab Metrics server with the id "nope".');
  // Online without data yet: the export still runs (and gives a header only).
  assert.equal(disabledReason(servers, "nas", "24h", NOW), null);
  assert.equal(disabledReason(servers, "pi", "24h", NOW), "Pi is offline and has no data in the last 24 hours.");
  assert.equal(disabledReason(servers, "pi", "7d", NOW), null);
  const never = [{ ...servers[1], last_sample: null }];
  assert.equal(disabledReason(never, "pi", "12m", NOW), "Pi is offline and has no data in the last 12 months.");
});

test("an offline server's sample inside the hour that starts a 7-day range still counts", () => {
  const start = rangeStart("7d", NOW);
  const server = (last) => [{ server_id: "pi", name: "Pi", online: false, last_sample: last }];
  // Before now - 7 days, yet inside the first hourly bucket the integration exports.
  assert.ok(start < NOW - 7 * DAY);
  assert.equal(disabledReason(server(start), "pi", "7d", NOW), null);
  assert.match(disabledReason(server(start - 1), "pi", "7d", NOW), /offline/);
  assert.equal(disabledReason(server(NOW - DAY), "pi", "24h", NOW), null);
  assert.match(disabledReason(server(NOW - DAY - 1), "pi", "24h", NOW), /offline/);
});

test("error message comes from the view's JSON, else the status", async () => {
  const json = { status: 400, statusText: "Bad Request", json: async () => ({ message: "Unknown range" }) };
  assert.equal(await errorMessage(json), "Unknown range");
  const html = {
    status: 502,
    statusText: "Bad Gateway",
    json: async () => {
      throw new SyntaxError("x");
    },
  };
  assert.equal(await errorMessage(html), "Export failed (HTTP 502 Bad Gateway).");
  const empty = { status: 500, statusText: "", json: async () => ({ message: "" }) };
  assert.equal(await errorMessage(empty), "Export failed (HTTP 500).");
});

test("errors of callApi, callWS and fetch read as text", () => {
  assert.equal(describeError({ error: "Request error", body: { message: "Not found" } }), "Not found");
  assert.equal(describeError({ code: "unauthorized", message: "Unauthorized" }), "Unauthorized");
  assert.equal(describeError({ code: 3 }), "3");
  assert.equal(describeError(new TypeError("Failed to fetch")), "Failed to fetch");
  assert.equal(describeError("boom"), "boom");
});

test("the editor's change sets a key, and an empty value removes it", () => {
  const config = { type: "custom:homelab-metrics-export-card", server: "nas", title: "T" };
  assert.deepEqual(editConfig(config, "range", "7d"), { ...config, range: "7d" });
  assert.deepEqual(editConfig(config, "server", ""), { type: config.type, title: "T" });
  assert.deepEqual(editConfig(config, "title", undefined), { type: config.type, server: "nas" });
  assert.equal(config.range, undefined, "the old config is left as it was");
});

test("stub config is a valid config", () => {
  assert.deepEqual(validateConfig(HomelabMetricsExportCard.getStubConfig()), { range: "24h" });
});

// ---- the card's steps, with a fake hass and a fake document -------------------------------------

function fakeCard({ probe, sign, servers = [] }) {
  const calls = { fetch: [], ws: [], api: [], clicked: [], aborted: 0 };
  globalThis.document = {
    createElement: () => ({
      style: {},
      click() {
        calls.clicked.push({ href: this.href, download: this.download });
      },
      remove() {},
    }),
  };
  const card = new HomelabMetricsExportCard();
  card._render = () => {};
  card.shadowRoot = { appendChild() {} };
  card._hass = {
    fetchWithAuth: async (path, init) => {
      calls.fetch.push(path);
      init.signal.addEventListener("abort", () => {
        calls.aborted += 1;
      });
      return probe();
    },
    callWS: async (message) => {
      calls.ws.push(message);
      return sign(message);
    },
    callApi: async (method, path) => {
      calls.api.push(`${method} ${path}`);
      if (servers instanceof Error) throw servers;
      return servers;
    },
  };
  card.setConfig({ server: "nas", range: "7d" });
  return { card, calls };
}

const ok = () => ({ ok: true, status: 200 });

test("export: probe, abort the probe's body, sign the same path, click a link to it", async () => {
  const { card, calls } = fakeCard({ probe: ok, sign: (m) => ({ path: `${m.path}&authSig=xyz` }) });
  await card._export("csv");
  const path = "/api/homelab_metrics/servers/nas/export?range=7d&format=csv&tz=utc";
  assert.deepEqual(calls.fetch, [path]);
  assert.equal(calls.aborted, 1);
  assert.deepEqual(calls.ws, [{ type: "auth/sign_path", path, expires: 300 }]);
  assert.equal(calls.clicked.length, 1);
  assert.equal(calls.clicked[0].href, `${path}&authSig=xyz`);
  assert.match(calls.clicked[0].download, /^nas-metrics-7d-\d{4}-\d{2}-\d{2}\.csv$/);
  assert.equal(card._error, null);
  assert.equal(card._busy, false);
});

test("export: a failing probe shows the view's message and hands nothing to the browser", async () => {
  const probe = () => ({ ok: false, status: 404, statusText: "Not Found", json: async () => ({ message: "No such server" }) });
  const { card, calls } = fakeCard({ probe, sign: () => assert.fail("must not sign") });
  await card._export("json");
  assert.equal(card._error, "No such server");
  assert.deepEqual(calls.ws, []);
  assert.deepEqual(calls.clicked, []);
  assert.equal(card._busy, false);
});

test("export: a failing sign_path is shown too", async () => {
  const sign = () => {
    throw { code: "unauthorized", message: "Unauthorized" };
  };
  const { card, calls } = fakeCard({ probe: ok, sign });
  await card._export("csv");
  assert.equal(card._error, "Export failed: Unauthorized");
  assert.deepEqual(calls.clicked, []);
  assert.equal(card._busy, false);
});

test("export: a network failure of the probe is shown", async () => {
  const probe = () => {
    throw new TypeError("Failed to fetch");
  };
  const { card } = fakeCard({ probe, sign: () => assert.fail("must not sign") });
  await card._export("csv");
  assert.equal(card._error, "Export failed: Failed to fetch");
});

test("export: a second click while one export is busy does nothing", async () => {
  let release;
  const probe = () => new Promise((resolve) => (release = () => resolve(ok())));
  const { card, calls } = fakeCard({ probe, sign: (m) => ({ path: m.path }) });
  const first = card._export("csv");
  assert.equal(card._busy, true);
  await card._export("json");
  release();
  await first;
  assert.equal(calls.fetch.length, 1);
  assert.equal(calls.clicked.length, 1);
});

test("server list: the first server is chosen when the config names none", async () => {
  const servers = [
    { server_id: "nas", name: "NAS", online: true, last_sample: NOW },
    { server_id: "pi", name: "Pi", online: true, last_sample: NOW },
  ];
  const { card, calls } = fakeCard({ probe: ok, sign: (m) => m, servers });
  card.setConfig({ range: "24h" });
  await card._loadServers();
  assert.deepEqual(calls.api, ["GET homelab_metrics/servers"]);
  assert.equal(card._serverId, "nas");
  // A configured server is kept even when the list does not hold it (the card then explains).
  card.setConfig({ server: "gone" });
  await card._loadServers();
  assert.equal(card._serverId, "gone");
});

test("server list: a failure to list is shown in the card", async () => {
  const error = Object.assign(new Error("Request error"), { body: { message: "Unauthorized" } });
  const { card } = fakeCard({ probe: ok, sign: (m) => m, servers: error });
  await card._loadServers();
  assert.equal(card._error, "Could not list the servers: Unauthorized");
  assert.deepEqual(card._servers, []);
});
