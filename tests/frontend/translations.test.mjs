// The card's translations: every language has English's keys with the same {placeholders}, and the
// card uses exactly the keys English has (node --test tests/frontend/).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import {
  RANGES,
  TRANSLATIONS,
  editorSchema,
  localize,
} from "../../custom_components/homelab_metrics/frontend/homelab-metrics-export-card.js";

const SOURCE = readFileSync(
  new URL("../../custom_components/homelab_metrics/frontend/homelab-metrics-export-card.js", import.meta.url),
  "utf8",
);
const placeholders = (text) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

test("the card ships English, German, French, Dutch and Spanish", () => {
  assert.deepEqual(Object.keys(TRANSLATIONS).sort(), ["de", "en", "es", "fr", "nl"]);
});

for (const [language, table] of Object.entries(TRANSLATIONS)) {
  if (language === "en") continue;
  test(`${language}: every English key, no other, the same placeholders, nothing left empty`, () => {
    const missing = Object.keys(TRANSLATIONS.en).filter((key) => !(key in table));
    assert.deepEqual(missing, [], `${language} lacks keys`);
    const extra = Object.keys(table).filter((key) => !(key in TRANSLATIONS.en));
    assert.deepEqual(extra, [], `${language} has keys English has not`);
    for (const [key, english] of Object.entries(TRANSLATIONS.en)) {
      assert.deepEqual(placeholders(table[key]), placeholders(english), `${language}.${key}`);
      assert.ok(table[key].trim(), `${language}.${key} is empty`);
    }
  });
}

test("the check above fails for a language with a missing key or another placeholder", () => {
  // The same comparison on a broken copy: it must see both faults.
  const broken = { ...TRANSLATIONS.de, server_gone: "Server {name} fehlt" };
  delete broken.export;
  assert.ok(Object.keys(TRANSLATIONS.en).some((key) => !(key in broken)));
  assert.notDeepEqual(placeholders(broken.server_gone), placeholders(TRANSLATIONS.en.server_gone));
});

test("every key the card asks for is in English, and every English key is asked for", () => {
  const used = new Set();
  for (const pattern of [
    /\bt\("(\w+)"/g,
    /localize\([^,()]+(?:\([^)]*\))?, "(\w+)"/g,
    /\bkey: "(\w+)"/g,
    /\bfail\("(\w+)"/g,
    /localize\(\w+, [\w.]+ \? "(\w+)" : "(\w+)"\)/g,
  ]) {
    for (const match of SOURCE.matchAll(pattern)) match.slice(1).forEach((key) => used.add(key));
  }
  // Keys built from a value: the ranges' labels and the editor's fields.
  for (const range of RANGES) used.add(`range_${range.value}`).add(`range_short_${range.value}`);
  for (const field of editorSchema("en", [], {})) {
    used.add(`editor_${field.name}`);
    if (field.name !== "range") used.add(`editor_${field.name}_helper`);
  }
  const english = new Set(Object.keys(TRANSLATIONS.en));
  assert.deepEqual(
    [...used].filter((key) => !english.has(key)),
    [],
    "asked for, not in English",
  );
  assert.deepEqual(
    [...english].filter((key) => !used.has(key)),
    [],
    "in English, never asked for",
  );
});

test("a key a language lacks falls back to English, an unknown key shows itself", () => {
  const saved = TRANSLATIONS.nl.export;
  delete TRANSLATIONS.nl.export;
  try {
    assert.equal(localize("nl", "export"), "Export");
  } finally {
    TRANSLATIONS.nl.export = saved;
  }
  assert.equal(localize("nl", "export"), "Exporteren");
  assert.equal(localize("de", "no_such_key"), "no_such_key");
});
