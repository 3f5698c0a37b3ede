/**
 * Homelab Metrics export card: pick a server and a range, click CSV or JSON, and the browser
 * downloads the file through a signed link (streamed to disk; nothing is held in memory here).
 *
 * Plain custom elements, no build step. The pure helpers are exported for the unit tests.
 *
 * How a failing export is caught before the browser gets the link: the card sends HEAD for the very
 * URL it will hand over, with the session's token. The view answers HEAD as it would answer GET
 * (400 for bad parameters, 404 for an unknown server, 200 with the file's headers) without reading a
 * row, so one click formats the file once: for the browser's signed GET. HEAD goes with the token,
 * not the signature, because Home Assistant 2025.4 accepts signed paths for GET only. A HEAD answer
 * has no body: for an unknown server the card says what to do itself; for any other refusal it asks
 * the same URL by GET, which the view answers with its JSON message before it would stream a row.
 *
 * The server list is fetched once for every card and editor on the page and kept for a minute, so
 * an editor that rebuilds its preview on every keystroke does not ask again; each card refreshes it
 * every minute for the online state. Texts come from TRANSLATIONS, by the user's language.
 */

export const CARD_TYPE = "homelab-metrics-export-card";
export const EDITOR_TYPE = `${CARD_TYPE}-editor`;
const HOUR = 3600;
const DAY = 86400;
// The integration's export/choices.py is the one list of ranges and formats; RANGES, FORMATS and
// DEFAULT_RANGE repeat it (tests/test_export_choices.py checks that they agree).
export const RANGES = [
  { value: "24h", label: "24 hours", seconds: DAY },
  { value: "7d", label: "7 days", seconds: 7 * DAY },
  { value: "30d", label: "30 days", seconds: 30 * DAY },
  { value: "12m", label: "12 months", seconds: 365 * DAY },
];
export const FORMATS = ["csv", "json"];

/**
 * Every text the card shows, by language. English is complete and the reference: a unit test fails
 * when another language lacks one of its keys or changes a {placeholder}. Home Assistant's own
 * terms where it has them (Settings → Devices & services, offline).
 */
