import { afterEach, describe, expect, it } from 'vitest';
import { BridgeError } from '../../src/errors.js';
import { createSilentLogger } from '../../src/log.js';
import { defaultTransportFactory } from '../../src/upstream/registry.js';
import { Upstream } from '../../src/upstream/upstream.js';
import { fakeUpstream } from '../helpers/fake-server.js';
import { waitFor } from '../helpers/wait.js';

const logger = createSilentLogger();
const lostGrant = () => new BridgeError('NEEDS_AUTH', 'upstream "p" needs a login: the grant is gone');

describe('an upstream that loses its grant', () => {
  const started: Upstream[] = [];
  afterEach(async () => {
    for (const upstream of started.splice(0)) await upstream.stop();
  });

  function upstream(): Upstream {
    const created = new Upstream({
      config: fakeUpstream('p'),
      logger,
      createTransport: defaultTransportFactory({ logger }),
      pingIntervalMs: 0,
      backoff: { minMs: 200, maxMs: 400, factor: 2 },
    });
    started.push(created);
    return created;
  }

  it('reports the login to a call it cut off, even when a stop comes right after', async () => {
    const u = upstream();
    u.start();
    await waitFor(() => u.snapshot().state === 'ready', 'ready');
    const call = u.callTool({ name: 'slow', arguments: { ms: 3000 } }).then(
      () => undefined,
      (error: unknown) => error,
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    u.requireAuth(lostGrant());
    const stopping = u.stop();
    expect(await call).toMatchObject({ code: 'NEEDS_AUTH' });
    await stopping;
  });
});
