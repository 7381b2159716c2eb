import { runDoctor as checkSetup } from '../service/doctor.js';
import { servicePlatform } from '../service/manager.js';
import { parseCommandArgs } from './args.js';

const MARK = { pass: '✓', fail: '✗', skip: '–' } as const;

/** `mcp-bridge doctor [--json]`: exit 0 only when no check failed. */
export async function runDoctor(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('doctor', argv, {
    json: { type: 'boolean' },
    config: { type: 'string', short: 'c' },
  });
  const checks = await checkSetup({
    env: process.env,
    platform: servicePlatform(process.platform),
    configPath: values.config,
    uid: process.getuid?.() ?? 0,
  });
  const failed = checks.filter((c) => c.status === 'fail').length;
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ ok: failed === 0, checks }, null, 2)}\n`);
    return failed === 0 ? 0 : 1;
  }
  const lines: string[] = [];
  for (const c of checks) {
    lines.push(`${MARK[c.status]} ${c.name}: ${c.status === 'skip' ? 'does not apply: ' : ''}${c.detail}`);
    if (c.fix) lines.push(`    fix: ${c.fix}`);
  }
  const passed = checks.filter((c) => c.status === 'pass').length;
  const skipped = checks.length - passed - failed;
  lines.push('', `${passed} passed, ${failed} failed, ${skipped} did not apply.`);
  process.stdout.write(`${lines.join('\n')}\n`);
  return failed === 0 ? 0 : 1;
}