export const TRANSLATIONS = {
  en: {
    card_name: "Homelab Metrics export",
    card_description: "Download a server's metric history as CSV or JSON.",
    default_title: "Homelab metrics",
    server: "Server",
    server_offline_option: "{server} (offline)",
    ranges: "Range",
    range_short_24h: "24h",
    range_short_7d: "7d",
    range_short_30d: "30d",
    range_short_12m: "12m",
    range_24h: "Last 24 hours",
    range_7d: "Last 7 days",
    range_30d: "Last 30 days",
    range_12m: "Last 12 months",
    export: "Export",
    preparing: "Preparing…",
    loading: "Loading servers…",
    online: "Online",
    offline: "Offline",
    last_sample: "last sample {time}",
    just_now: "just now",
    no_sample: "no sample yet",
    no_servers: "No Homelab Metrics server is set up yet: add one under Settings → Devices & services.",
    choose_server: "Choose a server.",
    server_gone: "The server “{server}” no longer exists: edit the card to choose another.",
    offline_no_data: "{server} is offline and has no data in the chosen range.",
    empty_range: "{server} has no data in the chosen range yet: the file will hold only the column names.",
    list_failed: "Could not list the servers: {error}",
    export_failed: "Export failed: {error}",
    export_failed_http: "Export failed (HTTP {status}).",
    editor_server: "Server",
    editor_server_helper: "Leave empty to choose the server on the card.",
    editor_server_gone: "{server} (no longer exists)",
    editor_range: "Default range",
    editor_title: "Title",
    editor_title_helper: "Leave empty to use the server's name.",
    config_missing: "the card needs a configuration",
    config_range: "range must be one of {choices} (got “{range}”)",
    config_server: "server must be a server id such as “nas”",
    config_title: "title must be text",
  },
  de: {
    card_name: "Homelab Metrics – Export",
    card_description: "Lädt den Messwertverlauf eines Servers als CSV oder JSON herunter.",
    default_title: "Homelab-Messwerte",
    server: "Server",
    server_offline_option: "{server} (offline)",
    ranges: "Zeitraum",
    range_short_24h: "24 h",
    range_short_7d: "7 T",
    range_short_30d: "30 T",
    range_short_12m: "12 M",
    range_24h: "Letzte 24 Stunden",
    range_7d: "Letzte 7 Tage",
    range_30d: "Letzte 30 Tage",
    range_12m: "Letzte 12 Monate",
    export: "Exportieren",
    preparing: "Wird vorbereitet…",
    loading: "Server werden geladen…",
    online: "Online",
    offline: "Offline",
    last_sample: "letzte Messung {time}",
    just_now: "gerade eben",
    no_sample: "noch keine Messung",
    no_servers:
      "Es ist noch kein Homelab-Metrics-Server eingerichtet: Füge einen unter Einstellungen → Geräte & Dienste hinzu.",
    choose_server: "Wähle einen Server.",
    server_gone: "Den Server „{server}“ gibt es nicht mehr: Bearbeite die Karte, um einen anderen zu wählen.",
    offline_no_data: "{server} ist offline und hat im gewählten Zeitraum keine Daten.",
    empty_range: "{server} hat im gewählten Zeitraum noch keine Daten: Die Datei enthält nur die Spaltennamen.",
    list_failed: "Die Server konnten nicht abgerufen werden: {error}",
    export_failed: "Export fehlgeschlagen: {error}",
    export_failed_http: "Export fehlgeschlagen (HTTP {status}).",
    editor_server: "Server",
    editor_server_helper: "Leer lassen, um den Server auf der Karte zu wählen.",
    editor_server_gone: "{server} (gibt es nicht mehr)",
    editor_range: "Standardzeitraum",
    editor_title: "Titel",
    editor_title_helper: "Leer lassen, um den Namen des Servers zu verwenden.",
    config_missing: "Die Karte braucht eine Konfiguration",
    config_range: "range muss einer der Werte {choices} sein (erhalten: „{range}“)",
    config_server: "server muss eine Server-ID wie „nas“ sein",
    config_title: "title muss ein Text sein",
  },
  fr: {
    card_name: "Homelab Metrics – export",
    card_description: "Télécharge l’historique des mesures d’un serveur en CSV ou en JSON.",
    default_title: "Mesures du homelab",
    server: "Serveur",
    server_offline_option: "{server} (hors ligne)",
    ranges: "Période",
    range_short_24h: "24 h",
    range_short_7d: "7 j",
    range_short_30d: "30 j",
    range_short_12m: "12 mois",
    range_24h: "Dernières 24 heures",
    range_7d: "7 derniers jours",
    range_30d: "30 derniers jours",
    range_12m: "12 derniers mois",
    export: "Exporter",
    preparing: "Préparation…",
    loading: "Chargement des serveurs…",
    online: "En ligne",
    offline: "Hors ligne",
    last_sample: "dernière mesure {time}",
    just_now: "à l’instant",
    no_sample: "aucune mesure pour l’instant",
    no_servers:
      "Aucun serveur Homelab Metrics n’est encore configuré : ajoutez-en un dans Paramètres → Appareils et services.",
    choose_server: "Choisissez un serveur.",
    server_gone: "Le serveur « {server} » n’existe plus : modifiez la carte pour en choisir un autre.",
    offline_no_data: "{server} est hors ligne et n’a aucune donnée sur la période choisie.",
    empty_range:
      "{server} n’a pas encore de données sur la période choisie : le fichier ne contiendra que les noms de colonnes.",
    list_failed: "Impossible de lister les serveurs : {error}",
    export_failed: "Échec de l’export : {error}",
    export_failed_http: "Échec de l’export (HTTP {status}).",
    editor_server: "Serveur",
    editor_server_helper: "Laissez vide pour choisir le serveur sur la carte.",
    editor_server_gone: "{server} (n’existe plus)",
    editor_range: "Période par défaut",
    editor_title: "Titre",
    editor_title_helper: "Laissez vide pour utiliser le nom du serveur.",
    config_missing: "la carte a besoin d’une configuration",
    config_range: "range doit valoir l’une des valeurs {choices} (reçu : « {range} »)",
    config_server: "server doit être l’identifiant d’un serveur, par exemple « nas »",
    config_title: "title doit être du texte",
  },
  nl: {
    card_name: "Homelab Metrics-export",
    card_description: "Download de meetgeschiedenis van een server als CSV of JSON.",
    default_title: "Homelab-meetwaarden",
    server: "Server",
    server_offline_option: "{server} (offline)",
    ranges: "Periode",
    range_short_24h: "24 u",
    range_short_7d: "7 d",
    range_short_30d: "30 d",
    range_short_12m: "12 mnd",
    range_24h: "Afgelopen 24 uur",
    range_7d: "Afgelopen 7 dagen",
    range_30d: "Afgelopen 30 dagen",
    range_12m: "Afgelopen 12 maanden",
    export: "Exporteren",
    preparing: "Voorbereiden…",
    loading: "Servers laden…",
    online: "Online",
    offline: "Offline",
    last_sample: "laatste meting {time}",
    just_now: "zojuist",
    no_sample: "nog geen meting",
    no_servers:
      "Er is nog geen Homelab Metrics-server ingesteld: voeg er een toe onder Instellingen → Apparaten & diensten.",
    choose_server: "Kies een server.",
    server_gone: "De server ‘{server}’ bestaat niet meer: bewerk de kaart om een andere te kiezen.",
    offline_no_data: "{server} is offline en heeft geen gegevens in de gekozen periode.",
    empty_range: "{server} heeft nog geen gegevens in de gekozen periode: het bestand bevat alleen de kolomnamen.",
    list_failed: "Kan de servers niet ophalen: {error}",
    export_failed: "Exporteren mislukt: {error}",
    export_failed_http: "Exporteren mislukt (HTTP {status}).",
    editor_server: "Server",
    editor_server_helper: "Laat leeg om de server op de kaart te kiezen.",
    editor_server_gone: "{server} (bestaat niet meer)",
    editor_range: "Standaardperiode",
    editor_title: "Titel",
    editor_title_helper: "Laat leeg om de naam van de server te gebruiken.",
    config_missing: "de kaart heeft een configuratie nodig",
    config_range: "range moet een van {choices} zijn (gekregen: ‘{range}’)",
    config_server: "server moet een server-ID zijn, zoals ‘nas’",
    config_title: "title moet tekst zijn",
  },
  es: {
    card_name: "Homelab Metrics: exportación",
    card_description: "Descarga el historial de métricas de un servidor en CSV o JSON.",
    default_title: "Métricas del homelab",
    server: "Servidor",
    server_offline_option: "{server} (desconectado)",
    ranges: "Periodo",
    range_short_24h: "24 h",
    range_short_7d: "7 d",
    range_short_30d: "30 d",
    range_short_12m: "12 m",
    range_24h: "Últimas 24 horas",
    range_7d: "Últimos 7 días",
    range_30d: "Últimos 30 días",
    range_12m: "Últimos 12 meses",
    export: "Exportar",
    preparing: "Preparando…",
    loading: "Cargando servidores…",
    online: "Conectado",
    offline: "Desconectado",
    last_sample: "última medición {time}",
    just_now: "hace un momento",
    no_sample: "aún sin mediciones",
    no_servers:
      "Aún no hay ningún servidor de Homelab Metrics configurado: añade uno en Ajustes → Dispositivos y servicios.",
    choose_server: "Elige un servidor.",
    server_gone: "El servidor «{server}» ya no existe: edita la tarjeta para elegir otro.",
    offline_no_data: "{server} está desconectado y no tiene datos en el periodo elegido.",
    empty_range:
      "{server} aún no tiene datos en el periodo elegido: el archivo solo contendrá los nombres de las columnas.",
    list_failed: "No se pudo obtener la lista de servidores: {error}",
    export_failed: "Error al exportar: {error}",
    export_failed_http: "Error al exportar (HTTP {status}).",
    editor_server: "Servidor",
    editor_server_helper: "Déjalo vacío para elegir el servidor en la tarjeta.",
    editor_server_gone: "{server} (ya no existe)",
    editor_range: "Periodo predeterminado",
    editor_title: "Título",
    editor_title_helper: "Déjalo vacío para usar el nombre del servidor.",
    config_missing: "la tarjeta necesita una configuración",
    config_range: "range debe ser uno de {choices} (recibido: «{range}»)",
    config_server: "server debe ser el ID de un servidor, como «nas»",
    config_title: "title debe ser texto",
  },
};

