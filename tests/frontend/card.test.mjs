// Unit tests of the export card's logic (node --test tests/frontend/): the pure helpers, and the
// card's export and server-list steps and the editor's list driven with a fake `hass` (no browser).
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  CARD_TYPE,
  EDITOR_TYPE,
  FORMATS,
  HomelabMetricsExportCard,
  HomelabMetricsExportCardEditor,
  RANGES,
  absoluteTime,
  cardNotice,
  describeError,
  editedConfig,
  editorSchema,
  errorMessage,
  exportFilename,
  exportPath,
  fetchServers,
  languageOf,
  localize,
  menuOpensUp,
  pickLanguage,
  rangeStart,
  relativeTime,
  serverStatus,
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
  assert.throws(
    () => validateConfig({ range: "1y" }),
    /^Error: homelab-metrics-export-card: range must be one of 24h, 7d, 30d, 12m \(got “1y”\)$/,
  );
  assert.throws(() => validateConfig({ range: "1y" }, "de"), /range muss einer der Werte 24h, 7d, 30d, 12m sein/);
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

const notice = (...args) => {
  const found = cardNotice(...args);
  return found && { text: localize("en", found.key, found.placeholders), blocks: found.blocks };
};

test("notices: loading, no servers, no choice, server gone, offline without data, empty range", () => {
  const servers = [
    { server_id: "nas", name: "NAS", online: true, last_sample: null },
    { server_id: "pi", name: "Pi", online: false, last_sample: NOW - 2 * DAY },
  ];
  assert.deepEqual(notice(null, "nas", "24h", NOW), { text: "Loading servers…", blocks: true });
  assert.match(notice([], null, "24h", NOW).text, /No Homelab Metrics server is set up yet/);
  assert.deepEqual(notice(servers, null, "24h", NOW), { text: "Choose a server.", blocks: true });
  assert.deepEqual(notice(servers, "nope", "24h", NOW), {
    text: "The server “nope” no longer exists: edit the card to choose another.",
    blocks: true,
  });
  // Online without data yet: the export still runs (and gives the column names only).
  assert.deepEqual(notice(servers, "nas", "24h", NOW), {
    text: "NAS has no data in the chosen range yet: the file will hold only the column names.",
    blocks: false,
  });
  assert.deepEqual(notice(servers, "pi", "24h", NOW), {
    text: "Pi is offline and has no data in the chosen range.",
    blocks: true,
  });
  assert.equal(notice(servers, "pi", "7d", NOW), null);
  const never = [{ ...servers[1], last_sample: null }];
  assert.equal(notice(never, "pi", "12m", NOW).blocks, true);
});

test("an offline server's sample inside the hour that starts a 7-day range still counts", () => {
  const start = rangeStart("7d", NOW);
  const server = (last) => [{ server_id: "pi", name: "Pi", online: false, last_sample: last }];
  // Before now - 7 days, yet inside the first hourly bucket the integration exports.
  assert.ok(start < NOW - 7 * DAY);
  assert.equal(cardNotice(server(start), "pi", "7d", NOW), null);
  assert.equal(cardNotice(server(start - 1), "pi", "7d", NOW).key, "offline_no_data");
  assert.equal(cardNotice(server(NOW - DAY), "pi", "24h", NOW), null);
  assert.equal(cardNotice(server(NOW - DAY - 1), "pi", "24h", NOW).key, "offline_no_data");
});

test("status line: online or offline and how long ago the last sample came, in the user's language", () => {
  const server = { server_id: "pi", name: "Pi", online: false, last_sample: NOW - 3 * HOUR - 20 * 60 };
  assert.equal(serverStatus("en", server, NOW), "Offline · last sample 3 hours ago");
  assert.equal(serverStatus("de", server, NOW), "Offline · letzte Messung vor 3 Stunden");
  assert.equal(serverStatus("fr", server, NOW), "Hors ligne · dernière mesure il y a 3 heures");
  assert.equal(serverStatus("nl", { ...server, online: true }, NOW), "Online · laatste meting 3 uur geleden");
  assert.equal(serverStatus("es", { ...server, last_sample: null }, NOW), "Desconectado · aún sin mediciones");
  assert.equal(
    serverStatus("en", { ...server, online: true, last_sample: NOW - 59 }, NOW),
    "Online · last sample just now",
  );
});

