/**
 * Homelab Metrics export card: pick a server and a range, click CSV or JSON, and the browser
 * downloads the file through a signed link (streamed to disk; nothing is held in memory here).
 *
 * Plain custom elements, no build step. The pure helpers are exported for the unit tests.
 *
 * How a failing export is caught before the browser gets the link: the card GETs the very URL it
 * will hand over (with the session's token), reads only the status and headers, and aborts the body.
 * The view answers bad parameters (400) and unknown servers (404) before it streams anything, so
 * that status is the verdict, with the view's JSON message to show. A HEAD request is not used: Home
 * Assistant routes only the methods a view defines (GET here), and signed paths accept only GET.
 * The cost is the first chunk of one export, small next to the download itself. The server list (refreshed every
 * minute) decides whether the button is enabled at all.
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
export const DEFAULT_RANGE = "24h";
const SIGN_EXPIRES = 300;
const REFRESH_MS = 60_000;

function findRange(range) {
  const found = RANGES.find((r) => r.value === range);
  if (!found) throw new Error(`unknown range "${range}"`);
  return found;
}

/** Check a card config and fill in defaults; throws an Error a dashboard can show. */
export function validateConfig(config) {
  if (!config || typeof config !== "object" || Array.isArray(config)) {
    throw new Error("homelab-metrics-export-card: the card needs a configuration");
  }
  const range = config.range ?? DEFAULT_RANGE;
  if (!RANGES.some((r) => r.value === range)) {
    throw new Error(
      `homelab-metrics-export-card: range must be one of ${RANGES.map((r) => r.value).join(", ")} (got "${range}")`,
    );
  }
  if (config.server !== undefined && (typeof config.server !== "string" || !config.server)) {
    throw new Error('homelab-metrics-export-card: server must be a server id such as "nas"');
  }
  if (config.title !== undefined && typeof config.title !== "string") {
    throw new Error("homelab-metrics-export-card: title must be text");
  }
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
 * Why the export cannot run now, or null. `servers` is the integration's list (null while it
 * loads); an offline server still exports what it recorded before, unless the range holds none.
 */
export function disabledReason(servers, serverId, range, nowSeconds) {
  if (servers === null) return null;
  if (!servers.length) {
    return "No Homelab Metrics server is set up yet: add one under Settings → Devices & services.";
  }
  if (!serverId) return "Choose a server.";
  const server = servers.find((s) => s.server_id === serverId);
  if (!server) return `There is no Homelab Metrics server with the id "${serverId}".`;
  const hasData = server.last_sample != null && server.last_sample >= rangeStart(range, nowSeconds);
  if (!server.online && !hasData) {
    return `${server.name} is offline and has no data in the last ${findRange(range).label}.`;
  }
  return null;
}

/** The message of a failed export: the view's JSON message when there is one. */
export async function errorMessage(response) {
  try {
    const body = await response.json();
    if (body && typeof body.message === "string" && body.message) return body.message;
  } catch (_err) {
    // not JSON (a proxy's error page, say): the status line is all there is
  }
  return `Export failed (HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ""}).`;
}