export const DEFAULT_RANGE = "24h";
const SIGN_EXPIRES = 300;
const REFRESH_MS = 60_000;
const MENU_GAP = 4;

/** The table's language for a Home Assistant language ("de-CH" → "de"); English when it has none. */
export function pickLanguage(language) {
  const lang = String(language || "en").toLowerCase();
  if (Object.hasOwn(TRANSLATIONS, lang)) return lang;
  const prefix = lang.split(/[-_]/)[0];
  return Object.hasOwn(TRANSLATIONS, prefix) ? prefix : "en";
}

/** The user's language: the profile's (hass.locale), else the page's, else English. */
export function languageOf(hass) {
  const page = typeof document === "undefined" ? undefined : document.documentElement?.lang;
  return hass?.locale?.language || hass?.language || page || "en";
}

/** One text in `language`, its {placeholders} filled; English where the language lacks the key. */
export function localize(language, key, placeholders = {}) {
  const text = TRANSLATIONS[pickLanguage(language)][key] ?? TRANSLATIONS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name) =>
    Object.hasOwn(placeholders, name) ? String(placeholders[name]) : whole,
  );
}

/** The language as Intl takes it ("en" when Intl does not know it). */
function intlLocale(language) {
  try {
    return Intl.getCanonicalLocales(language)[0] ?? "en";
  } catch (_err) {
    return "en";
  }
}

/** "just now", "5 minutes ago", "3 hours ago", "2 days ago" in the user's language. */
export function relativeTime(language, thenSeconds, nowSeconds) {
  const ago = nowSeconds - thenSeconds;
  if (ago < 60) return localize(language, "just_now");
  const format = new Intl.RelativeTimeFormat(intlLocale(language), { numeric: "auto" });
  if (ago < HOUR) return format.format(-Math.floor(ago / 60), "minute");
  if (ago < DAY) return format.format(-Math.floor(ago / HOUR), "hour");
  return format.format(-Math.floor(ago / DAY), "day");
}

/** Date and time of an epoch second, in the user's language (the browser's or the server's zone). */
export function absoluteTime(language, seconds, timeZone) {
  const options = { dateStyle: "medium", timeStyle: "short" };
  try {
    return new Intl.DateTimeFormat(intlLocale(language), { ...options, timeZone }).format(seconds * 1000);
  } catch (_err) {
    return new Intl.DateTimeFormat(intlLocale(language), options).format(seconds * 1000);
  }
}