test("relative and absolute times", () => {
  assert.equal(relativeTime("en", NOW - 60, NOW), "1 minute ago");
  assert.equal(relativeTime("en", NOW - 59 * 60, NOW), "59 minutes ago");
  assert.equal(relativeTime("en", NOW - HOUR, NOW), "1 hour ago");
  assert.equal(relativeTime("en", NOW - DAY, NOW), "yesterday");
  assert.equal(relativeTime("es", NOW - 3 * DAY, NOW), "hace 3 días");
  assert.equal(relativeTime("not a language!", NOW - 2 * DAY, NOW), "2 days ago");
  assert.equal(absoluteTime("en", NOW, "UTC"), "Jan 15, 2027, 10:20 AM");
  assert.equal(absoluteTime("de", NOW, "Europe/Berlin"), "15.01.2027, 11:20");
  // An unknown zone falls back to the browser's rather than failing the card.
  assert.match(absoluteTime("en", NOW, "Nowhere/Else"), /2027/);
});

test("language: the profile's, then its prefix, then English", () => {
  assert.equal(pickLanguage("de"), "de");
  assert.equal(pickLanguage("de-CH"), "de");
  assert.equal(pickLanguage("es-419"), "es");
  assert.equal(pickLanguage("pt-BR"), "en");
  assert.equal(pickLanguage(undefined), "en");
  assert.equal(pickLanguage("constructor"), "en");
  assert.equal(languageOf({ locale: { language: "nl" }, language: "fr" }), "nl");
  assert.equal(languageOf({ language: "fr" }), "fr");
  assert.equal(languageOf(null), "en");
  assert.equal(localize("fr-CA", "choose_server"), "Choisissez un serveur.");
  assert.equal(
    localize("en", "server_gone", { server: "a{b}" }),
    "The server “a{b}” no longer exists: edit the card to choose another.",
  );
  assert.equal(
    localize("en", "server_gone"),
    "The server “{server}” no longer exists: edit the card to choose another.",
  );
});

test("the Export menu opens upward only when it does not fit below and there is more room above", () => {
  const visible = { top: 0, bottom: 740 };
  const button = (top) => ({ top, bottom: top + 36 });
  assert.equal(menuOpensUp(button(100), 90, visible), false);
  assert.equal(menuOpensUp(button(650), 90, visible), true);
  // Exactly enough room below, gap included: down.
  assert.equal(menuOpensUp(button(740 - 36 - 94), 90, visible), false);
  assert.equal(menuOpensUp(button(740 - 36 - 93), 90, visible), true);
  // Room neither way: the larger side.
  assert.equal(menuOpensUp(button(30), 800, visible), false);
  assert.equal(menuOpensUp(button(600), 800, visible), true);
  // A phone's visual viewport scrolled down the page: measured against what is visible.
  assert.equal(menuOpensUp(button(650), 90, { top: 300, bottom: 1040 }), false);
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
  assert.equal(await errorMessage(empty, "nl"), "Exporteren mislukt (HTTP 500).");
});

test("errors of callApi, callWS and fetch read as text", () => {
  assert.equal(describeError({ error: "Request error", body: { message: "Not found" } }), "Not found");
  assert.equal(describeError({ code: "unauthorized", message: "Unauthorized" }), "Unauthorized");
  assert.equal(describeError({ code: 3 }), "3");
  assert.equal(describeError(new TypeError("Failed to fetch")), "Failed to fetch");
  assert.equal(describeError("boom"), "boom");
});