/** Text of an error thrown by hass.callApi / hass.callWS / fetch, for the card. */
export function describeError(err) {
  const text = err?.body?.message ?? err?.message ?? err?.error ?? err?.code;
  return text ? String(text) : String(err);
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
  h2 { margin: 0 0 12px; font-size: var(--ha-card-header-font-size, 20px); font-weight: 400; }
  .row { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; }
  .ranges { display: flex; flex-wrap: wrap; gap: 4px; flex: 1 1 auto; }
  button {
    font: inherit; cursor: pointer; border-radius: 18px; padding: 6px 14px;
    border: 1px solid var(--divider-color, #e0e0e0);
    background: transparent; color: var(--primary-text-color, #212121);
  }
  button[aria-pressed="true"] {
    background: var(--primary-color, #03a9f4); color: var(--text-primary-color, #fff);
    border-color: var(--primary-color, #03a9f4);
  }
  button:disabled { opacity: 0.5; cursor: not-allowed; }
  .export { position: relative; }
  .export > button {
    background: var(--primary-color, #03a9f4); color: var(--text-primary-color, #fff);
    border-color: var(--primary-color, #03a9f4);
  }
  .menu {
    position: absolute; right: 0; top: calc(100% + 4px); z-index: 2; min-width: 120px;
    display: flex; flex-direction: column; padding: 4px;
    background: var(--card-background-color, #fff); border-radius: 8px;
    border: 1px solid var(--divider-color, #e0e0e0); box-shadow: 0 2px 8px rgba(0, 0, 0, 0.2);
  }
  .menu button { border: none; border-radius: 4px; text-align: left; }
  .menu button:hover { background: var(--secondary-background-color, #f5f5f5); }
  select {
    font: inherit; padding: 6px; border-radius: 6px; max-width: 100%;
    border: 1px solid var(--divider-color, #e0e0e0);
    background: var(--card-background-color, #fff); color: var(--primary-text-color, #212121);
  }
  .note { margin-top: 10px; font-size: 0.9em; color: var(--secondary-text-color, #727272); }
  .error { margin-top: 10px; color: var(--error-color, #db4437); }
  .server { display: flex; flex-wrap: wrap; align-items: center; gap: 8px; margin-bottom: 10px; }
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
    this._onOutside = (event) => {
      if (this._menuOpen && !event.composedPath().includes(this)) this._setMenu(false);
    };
    this._onKey = (event) => {
      if (event.key === "Escape" && this._menuOpen) {
        this._setMenu(false);
        this.shadowRoot?.querySelector("button.open")?.focus();
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
    this._config = validateConfig(config);
    this._range = this._config.range;
    this._serverId = this._config.server ?? this._firstServerId();
    this._render();
  }

  set hass(hass) {
    const first = !this._hass;
    this._hass = hass;
    if (first) this._loadServers();
  }

  get hass() {
    return this._hass;
  }

  getCardSize() {
    return 2;
  }

  getGridOptions() {
    return { columns: 6, min_columns: 3 };
  }

  connectedCallback() {
    document.addEventListener("click", this._onOutside, true);
    document.addEventListener("keydown", this._onKey);
    // A server that goes offline (or is removed) changes whether the button may be used.
    this._timer = setInterval(() => this._loadServers(), REFRESH_MS);
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

  async _loadServers() {
    if (!this._hass) return;
    try {
      this._servers = await this._hass.callApi("GET", "homelab_metrics/servers");
      if (!this._config?.server && !this._servers.some((s) => s.server_id === this._serverId)) {
        this._serverId = this._firstServerId();
      }
      if (this._error?.startsWith("Could not list")) this._error = null;
    } catch (err) {
      this._servers ??= [];
      this._error = `Could not list the servers: ${describeError(err)}`;
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
      const abort = new AbortController();
      const probe = await this._hass.fetchWithAuth(path, { signal: abort.signal });
      if (!probe.ok) {
        this._error = await errorMessage(probe);
        return;
      }
      abort.abort();
      const signed = await this._hass.callWS({ type: "auth/sign_path", path, expires: SIGN_EXPIRES });
      const link = document.createElement("a");
      link.href = signed.path;
      link.download = exportFilename(this._serverId, this._range, format, Date.now() / 1000);
      link.style.display = "none";
      this.shadowRoot.appendChild(link);
      link.click();
      link.remove();
    } catch (err) {
      this._error = `Export failed: ${describeError(err)}`;
    } finally {
      this._busy = false;
      this._render();
    }
  }

  _render() {
    if (!this._config) return;
    if (!this.shadowRoot) this.attachShadow({ mode: "open" });
    const server = (this._servers ?? []).find((s) => s.server_id === this._serverId) ?? null;
    const reason = disabledReason(this._servers, this._serverId, this._range, Date.now() / 1000);
    const disabled = this._busy || this._servers === null || reason !== null;
    const title = this._config.title ?? (server && this._config.server ? `${server.name} metrics` : "Homelab metrics");
    const picker =
      this._config.server || !this._servers?.length
        ? ""
        : `<label class="server">Server <select>${this._servers
            .map(
              (s) =>
                `<option value="${escapeHtml(s.server_id)}" ${s.server_id === this._serverId ? "selected" : ""}>${escapeHtml(s.name)}${s.online ? "" : " (offline)"}</option>`,
            )
            .join("")}</select></label>`;
    const ranges = RANGES.map(
      (r) =>
        `<button class="range" data-range="${r.value}" title="Last ${r.label}" aria-pressed="${r.value === this._range}">${r.value}</button>`,
    ).join("");
    const menu = this._menuOpen
      ? `<div class="menu" role="menu">${FORMATS.map(
          (f) => `<button role="menuitem" data-format="${f}">${f.toUpperCase()}</button>`,
        ).join("")}</div>`
      : "";
    const Tag = customElements.get("ha-card") ? "ha-card" : "div";
    this.shadowRoot.innerHTML = `
      <style>${STYLE}</style>
      <${Tag} class="${Tag === "div" ? "card" : ""}" aria-busy="${this._busy}">
        <h2>${escapeHtml(title)}</h2>
        ${picker}
        <div class="row">
          <div class="ranges" role="group" aria-label="Range">${ranges}</div>
          <div class="export">
            <button class="open" aria-haspopup="menu" aria-expanded="${this._menuOpen}" ${disabled ? "disabled" : ""}>
              ${this._busy ? '<span class="spinner" aria-hidden="true"></span>Preparing…' : "Export ▾"}
            </button>
            ${menu}
          </div>
        </div>
        ${reason ? `<div class="note">${escapeHtml(reason)}</div>` : ""}
        ${this._error ? `<div class="error" role="alert">${escapeHtml(this._error)}</div>` : ""}
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
    root.querySelectorAll("[data-format]").forEach((b) =>
      b.addEventListener("click", () => this._export(b.dataset.format)),
    );
    root.querySelector("select")?.addEventListener("change", (event) => {
      this._serverId = event.target.value;
      this._error = null;
      this._render();
    });
  }
}

/** The card's visual editor: server, default range, title. */
export class HomelabMetricsExportCardEditor extends Base {
  constructor() {
    super();
    this._config = {};
    this._hass = null;
    this._servers = [];
  }

  setConfig(config) {
    this._config = { ...config };
    this._render();
  }

  set hass(hass) {
    const first = !this._hass;
    this._hass = hass;
    if (first) {
      hass
        .callApi("GET", "homelab_metrics/servers")
        .then((servers) => {
          this._servers = servers;
          this._render();
        })
        .catch(() => {
          // The card itself shows why the list is unavailable; the editor keeps the id field.
        });
    }
  }

  _changed(key, value) {
    this._config = editConfig(this._config, key, value);
    this.dispatchEvent(
      new CustomEvent("config-changed", { detail: { config: this._config }, bubbles: true, composed: true }),
    );
  }

  _render() {
    if (!this.shadowRoot) this.attachShadow({ mode: "open" });
    const c = this._config;
    const known = this._servers.some((s) => s.server_id === c.server);
    const options = this._servers.map(
      (s) =>
        `<option value="${escapeHtml(s.server_id)}" ${s.server_id === c.server ? "selected" : ""}>${escapeHtml(s.name)}</option>`,
    );
    // Keep a configured id the list does not know (yet), so opening the editor does not drop it.
    if (c.server && !known) {
      options.push(`<option value="${escapeHtml(c.server)}" selected>${escapeHtml(c.server)}</option>`);
    }
    this.shadowRoot.innerHTML = `
      <style>
        label { display: flex; flex-wrap: wrap; align-items: center; gap: 8px; margin: 8px 0; }
        select, input {
          font: inherit; padding: 6px; border-radius: 6px; flex: 1 1 160px; max-width: 100%;
          border: 1px solid var(--divider-color, #e0e0e0);
          background: var(--card-background-color, #fff); color: var(--primary-text-color, #212121);
        }
      </style>
      <label>Server <select name="server"><option value="">(choose on the card)</option>${options.join("")}</select></label>
      <label>Range selected first <select name="range">${RANGES.map(
        (r) => `<option value="${r.value}" ${r.value === (c.range ?? DEFAULT_RANGE) ? "selected" : ""}>${r.label}</option>`,
      ).join("")}</select></label>
      <label>Title <input name="title" placeholder="Homelab metrics" value="${escapeHtml(c.title ?? "")}"></label>`;
    this.shadowRoot.querySelectorAll("select, input").forEach((el) =>
      el.addEventListener("change", () => this._changed(el.name, el.value)),
    );
  }
}

/** A config with one field set by the editor; an empty value removes the field. */
export function editConfig(config, key, value) {
  const next = { ...config };
  if (value === "" || value === undefined || value === null) delete next[key];
  else next[key] = value;
  return next;
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
    window.customCards.push({
      type: CARD_TYPE,
      name: "Homelab Metrics export",
      description: "Download a server's metric history as CSV or JSON.",
      preview: true,
    });
  }
}