function findRange(range) {
  const found = RANGES.find((r) => r.value === range);
  if (!found) throw new Error(`unknown range "${range}"`);
  return found;
}

/** Check a card config and fill in defaults; throws an Error a dashboard can show. */
export function validateConfig(config, language = languageOf(null)) {
  const fail = (key, placeholders) => new Error(`${CARD_TYPE}: ${localize(language, key, placeholders)}`);
  if (!config || typeof config !== "object" || Array.isArray(config)) throw fail("config_missing");
  const range = config.range ?? DEFAULT_RANGE;
  if (!RANGES.some((r) => r.value === range)) {
    throw fail("config_range", { choices: RANGES.map((r) => r.value).join(", "), range });
  }
  if (config.server !== undefined && (typeof config.server !== "string" || !config.server)) {
    throw fail("config_server");
  }
  if (config.title !== undefined && typeof config.title !== "string") throw fail("config_title");
  return { ...config, range };
}

/**
 * First second (epoch) an export of `range` ending at `nowSeconds` covers, as the integration
 * resolves it: the hourly ranges start at the hour holding now - length.
 */
export function rangeStart(range, nowSeconds) {
  const { seconds } = findRange(range);
  const first = Math.floor(nowSeconds) - seconds;
  return range === "7d" || range === "30d" ? first - (((first % HOUR) + HOUR) % HOUR) : first;
}

/** The export URL (path and query) of the integration's view. */
export function exportPath(serverId, range, format, tz = "utc") {
  findRange(range);
  if (!FORMATS.includes(format)) throw new Error(`unknown format "${format}"`);
  const query = new URLSearchParams({ range, format, tz });
  return `/api/homelab_metrics/servers/${encodeURIComponent(serverId)}/export?${query}`;
}

/**
 * The name the integration gives the file (UTC date, as the card asks for UTC times); the link's
 * `download` attribute uses it in case a browser ignores the response's Content-Disposition.
 */
export function exportFilename(serverId, range, format, nowSeconds) {
  const day = new Date(Math.floor(nowSeconds) * 1000).toISOString().slice(0, 10);
  // The same sanitising as the integration's safe_filename: runs of other characters become one
  // "_", no leading dot, a bounded stem.
  const stem = `${serverId}-metrics-${range}-${day}`.replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^\.+/, "");
  return `${stem.slice(0, 150)}.${format}`;
}

/**
 * What the card says under its buttons, and whether the export may run: `{key, placeholders,
 * blocks}` or null when there is nothing to say. `servers` is the integration's list (null while it
 * loads); an offline server still exports what it recorded before, unless the range holds none.
 */
export function cardNotice(servers, serverId, range, nowSeconds) {
  if (servers === null) return { key: "loading", placeholders: {}, blocks: true };
  if (!servers.length) return { key: "no_servers", placeholders: {}, blocks: true };
  if (!serverId) return { key: "choose_server", placeholders: {}, blocks: true };
  const server = servers.find((s) => s.server_id === serverId);
  if (!server) return { key: "server_gone", placeholders: { server: serverId }, blocks: true };
  const hasData = server.last_sample != null && server.last_sample >= rangeStart(range, nowSeconds);
  if (hasData) return null;
  const placeholders = { server: server.name };
  // Online without data in the range: the export still runs, and gives the column names only.
  return server.online
    ? { key: "empty_range", placeholders, blocks: false }
    : { key: "offline_no_data", placeholders, blocks: true };
}

/** The line under the title: online or offline, and when the last sample came. */
export function serverStatus(language, server, nowSeconds) {
  const state = localize(language, server.online ? "online" : "offline");
  const last =
    server.last_sample == null
      ? localize(language, "no_sample")
      : localize(language, "last_sample", { time: relativeTime(language, server.last_sample, nowSeconds) });
  return `${state} · ${last}`;
}

/** The message of a refused export: the view's JSON message when there is one. */
export async function errorMessage(response, language = "en") {
  try {
    const body = await response.json();
    if (body && typeof body.message === "string" && body.message) return body.message;
  } catch (_err) {
    // not JSON (a proxy's error page, say): the status line is all there is
  }
  const status = `${response.status}${response.statusText ? ` ${response.statusText}` : ""}`;
  return localize(language, "export_failed_http", { status });
}

/** Text of an error thrown by hass.callApi / hass.callWS / fetch, for the card. */
export function describeError(err) {
  const text = err?.body?.message ?? err?.message ?? err?.error ?? err?.code;
  return text ? String(text) : String(err);
}

/**
 * Whether the Export menu opens upward: when it does not fit between the button and the bottom of
 * what is visible, and there is more room above. Rectangles in viewport pixels.
 */
export function menuOpensUp(button, menuHeight, visible) {
  const below = visible.bottom - button.bottom;
  const above = button.top - visible.top;
  return menuHeight + MENU_GAP > below && above > below;
}

/** The visible part of the page in viewport pixels (a phone's keyboard or toolbars shrink it). */
function visibleArea() {
  const view = window.visualViewport;
  return view ? { top: view.offsetTop, bottom: view.offsetTop + view.height } : { top: 0, bottom: window.innerHeight };
}

