import { existsSync, readFileSync } from 'node:fs';
import type { Check, DoctorOptions } from './doctor.js';
import { defaultContext, installCommands, managerUnusable, run } from './manager.js';
import { LAUNCHD_LABEL, SYSTEMD_UNIT, unitPath } from './templates.js';

/** The service: installed (optional), pointing at files that exist, and running. */
export async function serviceChecks(options: DoctorOptions): Promise<Check[]> {
  const file = unitPath(options.platform, options.env);
  if (!existsSync(file)) {
    return [
      {
        name: 'service',
        status: 'skip',
        detail: `not installed (optional: mcp-bridge service install writes ${file})`,
      },
    ];
  }
  const text = readFileSync(file, 'utf8');
  const programs = unitPrograms(options.platform, text);
  const missing = programs.filter((p) => !existsSync(p));
  const checks: Check[] = [];
  if (programs.length < 2 || missing.length > 0) {
    checks.push({
      name: 'service unit',
      status: 'fail',
      detail:
        programs.length < 2
          ? `${file} does not name node and bin/mcp-bridge.js`
          : `${file} runs ${missing.join(' and ')}, which no longer exist(s)`,
      fix: 'mcp-bridge service install (rewrites the unit with this node and this mcp-bridge)',
    });
  } else {
    checks.push({ name: 'service unit', status: 'pass', detail: `${file} runs ${programs.join(' ')}` });
  }
  const ctx = defaultContext({ platform: options.platform, env: options.env, uid: options.uid });
  const unusable = await managerUnusable(ctx);
  if (unusable) {
    checks.push({
      name: 'service running',
      status: 'fail',
      detail: `cannot ask: ${unusable}`,
      fix: `in your login session: ${installCommands(ctx, file).join('; ')}`,
    });
    return checks;
  }
  const running =
    options.platform === 'darwin'
      ? await run('launchctl', ['print', `gui/${options.uid}/${LAUNCHD_LABEL}`], options.env).then(
          (r) => r.code === 0 && /\bstate = running\b/.test(r.stdout),
        )
      : await run('systemctl', ['--user', 'is-active', SYSTEMD_UNIT], options.env).then(
          (r) => r.stdout.trim() === 'active',
        );
  checks.push(
    running
      ? {
          name: 'service running',
          status: 'pass',
          detail: `${options.platform === 'darwin' ? LAUNCHD_LABEL : SYSTEMD_UNIT} is running`,
        }
      : {
          name: 'service running',
          status: 'fail',
          detail: 'installed but not running',
          fix: 'mcp-bridge service restart; if it stops again, see mcp-bridge service logs and mcp-bridge service status',
        },
  );
  return checks;
}

/** The node and script a unit we wrote runs (ExecStart= or ProgramArguments). */
function unitPrograms(platform: DoctorOptions['platform'], text: string): string[] {
  if (platform === 'darwin') {
    const array = /<key>ProgramArguments<\/key>\s*<array>([\s\S]*?)<\/array>/.exec(text)?.[1] ?? '';
    return [...array.matchAll(/<string>([^<]*)<\/string>/g)]
      .slice(0, 2)
      .map((m) => m[1]!.replace(/&amp;/g, '&'));
  }
  const line = /^ExecStart=(.*)$/m.exec(text)?.[1] ?? '';
  return [...line.matchAll(/"((?:[^"\\]|\\.)*)"/g)]
    .slice(0, 2)
    .map((m) => m[1]!.replace(/\\(.)/g, '$1').replace(/%%/g, '%').replace(/\$\$/g, '$'));
}
