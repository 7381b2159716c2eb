// The status page's sections other than the upstreams (see status.js).
import { codeLink, copyButton, h, plural, table, when } from './dom.js';

export function problems(d) {
  const out = [];
  if (d.configError)
    out.push(
      h(
        'div',
        { class: 'problem', role: 'alert' },
        h(
          'p',
          null,
          h('strong', null, 'The config file did not load'),
          ' (',
          when(d.configError.at),
          '); the daemon runs the last good one:',
        ),
        h('pre', null, d.configError.message),
      ),
    );
  for (const w of d.warnings) out.push(h('div', { class: 'problem warn' }, h('p', null, w)));
  if (d.restartNeeded.length)
    out.push(
      h(
        'div',
        { class: 'problem warn' },
        h(
          'p',
          null,
          'Changed in the config, applied after a restart of the daemon: ',
          d.restartNeeded.join(', '),
        ),
      ),
    );
  if (d.clashes.length)
    out.push(
      h(
        'div',
        { class: 'problem warn' },
        h('p', null, h('strong', null, 'Name clashes between upstreams:')),
        h(
          'ul',
          null,
          d.clashes.map((c) => h('li', null, c)),
        ),
      ),
    );
  return out;
}

export function calls(d) {
  if (d.recentCalls === null) return [];
  const rows = d.recentCalls.map((c) =>
    h(
      'tr',
      null,
      h('td', null, c.time ? when(c.time) : '—'),
      h('td', null, [
        c.client.name ?? 'unknown',
        c.client.era ? ` (${c.client.era}${c.client.listener === 'public' ? ', public' : ''})` : '',
      ]),
      h('td', null, c.kind),
      h(
        'td',
        null,
        h('code', null, c.name ?? ''),
        c.original && c.original !== c.name ? ` (${c.original})` : '',
      ),
      h('td', null, c.upstream ?? '—'),
      h('td', { class: 'num' }, c.durationMs === null ? '—' : `${Math.round(c.durationMs)} ms`),
      h(
        'td',
        { class: `o-${c.outcome}` },
        c.outcome?.replace('_', ' ') ?? '',
        c.errorCode ? [' ', codeLink(c.errorCode)] : '',
      ),
      h('td', { class: 'num' }, c.resultBytes === null ? '—' : `${c.resultBytes} B`),
    ),
  );
  return [
    h('h2', null, `Last ${plural(d.recentCalls.length, 'call')}`),
    rows.length
      ? table(['When', 'Client', 'Kind', 'Name', 'Upstream', 'Took', 'Outcome', 'Result'], rows)
      : h('p', { class: 'muted' }, 'No calls yet.'),
  ];
}

export function publicListener(d) {
  if (!d.public) return [];
  const p = d.public;
  const rows = (d.connectors ?? []).map((c) =>
    h(
      'tr',
      null,
      h('td', null, c.clientName ?? '(no name)', h('br'), h('code', null, c.clientId)),
      h('td', null, c.redirectHosts.join(', ')),
      h('td', null, c.createdAt ? when(c.createdAt) : '—'),
      h('td', null, c.lastUsedAt ? when(c.lastUsedAt) : 'never'),
      h('td', null, c.scopes.join(' ')),
      h('td', { class: 'num' }, String(c.grants)),
    ),
  );
  return [
    h('h2', null, 'Public listener'),
    h(
      'p',
      null,
      h('code', null, p.url),
      ` on port ${p.port}, exposing ${p.exposes.length ? p.exposes.join(', ') : 'nothing'}. Revoke with `,
      h('code', null, 'mcp-bridge connectors revoke ID'),
      '.',
    ),
    rows.length
      ? table(['Connector', 'Redirects to', 'Added', 'Last used', 'Scopes', 'Grants'], rows)
      : h('p', { class: 'muted' }, 'No connectors yet.'),
  ];
}

export function snippets(d) {
  const hint = d.tokenPlaceholder
    ? h(
        'p',
        null,
        'Replace ',
        h('code', null, d.tokenPlaceholder),
        ' with your access token. The page never shows it; ',
        h('code', null, 'mcp-bridge clients'),
        ' prints these settings with it filled in.',
      )
    : h('p', null, 'The endpoint needs no token ("auth": "none").');
  return [
    h('h2', null, 'Connect a client'),
    hint,
    ...d.snippets.map((s, i) =>
      h(
        'section',
        { class: 'snippet' },
        h('div', { class: 'row' }, h('h3', null, s.client), copyButton(s.text, 'Copy', `snippet:${i}`)),
        h('p', { class: 'muted' }, s.where),
        h('pre', null, h('code', null, s.text)),
      ),
    ),
  ];
}