// ---- the server list, shared by every card and editor of one Home Assistant connection -----------

const serverLists = new WeakMap();

/**
 * The integration's server list: one request for all cards and editors, reused while younger than
 * `maxAgeMs` (a request still running is always reused). A failed request is reused too, so a
 * broken list is not asked for again on every keystroke.
 */
export function fetchServers(hass, maxAgeMs = REFRESH_MS) {
  const key = hass.connection ?? hass;
  const cached = serverLists.get(key);
  if (cached && (cached.pending || Date.now() - cached.at < maxAgeMs)) return cached.promise;
  const entry = { at: Date.now(), pending: true, promise: null };
  entry.promise = hass.callApi("GET", "homelab_metrics/servers").finally(() => {
    entry.pending = false;
    entry.at = Date.now();
  });
  serverLists.set(key, entry);
  return entry.promise;
}

const STYLE = `
  :host { display: block; }
  ha-card, .card { padding: 16px; box-sizing: border-box; }
  .card {
    background: var(--ha-card-background, var(--card-background-color, #fff));
    color: var(--primary-text-color, #212121);
    border-radius: var(--ha-card-border-radius, 12px);
    border: var(--ha-card-border-width, 1px) solid var(--divider-color, #e0e0e0);
  }
  h2 {
    margin: 0; font-size: var(--ha-card-header-font-size, 20px); font-weight: 400; min-height: 1.2em;
    overflow-wrap: anywhere;
  }
  .status {
    display: flex; align-items: center; gap: 6px; margin-top: 4px;
    font-size: 0.9em; color: var(--secondary-text-color, #727272);
  }
  .dot { width: 8px; height: 8px; border-radius: 50%; flex: none; background: var(--success-color, #43a047); }
  .dot.offline { background: var(--error-color, #db4437); }
  .row { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; margin-top: 12px; }
  .ranges { display: flex; flex-wrap: wrap; gap: 4px; flex: 1 1 auto; }
  button {
    font: inherit; cursor: pointer; border-radius: 18px; padding: 6px 14px;
    border: 1px solid var(--divider-color, #e0e0e0);
    background: transparent; color: var(--primary-text-color, #212121);
  }
  button.range { padding: 6px 12px; }
  button[aria-pressed="true"] {
    background: var(--primary-color, #03a9f4); color: var(--text-primary-color, #fff);
    border-color: var(--primary-color, #03a9f4);
  }
  button:disabled { opacity: 0.5; cursor: not-allowed; }
  .export { position: relative; margin-left: auto; }
  .export > button {
    background: var(--primary-color, #03a9f4); color: var(--text-primary-color, #fff);
    border-color: var(--primary-color, #03a9f4);
  }
  .menu {
    position: absolute; right: 0; top: calc(100% + ${MENU_GAP}px); z-index: 2; min-width: 120px;
    display: flex; flex-direction: column; padding: 4px;
    background: var(--card-background-color, #fff); border-radius: 8px;
    border: 1px solid var(--divider-color, #e0e0e0); box-shadow: 0 2px 8px rgba(0, 0, 0, 0.2);
  }
  .menu.up { top: auto; bottom: calc(100% + ${MENU_GAP}px); }
  .menu button { border: none; border-radius: 4px; text-align: left; }
  .menu button:hover, .menu button:focus-visible { background: var(--secondary-background-color, #f5f5f5); }
  select {
    font: inherit; padding: 6px; border-radius: 6px; max-width: 100%;
    border: 1px solid var(--divider-color, #e0e0e0);
    background: var(--card-background-color, #fff); color: var(--primary-text-color, #212121);
  }
  .note { margin-top: 10px; font-size: 0.9em; color: var(--secondary-text-color, #727272); }
  .note.offline_no_data, .note.no_servers { color: var(--warning-color, #ffa600); }
  .note.server_gone { color: var(--error-color, #db4437); }
  .error { margin-top: 10px; color: var(--error-color, #db4437); }
  .server { display: flex; flex-wrap: wrap; align-items: center; gap: 8px; margin-top: 10px; }
  .server select { flex: 1 1 160px; }
  .spinner {
    display: inline-block; width: 0.8em; height: 0.8em; margin-right: 6px; vertical-align: -0.05em;
    border: 2px solid currentColor; border-right-color: transparent; border-radius: 50%;
    animation: spin 0.8s linear infinite;
  }
  @keyframes spin { to { transform: rotate(360deg); } }
  @media (prefers-reduced-motion: reduce) { .spinner { animation: none; } }
`;

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const Base = typeof HTMLElement === "undefined" ? class {} : HTMLElement;

/** The dashboard card. */
export class HomelabMetricsExportCard extends Base {
  constructor() {
    super();
    this._config = null;
    this._hass = null;
    this._servers = null;
    this._serverId = null;
    this._range = DEFAULT_RANGE;
    this._menuOpen = false;
    this._busy = false;
    this._error = null;
    this._timer = null;
    this._knownName = null;
    this._onOutside = (event) => {
      if (this._menuOpen && !event.composedPath().includes(this)) this._setMenu(false);
    };
    this._onKey = (event) => {
      if (event.key === "Escape" && this._menuOpen) {
        this._setMenu(false);
        this._afterLayout(() => this.shadowRoot.querySelector("button.open")?.focus());
      }
    };
  }