test("the editor's form value becomes the config: emptied fields removed, other keys kept", () => {
  const config = {
    type: "custom:homelab-metrics-export-card",
    server: "nas",
    title: "T",
    grid_options: { columns: 6 },
  };
  assert.deepEqual(editedConfig({ ...config, range: "7d" }), { ...config, range: "7d" });
  assert.deepEqual(editedConfig({ ...config, server: undefined }), {
    type: config.type,
    title: "T",
    grid_options: config.grid_options,
  });
  assert.deepEqual(editedConfig({ ...config, title: "" }), {
    type: config.type,
    server: "nas",
    grid_options: config.grid_options,
  });
  assert.equal(config.range, undefined, "the old config is left as it was");
});

test("the editor's schema: the listed servers, a missing configured one kept, ranges by language", () => {
  const servers = [
    { server_id: "nas", name: "NAS", online: true },
    { server_id: "pi", name: "Pi", online: false },
  ];
  const [server, range, title] = editorSchema("de", servers, { server: "ghost" });
  assert.deepEqual([server.name, range.name, title.name], ["server", "range", "title"]);
  assert.deepEqual(server.selector.select.options, [
    { value: "nas", label: "NAS" },
    { value: "pi", label: "Pi (offline)" },
    { value: "ghost", label: "ghost (gibt es nicht mehr)" },
  ]);
  assert.equal(server.required, undefined, "no server: choose it on the card");
  assert.equal(range.required, true);
  assert.deepEqual(
    range.selector.select.options.map((o) => o.value),
    RANGES.map((r) => r.value),
  );
  assert.equal(range.selector.select.options[1].label, "Letzte 7 Tage");
  assert.deepEqual(title.selector, { text: {} });
  // While the list loads the configured id is the only option, under its own name.
  assert.deepEqual(editorSchema("en", null, { server: "nas" })[0].selector.select.options, [
    { value: "nas", label: "nas" },
  ]);
  assert.deepEqual(editorSchema("en", servers, { server: "nas" })[0].selector.select.options.length, 2);
});

test("stub config is a valid config", () => {
  assert.deepEqual(validateConfig(HomelabMetricsExportCard.getStubConfig()), { range: "24h" });
});

// ---- the card's steps, with a fake hass and a fake document -------------------------------------

function fakeDocument(calls) {
  globalThis.document = {
    createElement: () => ({
      style: {},
      click() {
        calls.clicked.push({ href: this.href, download: this.download });
      },
      remove() {},
    }),
    addEventListener() {},
    removeEventListener() {},
  };
}

function fakeCard({ probe, sign, servers = [], get }) {
  const calls = { fetch: [], ws: [], api: [], clicked: [], aborted: 0 };
  fakeDocument(calls);
  const card = new HomelabMetricsExportCard();
  card._render = () => {};
  card.shadowRoot = { appendChild() {} };
  card._hass = {
    fetchWithAuth: async (path, init = {}) => {
      const method = init.method ?? "GET";
      calls.fetch.push(`${method} ${path}`);
      init.signal?.addEventListener("abort", () => {
        calls.aborted += 1;
      });
      return method === "HEAD" ? probe() : get();
    },
    callWS: async (message) => {
      calls.ws.push(message);
      return sign(message);
    },
    callApi: async (method, path) => {
      calls.api.push(`${method} ${path}`);
      const list = typeof servers === "function" ? servers() : servers;
      if (list instanceof Error) throw list;
      return list;
    },
  };
  card.setConfig({ server: "nas", range: "7d" });
  return { card, calls };
}

const ok = () => ({ ok: true, status: 200 });

