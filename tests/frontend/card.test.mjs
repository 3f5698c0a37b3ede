// Unit tests of the export card's pure logic (node --test tests/frontend/).
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  CARD_TYPE,
  RANGES,
  disabledReason,
  errorMessage,
  exportPath,
  validateConfig,
} from "../../custom_components/homelab_metrics/frontend/homelab-metrics-export-card.js";

test("the card type is the one dashboards use", () => {
  assert.equal(CARD_TYPE, "homelab-metrics-export-card");
  assert.deepEqual(RANGES.map((r) => r.value), ["24h", "7d", "30d", "12m"]);
});

test("config defaults the range and refuses bad values", () => {
  assert.deepEqual(validateConfig({ server: "nas" }), { server: "nas", range: "24h" });
  assert.equal(validateConfig({ range: "12m", title: "x" }).range, "12m");
  assert.throws(() => validateConfig({ range: "1y" }), /range must be one of 24h, 7d, 30d, 12m/);
  assert.throws(() => validateConfig({ server: 42 }), /server must be a server id/);
  assert.throws(() => validateConfig(null), /needs a configuration/);
});

test("export path is the view's URL with an encoded server id", () => {
  assert.equal(
    exportPath("nas", "7d", "csv"),
    "/api/homelab_metrics/servers/nas/export?range=7d&format=csv&tz=utc",
  );
  assert.equal(
    exportPath("a/b?c", "24h", "json", "local"),
    "/api/homelab_metrics/servers/a%2Fb%3Fc/export?range=24h&format=json&tz=local",
  );
});

test("offline and no data in the range disables the export", () => {
  const now = 1_800_000_000;
  const online = { name: "NAS", online: true, last_sample: null };
  assert.equal(disabledReason(online, "24h", now), null);
  const stale = { name: "NAS", online: false, last_sample: now - 2 * 86400 };
  assert.match(disabledReason(stale, "24h", now), /NAS is offline and has no data in the last 24 hours/);
  assert.equal(disabledReason(stale, "7d", now), null); // the 7-day range still has data
  assert.equal(disabledReason({ ...stale, last_sample: null }, "12m", now).includes("offline"), true);
  assert.equal(disabledReason(null, "24h", now), "Choose a server.");
});

test("error message comes from the view's JSON, else the status", async () => {
  const json = { status: 400, statusText: "Bad Request", json: async () => ({ message: "Unknown range" }) };
  assert.equal(await errorMessage(json), "Unknown range");
  const html = { status: 502, statusText: "Bad Gateway", json: async () => { throw new SyntaxError("x"); } };
  assert.equal(await errorMessage(html), "Export failed (HTTP 502 Bad Gateway).");
});