  static getConfigElement() {
    return document.createElement(EDITOR_TYPE);
  }

  static getStubConfig() {
    return { range: DEFAULT_RANGE };
  }

  setConfig(config) {
    this._config = validateConfig(config, languageOf(this._hass));
    this._range = this._config.range;
    this._serverId = this._config.server ?? this._firstServerId();
    this._knownName = this._servers?.find((s) => s.server_id === this._serverId)?.name ?? null;
    this._render();
  }

  set hass(hass) {
    const first = !this._hass;
    const language = languageOf(this._hass);
    this._hass = hass;
    if (first) this._loadServers();
    else if (languageOf(hass) !== language) this._render();
  }

  get hass() {
    return this._hass;
  }

  getCardSize() {
    return 3;
  }

  getGridOptions() {
    return { columns: 6, min_columns: 3 };
  }

  connectedCallback() {
    document.addEventListener("click", this._onOutside, true);
    document.addEventListener("keydown", this._onKey);
    // A server that goes offline (or is removed) changes what the card says and allows; the
    // relative time of the last sample moves on too.
    this._timer = setInterval(() => this._loadServers(REFRESH_MS / 2), REFRESH_MS);
    if (this._hass && this._servers !== null) this._loadServers();
    this._render();
  }

  disconnectedCallback() {
    document.removeEventListener("click", this._onOutside, true);
    document.removeEventListener("keydown", this._onKey);
    clearInterval(this._timer);
    this._timer = null;
  }

  _firstServerId() {
    return this._servers?.[0]?.server_id ?? null;
  }

  /** Take the shared list (at most `maxAgeMs` old; 0 asks the integration again). */
  async _loadServers(maxAgeMs = REFRESH_MS) {
    if (!this._hass) return;
    try {
      this._servers = await fetchServers(this._hass, maxAgeMs);
      if (!this._config?.server && !this._servers.some((s) => s.server_id === this._serverId)) {
        this._serverId = this._firstServerId();
      }
      // Kept to name the server should it be removed while the card shows it.
      this._knownName = this._servers.find((s) => s.server_id === this._serverId)?.name ?? this._knownName;
      if (this._error?.key === "list_failed") this._error = null;
    } catch (err) {
      this._servers ??= [];
      this._error = { key: "list_failed", placeholders: { error: describeError(err) } };
    }
    this._render();
  }

  _setMenu(open) {
    this._menuOpen = open;
    this._render();
  }

  async _export(format) {
    if (this._busy) return;
    this._menuOpen = false;
    this._busy = true;
    this._error = null;
    this._render();
    try {
      const path = exportPath(this._serverId, this._range, format);
      const check = await this._hass.fetchWithAuth(path, { method: "HEAD" });
      if (!check.ok) {
        await this._refused(path, check);
        return;
      }
      const signed = await this._hass.callWS({ type: "auth/sign_path", path, expires: SIGN_EXPIRES });
      const link = document.createElement("a");
      link.href = signed.path;
      link.download = exportFilename(this._serverId, this._range, format, Date.now() / 1000);
      link.style.display = "none";
      this.shadowRoot.appendChild(link);
      link.click();
      link.remove();
    } catch (err) {
      this._error = { key: "export_failed", placeholders: { error: describeError(err) } };
    } finally {
      this._busy = false;
      this._render();
    }
  }

  /** Say why the view refused an export that HEAD checked. */
  async _refused(path, check) {
    if (check.status === 404) {
      // The server was removed since the list was fetched: the fresh list shows it gone.
      await this._loadServers(0);
      if (this._servers?.some((s) => s.server_id === this._serverId)) {
        this._error = { text: await errorMessage(check, languageOf(this._hass)) };
      }
      return;
    }
    const abort = new AbortController();
    const response = await this._hass.fetchWithAuth(path, { signal: abort.signal });
    // It may have become exportable in between: then nothing is read, and HEAD's status is told.
    this._error = { text: await errorMessage(response.ok ? check : response, languageOf(this._hass)) };
    abort.abort();
  }

