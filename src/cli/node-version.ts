/**
 * The first thing the bin runs: on a Node older than 24, say so and stop, instead of failing later in
 * some unrelated way (or, worse, half working). `#!/usr/bin/env node` takes the first `node` on PATH,
 * often a distribution's older one. Written in syntax every Node can parse (no `?.`, `??`, class
 * fields), and with no imports, so that it gets to run: main.ts imports it first.
 */
const MINIMUM_MAJOR = 24;

const running = process.versions.node;
if (Number(running.split('.')[0]) < MINIMUM_MAJOR) {
  process.stderr.write(
    'error: diginfractl needs Node.js ' + MINIMUM_MAJOR + ' or newer; this is Node.js ' + running + ' (' + process.execPath + ')\n' +
      'hint: put a Node ' + MINIMUM_MAJOR + ' first on PATH: in a checkout of diginfractl, export PATH="$PWD/node_modules/.bin:$PATH" (npm ci installs Node ' +
      MINIMUM_MAJOR + ' there); see "Getting diginfractl on your PATH" in the README\n',
  );
  process.exit(1);
}

export {};