test("export: HEAD checks, then the same path is signed and handed to the browser (one GET, the browser's)", async () => {
  const { card, calls } = fakeCard({ probe: ok, sign: (m) => ({ path: `${m.path}&authSig=xyz` }) });
  await card._export("csv");
  const path = "/api/homelab_metrics/servers/nas/export?range=7d&format=csv&tz=utc";
  assert.deepEqual(calls.fetch, [`HEAD ${path}`]);
  assert.deepEqual(calls.ws, [{ type: "auth/sign_path", path, expires: 300 }]);
  assert.equal(calls.clicked.length, 1);
  assert.equal(calls.clicked[0].href, `${path}&authSig=xyz`);
  assert.match(calls.clicked[0].download, /^nas-metrics-7d-\d{4}-\d{2}-\d{2}\.csv$/);
  assert.equal(card._error, null);
  assert.equal(card._busy, false);
});

const refused = (status, message) => () => ({
  ok: false,
  status,
  statusText: "",
  // A HEAD answer has no body.
  json: async () => {
    throw new SyntaxError("Unexpected end of JSON input");
  },
  message,
});

test("export: a refused HEAD is explained by the view's message, read by GET, and nothing is downloaded", async () => {
  const get = () => ({ ok: false, status: 400, json: async () => ({ message: "Unknown range" }) });
  const { card, calls } = fakeCard({ probe: refused(400), get, sign: () => assert.fail("must not sign") });
  await card._export("json");
  const path = "/api/homelab_metrics/servers/nas/export?range=7d&format=json&tz=utc";
  assert.deepEqual(calls.fetch, [`HEAD ${path}`, `GET ${path}`]);
  assert.equal(card._error.text, "Unknown range");
  assert.equal(calls.aborted, 1);
  assert.deepEqual(calls.ws, []);
  assert.deepEqual(calls.clicked, []);
  assert.equal(card._busy, false);
});

test("export: when GET succeeds after HEAD refused, its body is not read and HEAD's status is told", async () => {
  const get = () => ({ ok: true, status: 200, json: async () => assert.fail("must not read the file") });
  const { card, calls } = fakeCard({ probe: refused(503), get, sign: () => assert.fail("must not sign") });
  await card._export("csv");
  assert.equal(card._error.text, "Export failed (HTTP 503).");
  assert.equal(calls.aborted, 1);
});

test("export: a server removed since the list came is refused by HEAD; the fresh list shows it gone", async () => {
  let listed = [{ server_id: "nas", name: "NAS", online: true, last_sample: Date.now() / 1000 }];
  const { card, calls } = fakeCard({
    probe: refused(404),
    sign: () => assert.fail("must not sign"),
    servers: () => listed,
  });
  await card._loadServers();
  listed = [];
  await card._export("csv");
  assert.deepEqual(calls.api, ["GET homelab_metrics/servers", "GET homelab_metrics/servers"]);
  assert.equal(calls.fetch.length, 1, "no GET: the card says what to do itself");
  assert.equal(card._error, null);
  assert.equal(cardNotice(card._servers, card._serverId, card._range, NOW).key, "no_servers");
  listed = [{ server_id: "pi", name: "Pi", online: true, last_sample: null }];
  await card._loadServers(0);
  const gone = card._notice(NOW);
  assert.equal(
    localize("en", gone.key, gone.placeholders),
    "The server “NAS” no longer exists: edit the card to choose another.",
  );
  // Still listed (a 404 from elsewhere, say): the status is told.
  listed = [{ server_id: "nas", name: "NAS", online: true, last_sample: Date.now() / 1000 }];
  await card._export("csv");
  assert.equal(card._error.text, "Export failed (HTTP 404).");
});

test("export: a failing sign_path is shown too", async () => {
  const sign = () => {
    throw { code: "unauthorized", message: "Unauthorized" };
  };
  const { card, calls } = fakeCard({ probe: ok, sign });
  await card._export("csv");
  assert.equal(localize("en", card._error.key, card._error.placeholders), "Export failed: Unauthorized");
  assert.deepEqual(calls.clicked, []);
  assert.equal(card._busy, false);
});

