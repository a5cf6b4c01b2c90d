/**
 * The dashboard page's script (inline in the page; its hash goes into the CSP): polls
 * `GET /api/services`, keeps ~2 minutes of samples per service, draws the charts, runs the
 * management actions. One browser program (a single IIFE) kept in four parts by concern, joined
 * here in order; the parts share the IIFE's scope. Must not contain `</script>`.
 */
import { SCRIPT_ACTIONS } from "./script/actions.js";
import { SCRIPT_CARDS } from "./script/cards.js";
import { SCRIPT_CHARTS } from "./script/charts.js";
import { SCRIPT_CORE } from "./script/core.js";

export const DASHBOARD_SCRIPT = `${SCRIPT_CORE}${SCRIPT_CARDS}${SCRIPT_CHARTS}${SCRIPT_ACTIONS}`;