  _render() {
    if (!this._config) return;
    if (!this.shadowRoot) this.attachShadow({ mode: "open" });
    const language = languageOf(this._hass);
    const t = (key, placeholders) => localize(language, key, placeholders);
    const now = Date.now() / 1000;
    const server = (this._servers ?? []).find((s) => s.server_id === this._serverId) ?? null;
    const notice = this._notice(now);
    const disabled = this._busy || Boolean(notice?.blocks);
    const title =
      this._config.title ??
      (this._config.server
        ? (server?.name ?? this._knownName ?? (this._servers === null ? "" : this._config.server))
        : t("default_title"));
    const sampled =
      server?.last_sample == null
        ? ""
        : ` title="${escapeHtml(absoluteTime(language, server.last_sample, this._timeZone()))}"`;
    const status = server
      ? `<div class="status"${sampled}><span class="dot ${server.online ? "online" : "offline"}" aria-hidden="true"></span>` +
        `<span>${escapeHtml(serverStatus(language, server, now))}</span></div>`
      : "";
    const picker =
      this._config.server || !this._servers?.length
        ? ""
        : `<label class="server">${escapeHtml(t("server"))} <select>${this._servers
            .map(
              (s) =>
                `<option value="${escapeHtml(s.server_id)}" ${s.server_id === this._serverId ? "selected" : ""}>${escapeHtml(s.online ? s.name : t("server_offline_option", { server: s.name }))}</option>`,
            )
            .join("")}</select></label>`;
    const ranges = RANGES.map(
      (r) =>
        `<button class="range" data-range="${r.value}" title="${escapeHtml(t(`range_${r.value}`))}" aria-label="${escapeHtml(t(`range_${r.value}`))}" aria-pressed="${r.value === this._range}">${escapeHtml(t(`range_short_${r.value}`))}</button>`,
    ).join("");
    const menu = this._menuOpen
      ? `<div class="menu" role="menu">${FORMATS.map(
          (f) => `<button role="menuitem" data-format="${f}">${f.toUpperCase()}</button>`,
        ).join("")}</div>`
      : "";
    const error = this._error && (this._error.text ?? t(this._error.key, this._error.placeholders));
    const Tag = customElements.get("ha-card") ? "ha-card" : "div";
    this.shadowRoot.innerHTML = `
      <style>${STYLE}</style>
      <${Tag} class="${Tag === "div" ? "card" : ""}" aria-busy="${this._busy || this._servers === null}">
        <h2>${escapeHtml(title)}</h2>
        ${picker}
        ${status}
        <div class="row">
          <div class="ranges" role="group" aria-label="${escapeHtml(t("ranges"))}">${ranges}</div>
          <div class="export">
            <button class="open" aria-haspopup="menu" aria-expanded="${this._menuOpen}" ${disabled ? "disabled" : ""}>
              ${this._busy ? `<span class="spinner" aria-hidden="true"></span>${escapeHtml(t("preparing"))}` : `${escapeHtml(t("export"))} ▾`}
            </button>
            ${menu}
          </div>
        </div>
        ${notice ? `<div class="note ${notice.key}">${escapeHtml(t(notice.key, notice.placeholders))}</div>` : ""}
        ${error ? `<div class="error" role="alert">${escapeHtml(error)}</div>` : ""}
      </${Tag}>`;
    const root = this.shadowRoot;
    root.querySelectorAll("button.range").forEach((b) =>
      b.addEventListener("click", () => {
        this._range = b.dataset.range;
        this._error = null;
        this._render();
      }),
    );
    root.querySelector("button.open")?.addEventListener("click", () => this._setMenu(!this._menuOpen));
    root
      .querySelectorAll("[data-format]")
      .forEach((b) => b.addEventListener("click", () => this._export(b.dataset.format)));
    root.querySelector("select")?.addEventListener("change", (event) => {
      this._serverId = event.target.value;
      this._error = null;
      this._render();
    });
    if (this._menuOpen) this._afterLayout(() => this._placeMenu());
  }

  /**
   * Run `step` once the new content is laid out: ha-card shows its children only after it has
   * rendered itself (a microtask later, before the paint); until then they have no size or focus.
   */
  _afterLayout(step) {
    Promise.resolve(this.shadowRoot?.querySelector("ha-card")?.updateComplete).then(step);
  }

  /** Open the menu upward when it would reach below what is visible. */
  _placeMenu() {
    const menu = this.shadowRoot.querySelector(".menu");
    const button = this.shadowRoot.querySelector("button.open");
    if (!menu || !button) return;
    const height = menu.getBoundingClientRect().height;
    menu.classList.toggle("up", menuOpensUp(button.getBoundingClientRect(), height, visibleArea()));
  }

  /** cardNotice, naming a removed server as the card last saw it. */
  _notice(nowSeconds) {
    const notice = cardNotice(this._servers, this._serverId, this._range, nowSeconds);
    if (notice?.key === "server_gone" && this._knownName) notice.placeholders.server = this._knownName;
    return notice;
  }

  /** The time zone the user chose for times in their profile (undefined: the browser's). */
  _timeZone() {
    return this._hass?.locale?.time_zone === "server" ? this._hass?.config?.time_zone : undefined;
  }
}

// ---- the visual editor ---------------------------------------------------------------------------

let formLoading = null;

/**
 * Wait until Home Assistant's ha-form is defined. The app loads it lazily; opening a core card's
 * editor (as the dashboard does) makes it load it when nothing has yet.
 */
export function loadHaForm() {
  if (customElements.get("ha-form")) return Promise.resolve();
  formLoading ??= (async () => {
    try {
      const helpers = await window.loadCardHelpers?.();
      const card = await helpers?.createCardElement({ type: "entities", entities: [] });
      await card?.constructor?.getConfigElement?.();
    } catch (_err) {
      // Then only waiting is left: the dashboard's own card editor loads ha-form as well.
    }
    await customElements.whenDefined("ha-form");
  })();
  return formLoading;
}

