import { generateKeyPair, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { parseJsonText } from '../store/json-file.js';
import { moveAside } from '../store/move-aside.js';
import { writeFileAtomic } from '../store/write-file-atomic.js';

export const KEYS_FILE_NAME = 'connectors-keys.json';

const KeysSchema = z.object({
  version: z.literal(1),
  /** Sign oidc-provider's cookies (the consent flow's interaction and session). */
  cookieKeys: z.array(z.string().min(32)).min(1),
  /** Signs ID tokens for clients that ask for `openid`. */
  signingKey: z.looseObject({ kty: z.string(), d: z.string() }),
});
export type ProviderKeys = z.infer<typeof KeysSchema>;

/**
 * The authorization server's own secrets, created at first start and kept (mode 0600) so that a
 * restart keeps consent cookies and ID token signatures valid. A corrupt file is moved aside and
 * new keys made: logins in progress must start again, issued tokens are not affected.
 */
export async function loadProviderKeys(configDir: string, log: Logger): Promise<ProviderKeys> {
  const file = join(configDir, KEYS_FILE_NAME);
  const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (text !== undefined) {
    const parsed = parseJsonText(text, KeysSchema);
    if (parsed.ok) return parsed.value;
    const aside = await moveAside(file);
    log.error(
      { file, movedTo: aside, err: parsed.problem },
      'the connectors keys file is corrupt; made new keys',
    );
  }
  const keys: ProviderKeys = {
    version: 1,
    cookieKeys: [randomBytes(32).toString('base64url')],
    signingKey: await rsaSigningKey(),
  };
  try {
    await writeFileAtomic(file, `${JSON.stringify(keys)}\n`, { mode: 0o600 });
  } catch (error) {
    log.warn(
      { file, err: errorMessage(error) },
      'could not save the connectors keys; logins in progress end with the daemon',
    );
  }
  return keys;
}

function rsaSigningKey(): Promise<ProviderKeys['signingKey']> {
  return new Promise((resolve, reject) => {
    generateKeyPair('rsa', { modulusLength: 2048 }, (error, _publicKey, privateKey) => {
      if (error) reject(error);
      else {
        const jwk = privateKey.export({ format: 'jwk' });
        resolve({
          ...jwk,
          kty: String(jwk.kty),
          d: String(jwk.d),
          use: 'sig',
          alg: 'RS256',
          kid: randomBytes(8).toString('hex'),
        });
      }
    });
  });
}
