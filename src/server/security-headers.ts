/**
 * Headers every answer carries so that a browser never treats one as something it is not.
 * The API answers JSON, text and bytes that quote what clients wrote (names, reasons, event
 * bodies in entry bundles); opened in a browser, none of it may be sniffed into HTML, run a
 * script, load anything, or be framed by another site. The one HTML page, /v1/docs, has no
 * script and one inline style sheet, which its own policy allows by hash.
 */
import { createHash } from 'node:crypto';
import { docsPageStyle } from './openapi-docs-page.ts';

/** Nothing loads, runs or frames: an answer opened in a browser is shown as it is, or not at all. */
const apiContentSecurityPolicy = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** On every answer, refusals and answers given before any route included (app.ts serverHeaders). */
export const securityHeaders: Readonly<Record<string, string>> = {
  'content-security-policy': apiContentSecurityPolicy,
  // A body is what its Content-Type says: a text or JSON answer holding markup stays text.
  'x-content-type-options': 'nosniff',
  // The docs page links to the document; a URL of ours (a shipment's id, a query) goes nowhere else.
  'referrer-policy': 'no-referrer',
};

/** The docs page: as every answer, but its own style sheet, by its SHA-256, may apply. */
export const docsPageContentSecurityPolicy = `${apiContentSecurityPolicy}; style-src 'sha256-${createHash('sha256').update(docsPageStyle).digest('base64')}'`;
