/** `diginfractl config validate FILE`: exit 0 when the file is a valid config, 1 with every problem. */
import { DiginfraError } from '../../errors.js';
import { loadConfigFile } from '../../config/index.js';
import { resolve } from 'node:path';
import { outputFormat, printJson, type CliContext } from '../run.js';

export async function runConfigValidate(ctx: CliContext, file: string, opts: { output?: string } = {}): Promise<void> {
  const format = outputFormat(opts.output);
  const path = resolve(file);
  const { exists, warnings } = await loadConfigFile(path);
  if (!exists) throw new DiginfraError('CONFIG_INVALID', `config ${path}: file not found`, { hint: 'give the path of an existing config file' });
  for (const w of warnings) ctx.logger.warn(w);
  if (format === 'json') printJson(ctx, { path, valid: true, warnings });
  else ctx.out(`config ${path}: valid`);
}