test("export: a network failure of the probe is shown", async () => {
  const probe = () => {
    throw new TypeError("Failed to fetch");
  };
  const { card } = fakeCard({ probe, sign: () => assert.fail("must not sign") });
  await card._export("csv");
  assert.deepEqual(card._error, { key: "export_failed", placeholders: { error: "Failed to fetch" } });
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
  assert.equal(localize("en", card._error.key, card._error.placeholders), "Could not list the servers: Unauthorized");
  assert.deepEqual(card._servers, []);
});

test("server list: one request for a card and its editor, however often they get hass, config and the DOM", async () => {
  const servers = [{ server_id: "nas", name: "NAS", online: true, last_sample: NOW }];
  const { card, calls } = fakeCard({ probe: ok, sign: (m) => m, servers });
  const connection = {};
  const hass = () => ({ ...card._hass, connection });
  const editor = new HomelabMetricsExportCardEditor();
  // As the edit dialog does on every keystroke: a new preview card, new hass objects, new config.
  for (let i = 0; i < 11; i++) {
    const preview = new HomelabMetricsExportCard();
    preview._render = () => {};
    preview.setConfig({ server: "nas", title: "x".repeat(i) });
    preview.hass = hass();
    preview.connectedCallback();
    preview.disconnectedCallback();
    editor.hass = hass();
    editor.setConfig({ type: "custom:x", server: "nas", title: "x".repeat(i) });
  }
  await new Promise((done) => setTimeout(done, 0));
  assert.deepEqual(calls.api, ["GET homelab_metrics/servers"]);
  assert.deepEqual(editor._servers, servers);
});

test("server list: reused for a minute, then asked again; a request under way is shared", async () => {
  let count = 0;
  let release;
  const hass = {
    connection: {},
    callApi: () => {
      count += 1;
      return new Promise((done) => (release = () => done([{ server_id: "s" }])));
    },
  };
  const realNow = Date.now;
  let now = 1_000_000;
  Date.now = () => now;
  try {
    const first = fetchServers(hass);
    now += 120_000;
    assert.equal(fetchServers(hass, 0), first, "still under way: shared");
    release();
    await first;
    now += 59_000;
    assert.equal(fetchServers(hass), first);
    now += 2_000;
    const second = fetchServers(hass);
    assert.notEqual(second, first);
    release();
    await second;
    assert.equal(count, 2);
    // Another Home Assistant connection has its own list.
    fetchServers({ ...hass, connection: {} });
    assert.equal(count, 3);
  } finally {
    Date.now = realNow;
  }
});

test("the editor lists the servers once and its form value reaches the dashboard as config-changed", async () => {
  const { card, calls } = fakeCard({
    probe: ok,
    sign: (m) => m,
    servers: [{ server_id: "nas", name: "NAS", online: true }],
  });
  const editor = new HomelabMetricsExportCardEditor();
  const events = [];
  editor.dispatchEvent = (event) => events.push(event);
  globalThis.CustomEvent = class {
    constructor(type, init) {
      Object.assign(this, { type, ...init });
    }
  };
  editor.hass = card._hass;
  editor.setConfig({ type: "custom:x", range: "24h" });
  const stopped = [];
  const event = (value) => ({ detail: { value }, stopPropagation: () => stopped.push(true) });
  editor._valueChanged(event({ type: "custom:x", range: "24h", server: "nas", title: "" }));
  editor._valueChanged(event({ type: "custom:x", range: "24h", server: "nas" }));
  assert.equal(events.length, 1, "an unchanged config is not reported again");
  assert.equal(events[0].type, "config-changed");
  assert.deepEqual(events[0].detail.config, { type: "custom:x", range: "24h", server: "nas" });
  assert.equal(events[0].bubbles && events[0].composed, true);
  assert.equal(stopped.length, 2);
  assert.equal(calls.api.length, 1);
});
