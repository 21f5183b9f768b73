/**
 * /v1/docs: the OpenAPI document rendered as one self-contained HTML page (no scripts, no
 * external assets).
 */
import { limits } from '../core/limits.ts';
import { problemContentType } from './problem.ts';
import { queryRoutes } from './queries.ts';

/** The lists whose filters a row's changes move it in or out of, as the docs page names them: /v1/units?siteId=. */
function filtersThatChange(): string[] {
  return queryRoutes.flatMap((route) => (route.order?.filtersThatChange ?? []).map((name) => `${route.path}?${name}=`));
}

const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);

/**
 * Named schemas the docs page writes out once, in a section of their own, rather than in
 * every answer that holds them: an event's body is one schema per kind (large when written
 * out), and more than one operation answers events.
 */
const docsPageSections: Readonly<Record<string, { heading: string; anchor: string }>> = {
  EventBody: { heading: 'Event bodies', anchor: 'event-bodies' },
};

/** A schema with every named schema written out in place (those of docsPageSections: a pointer to their section). */
function writtenOut(schema: unknown, schemas: Record<string, unknown>): unknown {
  if (Array.isArray(schema)) return schema.map((item) => writtenOut(item, schemas));
  if (schema === null || typeof schema !== 'object') return schema;
  const ref = (schema as { $ref?: unknown }).$ref;
  if (typeof ref === 'string' && ref.startsWith('#/components/schemas/')) {
    const name = ref.slice('#/components/schemas/'.length);
    const { $ref: _ref, ...beside } = schema as Record<string, unknown>;
    const section = docsPageSections[name];
    if (section !== undefined) return { ...beside, title: name, description: `${String(beside.description ?? '')} Written out below, under ${section.heading}.`.trim() };
    return writtenOut({ ...(schemas[name] as Record<string, unknown>), ...beside }, schemas);
  }
  return Object.fromEntries(Object.entries(schema).map(([key, value]) => [key, writtenOut(value, schemas)]));
}

/** An operation's JSON answer on success, with named schemas written out in place. */
function answerSchemaOf(document: Record<string, unknown>, operation: { responses?: Record<string, { content?: Record<string, { schema?: unknown }> }> }): unknown {
  const success = Object.entries(operation.responses ?? {}).find(([status]) => status.startsWith('2'))?.[1];
  const schema = success?.content?.['application/json']?.schema;
  if (schema === undefined) return undefined;
  return writtenOut(schema, (document.components as { schemas: Record<string, unknown> }).schemas);
}

/** The sections of docsPageSections: each a list of the schemas its oneOf names, written out. */
function docsSections(document: Record<string, unknown>): string {
  const schemas = (document.components as { schemas: Record<string, { description?: string; oneOf?: Array<{ $ref: string }> }> }).schemas;
  return Object.entries(docsPageSections).map(([name, section]) => {
    const items = (schemas[name]?.oneOf ?? []).map(({ $ref }) => {
      const part = $ref.slice('#/components/schemas/'.length);
      return `<details><summary><code>${escapeHtml(part)}</code></summary><pre>${escapeHtml(JSON.stringify(writtenOut(schemas[part], schemas), null, 2))}</pre></details>`;
    });
    return `<h2 id="${section.anchor}">${escapeHtml(section.heading)}</h2><p>${escapeHtml(schemas[name]?.description ?? '')}</p>\n${items.join('\n')}`;
  }).join('\n');
}

/**
 * The page's one style sheet, inline: its Content-Security-Policy (security-headers.ts)
 * allows this text by its SHA-256 and nothing else, so the text must not change per page.
 */
export const docsPageStyle = `
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;color:#1d2330}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #e3e6ec;padding:.4rem .6rem;text-align:left;vertical-align:top}
.m{font-weight:600;font-family:monospace}.get{color:#0a6b3d}.post{color:#1849a9}pre{background:#f5f6f8;padding:.5rem;overflow:auto;max-height:24rem}
`;

/** One page listing every operation, with what it takes and answers; no scripts, no external assets. */
export function renderDocsPage(document: Record<string, unknown>): string {
  const rows: string[] = [];
  for (const [path, methods] of Object.entries(document.paths as Record<string, Record<string, { summary?: string; 'x-roles'?: string[]; requestBody?: unknown; security?: unknown[] }>>)) {
    // A HEAD operation is its GET's twin: the page says so once, below.
    for (const [method, operation] of Object.entries(methods).filter(([name]) => name !== 'head')) {
      const security = operation.security as Array<Record<string, unknown>> | undefined;
      const roles = operation['x-roles'] ? operation['x-roles'].join(', ')
        : security?.length === 0 ? 'public'
          : security?.some((scheme) => Object.keys(scheme).length === 0) ? 'public; a token where the summary says'
            : 'any token (tenant-filtered)';
      const content = (operation.requestBody as { content?: Record<string, { schema?: unknown }> } | undefined)?.content ?? {};
      const schema = content['application/json']?.schema ?? Object.values(content)[0]?.schema;
      const body = schema === undefined ? '' : `<details><summary>body</summary><pre>${escapeHtml(JSON.stringify(schema, null, 2))}</pre></details>`;
      const answer = answerSchemaOf(document, operation as { responses?: Record<string, { content?: Record<string, { schema?: unknown }> }> });
      const answered = answer === undefined ? '' : `<details><summary>answer</summary><pre>${escapeHtml(JSON.stringify(answer, null, 2))}</pre></details>`;
      rows.push(`<tr><td class="m ${method}">${method.toUpperCase()}</td><td><code>${escapeHtml(path)}</code>${body}${answered}</td><td>${escapeHtml(operation.summary ?? '')}</td><td>${escapeHtml(roles)}</td></tr>`);
    }
  }
  const info = document.info as { title: string; description: string };
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(info.title)}</title>
<style>${docsPageStyle}</style></head><body>
<h1>${escapeHtml(info.title)}</h1><p>${escapeHtml(info.description)}</p>
<p>Authenticate with <code>Authorization: Bearer clt_…</code>. Every state-changing POST needs an <code>Idempotency-Key</code> header, except a witness's <code>POST /v1/log/cosignatures</code>: storing a cosignature again changes nothing.
A 503 (<code>unavailable</code> or <code>overloaded</code>) committed nothing or its outcome is unknown: send the same request again, with the same key, after its <code>Retry-After</code>.
A 429 (<code>too_many_requests</code>: your organisation's request bodies in flight, or the serials its commands hold in the ledger's queue, fill its share) committed nothing: send it again after its <code>Retry-After</code>.
Errors are <code>${problemContentType}</code> (RFC 9457) with a stable <code>code</code>. Lists take <code>?limit=</code> (at most ${limits.pageSizeMax}) and <code>?cursor=</code> and answer <code>{ items, nextCursor }</code>.
Each list is in a fixed order by a key that never changes (its answer's <code>nextCursor</code> says which), so a walk through its pages shows each row at most once;
pages are not a snapshot, and a walk under a filter on a field that can change (${filtersThatChange().map((filter) => `<code>${escapeHtml(filter)}</code>`).join(', ')}) can miss a row that leaves the filter and comes back between two pages.
Every GET also answers HEAD (status and headers, no body). The machine-readable document is <a href="openapi.json">/v1/openapi.json</a>.</p>
<table><thead><tr><th>method</th><th>path</th><th>what</th><th>who</th></tr></thead><tbody>
${rows.join('\n')}
</tbody></table>
${docsSections(document)}
</body></html>
`;
}
