import { badge, codeLink, copyButton, h, when } from './dom.js';

/** One upstream: its state in colour and words, its numbers, its last error and the fix, its buttons. */
export function upstreamCard(u, { notes, reconnect, logIn }) {
  const facts = [
    ['Kind', [u.kind, u.transport && u.transport !== u.kind ? ` (${u.transport})` : ''].join('')],
    ['Protocol', u.protocolVersion ?? '—'],
    ['Server', u.serverInfo ? `${u.serverInfo.name} ${u.serverInfo.version}` : '—'],
    ['Tools', `${u.toolCount}${u.toolsSource === 'cache' ? ' (cached list)' : ''}`],
    ['Prompts', u.promptCount ?? '—'],
    [
      'Resources',
      u.resourceCount === null
        ? '—'
        : `${u.resourceCount}${u.resourceTemplateCount ? ` + ${u.resourceTemplateCount} templates` : ''}`,
    ],
    ['Restarts', h('span', { 'data-field': 'restarts' }, String(u.restarts))],
    [u.state === 'ready' ? 'Up for' : 'In this state for', when(u.since, 'for')],
  ];
  if (u.pid !== null) facts.splice(6, 0, ['PID', h('span', { 'data-field': 'pid' }, String(u.pid))]);
  if (u.oauth) {
    const o = u.oauth;
    facts.push([
      'Access token',
      !o.loggedIn
        ? 'no login stored'
        : o.expiresAt
          ? h('span', null, 'expires ', when(o.expiresAt, 'in'))
          : 'no expiry given',
    ]);
    if (o.lastRefresh)
      facts.push([
        'Last refresh',
        h('span', null, when(o.lastRefresh.at), ` (${o.lastRefresh.outcome.replace('_', ' ')})`),
      ]);
    else if (o.obtainedAt) facts.push(['Obtained', when(o.obtainedAt)]);
  }
  const err = u.lastError;
  const fix = u.fix;
  const canLogIn = u.state === 'needs_auth' || fix?.command?.startsWith('npm run auth');
  return h(
    'article',
    { class: 'card', 'data-upstream': u.name, 'aria-labelledby': `u-${u.name}` },
    h('header', null, h('h3', { id: `u-${u.name}` }, u.name), badge(u.state)),
    h(
      'dl',
      { class: 'facts' },
      facts.map(([dt, dd]) => [h('dt', null, dt), h('dd', null, dd)]),
    ),
    err &&
      h(
        'div',
        { class: 'error' },
        h('p', null, 'Last error ', codeLink(err.code), ' ', when(err.at)),
        h('pre', null, err.message),
      ),
    u.lastExit &&
      u.state !== 'ready' &&
      h(
        'p',
        { class: 'muted' },
        `Last exit: ${u.lastExit.signal ? `signal ${u.lastExit.signal}` : `code ${u.lastExit.code}`}, `,
        when(u.lastExit.at),
      ),
    fix &&
      h(
        'div',
        { class: 'fix' },
        h('p', null, h('strong', null, 'To fix: '), fix.text),
        fix.missing && h('p', null, 'Missing: ', h('code', null, fix.missing)),
        fix.key && h('p', null, 'Config key: ', h('code', null, fix.key)),
        fix.command &&
          h(
            'div',
            { class: 'row' },
            h('pre', null, h('code', null, fix.command)),
            copyButton(fix.command, 'Copy', `fix:${u.name}`),
          ),
      ),
    h(
      'div',
      { class: 'row' },
      h(
        'button',
        { type: 'button', 'data-focus': `reconnect:${u.name}`, onclick: () => reconnect(u.name) },
        'Reconnect now',
      ),
      canLogIn &&
        h(
          'button',
          { type: 'button', class: 'primary', 'data-focus': `login:${u.name}`, onclick: () => logIn(u.name) },
          'Log in',
        ),
    ),
    notes.has(u.name) && h('p', { class: 'note', role: 'status' }, notes.get(u.name).text),
  );
}
