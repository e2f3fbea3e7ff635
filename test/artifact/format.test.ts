import { describe, expect, it } from 'vitest';
import {
  artifactLayers,
  checkConfigForPush,
  configMediaType,
  floatingTags,
  layerMediaType,
  parseArtifactConfig,
  typeFromMediaType,
} from '../../src/artifact/format.js';

describe('artifact format', () => {
  it('derives media types for any lower-case type', () => {
    expect(configMediaType('rulesfile')).toBe('application/vnd.cncf.diginfra.rulesfile.config.v1+json');
    expect(layerMediaType('plugin')).toBe('application/vnd.cncf.diginfra.plugin.layer.v1+tar.gz');
    expect(typeFromMediaType(layerMediaType('asset'))).toBe('asset');
    expect(typeFromMediaType('application/vnd.oci.image.config.v1+json')).toBeUndefined();
    expect(() => configMediaType('Rules')).toThrow(/lower-case word/);
  });

  it('validates configs read from registries and ignores unknown fields', () => {
    expect(
      parseArtifactConfig({ name: 'r', version: '1.0.0', extra: 1, dependencies: [{ name: 'p', version: '1.0.0', alternatives: [] }] }, 'x'),
    ).toEqual({ name: 'r', version: '1.0.0', dependencies: [{ name: 'p', version: '1.0.0' }] });
    expect(() => parseArtifactConfig({ name: 'r' }, 'ref')).toThrow('ref: "version" must be a non-empty string');
    expect(() => parseArtifactConfig([], 'ref')).toThrow(/not a JSON object/);
  });

  it('requires strict semver and a valid name on push', () => {
    expect(() => checkConfigForPush({ name: 'r', version: 'v1.0.0' })).toThrow(/strict semver/);
    expect(() => checkConfigForPush({ name: 'r', version: '1.0' })).toThrow(/strict semver/);
    expect(() => checkConfigForPush({ name: 'R', version: '1.0.0' })).toThrow(/artifact name/);
    expect(checkConfigForPush({ name: 'r', version: '1.0.0-rc.1' }).version).toBe('1.0.0-rc.1');
  });

  it('computes floating tags, none for prereleases', () => {
    expect(floatingTags('1.2.3')).toEqual(['1.2', '1']);
    expect(floatingTags('1.2.3-rc.1')).toEqual([]);
  });

  it('finds the artifact layers of a manifest', () => {
    const layer = { mediaType: layerMediaType('rulesfile'), digest: 'sha256:x', size: 1 };
    const other = { mediaType: 'application/octet-stream', digest: 'sha256:y', size: 1 };
    const m = { schemaVersion: 2 as const, config: { mediaType: configMediaType('rulesfile'), digest: 'sha256:c', size: 2 }, layers: [layer, other] };
    expect(artifactLayers(m)).toEqual({ type: 'rulesfile', layers: [layer] });
  });
});