/**
 * The editor's ha-form schema: the servers of the one list fetched (null while it loads), a
 * configured id the list does not hold kept as an option so opening the editor does not drop it.
 */
export function editorSchema(language, servers, config) {
  const t = (key, placeholders) => localize(language, key, placeholders);
  const options = (servers ?? []).map((s) => ({
    value: s.server_id,
    label: s.online ? s.name : t("server_offline_option", { server: s.name }),
  }));
  if (config.server && !options.some((o) => o.value === config.server)) {
    options.push({
      value: config.server,
      label: servers === null ? config.server : t("editor_server_gone", { server: config.server }),
    });
  }
  return [
    { name: "server", selector: { select: { mode: "dropdown", options } } },
    {
      name: "range",
      required: true,
      selector: {
        select: { mode: "dropdown", options: RANGES.map((r) => ({ value: r.value, label: t(`range_${r.value}`) })) },
      },
    },
    { name: "title", selector: { text: {} } },
  ];
}

/** The config an ha-form value gives: emptied fields removed, other keys kept as they were. */
export function editedConfig(value) {
  const next = {};
  for (const [key, field] of Object.entries(value)) {
    if (field !== "" && field !== undefined && field !== null) next[key] = field;
  }
  return next;
}

/** The card's visual editor: server, default range, title, in Home Assistant's own form. */
export class HomelabMetricsExportCardEditor extends Base {
  constructor() {
    super();
    this._config = {};
    this._hass = null;
    this._servers = null;
    this._listError = null;
    this._form = null;
    this._schemaKey = null;
  }

  setConfig(config) {
    this._config = { ...config };
    this._render();
  }

  set hass(hass) {
    const first = !this._hass;
    this._hass = hass;
    if (first) {
      // Once for the editor's life: the dialog hands it a new hass on every state change.
      fetchServers(hass).then(
        (servers) => {
          this._servers = servers;
          this._render();
        },
        (err) => {
          this._servers = [];
          this._listError = describeError(err);
          this._render();
        },
      );
    }
    this._render();
  }

  get hass() {
    return this._hass;
  }

  connectedCallback() {
    this._render();
  }

  _valueChanged(event) {
    event.stopPropagation();
    const config = editedConfig(event.detail.value);
    if (JSON.stringify(config) === JSON.stringify(this._config)) return;
    this._config = config;
    this._render();
    this.dispatchEvent(new CustomEvent("config-changed", { detail: { config }, bubbles: true, composed: true }));
  }

  _render() {
    if (!this._hass || typeof customElements === "undefined") return;
    if (!this.shadowRoot) this.attachShadow({ mode: "open" });
    if (!customElements.get("ha-form")) {
      loadHaForm().then(() => this._render());
      return;
    }
    const language = languageOf(this._hass);
    if (!this._form) {
      this._form = document.createElement("ha-form");
      this._form.addEventListener("value-changed", (event) => this._valueChanged(event));
      this.shadowRoot.appendChild(this._form);
    }
    const form = this._form;
    form.hass = this._hass;
    form.data = { range: DEFAULT_RANGE, ...this._config };
    // A new schema makes the form render anew: only when what it shows changed.
    const key = JSON.stringify([language, this._servers, this._config.server]);
    if (key !== this._schemaKey) {
      this._schemaKey = key;
      form.schema = editorSchema(language, this._servers, this._config);
      form.computeLabel = (field) => localize(language, `editor_${field.name}`);
      form.computeHelper = (field) =>
        field.name === "server" && this._listError
          ? localize(language, "list_failed", { error: this._listError })
          : field.name === "range"
            ? undefined
            : localize(language, `editor_${field.name}_helper`);
    }
  }
}

/** Define the card and its editor in the registry Home Assistant's app uses. */
function register() {
  const registry = window.customElements;
  if (!registry.get(CARD_TYPE)) registry.define(CARD_TYPE, HomelabMetricsExportCard);
  if (!registry.get(EDITOR_TYPE)) registry.define(EDITOR_TYPE, HomelabMetricsExportCardEditor);
}

if (typeof customElements !== "undefined") {
  // Home Assistant imports extra modules in parallel with its app bundle, and the app may swap
  // window.customElements for a scoped-registry polyfill; a card defined before that swap is
  // invisible to dashboards. So wait until the app has defined itself, then define ours there.
  const started = Date.now();
  const whenAppReady = () => {
    if (window.customElements.get("home-assistant") || Date.now() - started > 30000) register();
    else setTimeout(whenAppReady, 50);
  };
  whenAppReady();
  window.customCards = window.customCards || [];
  if (!window.customCards.some((c) => c.type === CARD_TYPE)) {
    // Getters: the card picker reads them when it opens, in the language the page has by then.
    window.customCards.push({
      type: CARD_TYPE,
      get name() {
        return localize(languageOf(null), "card_name");
      },
      get description() {
        return localize(languageOf(null), "card_description");
      },
      preview: true,
    });
  }
}
