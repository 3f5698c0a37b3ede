/**
 * Homelab Metrics export card: pick a server and a range, click CSV or JSON, and the browser
 * downloads the file through a signed link (streamed to disk; nothing is held in memory here).
 *
 * Plain custom elements, no build step. The pure helpers are exported for the unit tests.
 */

export const CARD_TYPE = "homelab-metrics-export-card";
export const RANGES = [
  { value: "24h", label: "24 hours", seconds: 86400 },
  { value: "7d", label: "7 days", seconds: 7 * 86400 },
  { value: "30d", label: "30 days", seconds: 30 * 86400 },
  { value: "12m", label: "12 months", seconds: 365 * 86400 },
];
export const FORMATS = ["csv", "json"];
const SIGN_EXPIRES = 300;

/** Check a card config and fill in defaults; throws an Error a dashboard can show. */
export function validateConfig(config) {
  if (!config || typeof config !== "object") {
    throw new Error("homelab-metrics-export-card: the card needs a configuration");
  }
  const range = config.range ?? "24h";
  if (!RANGES.some((r) => r.value === range)) {
    throw new Error(
      `homelab-metrics-export-card: range must be one of ${RANGES.map((r) => r.value).join(", ")} (got "${range}")`,
    );
  }
  if (config.server !== undefined && (typeof config.server !== "string" || !config.server)) {
    throw new Error("homelab-metrics-export-card: server must be a server id such as \"nas\"");
  }
  return { ...config, range };
}

/** The export URL (path and query) of the integration's view. */
export function exportPath(serverId, range, format, tz = "utc") {
  const query = new URLSearchParams({ range, format, tz });
  return `/api/homelab_metrics/servers/${encodeURIComponent(serverId)}/export?${query}`;
}

/** Why the export cannot run now, or null: an offline server without data in the range. */
export function disabledReason(server, range, nowSeconds) {
  if (!server) return "Choose a server.";
  const span = RANGES.find((r) => r.value === range)?.seconds ?? 0;
  const hasData = server.last_sample != null && server.last_sample >= nowSeconds - span;
  if (!server.online && !hasData) {
    return `${server.name} is offline and has no data in the last ${RANGES.find((r) => r.value === range)?.label}.`;
  }
  return null;
}

/** The message of a failed export: the view's JSON message when there is one. */
export async function errorMessage(response) {
  try {
    const body = await response.json();
    if (body && typeof body.message === "string") return body.message;
  } catch (_err) {
    // not JSON: fall through to the status line
  }
  return `Export failed (HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ""}).`;
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
  .server { margin-bottom: 10px; }
`;

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const Base = typeof HTMLElement === "undefined" ? class {} : HTMLElement;

export class HomelabMetricsExportCard extends Base {
  constructor() {
    super();
    this._config = null;
    this._hass = null;
    this._servers = null;
    this._serverId = null;
    this._range = "24h";
    this._menuOpen = false;
    this._busy = false;
    this._error = null;
    this._onOutside = (event) => {
      if (this._menuOpen && !event.composedPath().includes(this)) this._setMenu(false);
    };
    this._onKey = (event) => {
      if (event.key === "Escape" && this._menuOpen) this._setMenu(false);
    };
  }

  static getConfigElement() {
    return document.createElement(`${CARD_TYPE}-editor`);
  }

  static getStubConfig() {
    return { range: "24h" };
  }

  setConfig(config) {
    this._config = validateConfig(config);
    this._range = this._config.range;
    this._serverId = this._config.server ?? this._serverId;
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

  connectedCallback() {
    document.addEventListener("click", this._onOutside, true);
    document.addEventListener("keydown", this._onKey);
    this._render();
  }

  disconnectedCallback() {
    document.removeEventListener("click", this._onOutside, true);
    document.removeEventListener("keydown", this._onKey);
  }

  async _loadServers() {
    try {
      this._servers = await this._hass.callApi("GET", "homelab_metrics/servers");
      if (!this._serverId && this._servers.length) this._serverId = this._servers[0].server_id;
    } catch (err) {
      this._servers = [];
      this._error = `Could not list the servers: ${err?.body?.message ?? err?.message ?? err}`;
    }
    this._render();
  }

  _server() {
    return (this._servers ?? []).find((s) => s.server_id === this._serverId) ?? null;
  }

  _setMenu(open) {
    this._menuOpen = open;
    this._render();
  }

  async _export(format) {
    this._menuOpen = false;
    this._busy = true;
    this._error = null;
    this._render();
    try {
      const path = exportPath(this._serverId, this._range, format);
      // Check the export answers before handing it to the browser: headers only, body aborted.
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
      link.download = "";
      link.style.display = "none";
      this.shadowRoot.appendChild(link);
      link.click();
      link.remove();
    } catch (err) {
      this._error = `Export failed: ${err?.message ?? err}`;
    } finally {
      this._busy = false;
      this._render();
    }
  }

  _render() {
    if (!this._config) return;
    if (!this.shadowRoot) this.attachShadow({ mode: "open" });
    const server = this._server();
    const reason = this._servers === null ? null : disabledReason(server, this._range, Date.now() / 1000);
    const disabled = this._busy || this._servers === null || reason !== null;
    const title = this._config.title ?? (server ? `${server.name} metrics` : "Homelab metrics");
    const picker =
      this._config.server || !this._servers || this._servers.length < 2
        ? ""
        : `<div class="server"><select aria-label="Server">${this._servers
            .map(
              (s) =>
                `<option value="${escapeHtml(s.server_id)}" ${s.server_id === this._serverId ? "selected" : ""}>${escapeHtml(s.name)}</option>`,
            )
            .join("")}</select></div>`;
    const ranges = RANGES.map(
      (r) =>
        `<button class="range" data-range="${r.value}" aria-pressed="${r.value === this._range}">${r.value}</button>`,
    ).join("");
    const menu = this._menuOpen
      ? `<div class="menu" role="menu">${FORMATS.map(
          (f) => `<button role="menuitem" data-format="${f}">${f.toUpperCase()}</button>`,
        ).join("")}</div>`
      : "";
    const Tag = customElements.get("ha-card") ? "ha-card" : "div";
    this.shadowRoot.innerHTML = `
      <style>${STYLE}</style>
      <${Tag} class="${Tag === "div" ? "card" : ""}">
        <h2>${escapeHtml(title)}</h2>
        ${picker}
        <div class="row">
          <div class="ranges" role="group" aria-label="Range">${ranges}</div>
          <div class="export">
            <button class="open" aria-haspopup="menu" aria-expanded="${this._menuOpen}" ${disabled ? "disabled" : ""}>
              ${this._busy ? "Preparing…" : "Export ▾"}
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
        .catch(() => {});
    }
  }

  _changed(key, value) {
    const config = { ...this._config };
    if (value === "" || value === undefined) delete config[key];
    else config[key] = value;
    this._config = config;
    this.dispatchEvent(new CustomEvent("config-changed", { detail: { config }, bubbles: true, composed: true }));
  }

  _render() {
    if (!this.shadowRoot) this.attachShadow({ mode: "open" });
    const c = this._config;
    this.shadowRoot.innerHTML = `
      <style>label { display: block; margin: 8px 0; } select, input { font: inherit; margin-left: 8px; }</style>
      <label>Server <select name="server"><option value="">(choose on the card)</option>${this._servers
        .map(
          (s) =>
            `<option value="${escapeHtml(s.server_id)}" ${s.server_id === c.server ? "selected" : ""}>${escapeHtml(s.name)}</option>`,
        )
        .join("")}</select></label>
      <label>Default range <select name="range">${RANGES.map(
        (r) => `<option value="${r.value}" ${r.value === (c.range ?? "24h") ? "selected" : ""}>${r.label}</option>`,
      ).join("")}</select></label>
      <label>Title <input name="title" value="${escapeHtml(c.title ?? "")}"></label>`;
    this.shadowRoot.querySelectorAll("select, input").forEach((el) =>
      el.addEventListener("change", () => this._changed(el.name, el.value)),
    );
  }
}

/** Define the card and its editor in the registry Home Assistant's app uses. */
function register() {
  const registry = window.customElements;
  if (!registry.get(CARD_TYPE)) registry.define(CARD_TYPE, HomelabMetricsExportCard);
  if (!registry.get(`${CARD_TYPE}-editor`)) {
    registry.define(`${CARD_TYPE}-editor`, HomelabMetricsExportCardEditor);
  }
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
