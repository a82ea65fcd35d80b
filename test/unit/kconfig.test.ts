import test from 'ava';
import { applyOptions, droppedOptions, mergeFragments, parseConfig, ConfigSyntaxError } from '../../harness/build/kconfig.ts';
import { loadFragments } from '../../harness/build/index.ts';

test('parses set, unset and string options and skips comments', (t) => {
  const config = parseConfig('# comment\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C="x y"\n\n');
  t.deepEqual([...config], [
    ['CONFIG_A', 'y'],
    ['CONFIG_B', 'n'],
    ['CONFIG_C', '"x y"'],
  ]);
});

test('a line that is not config is an error naming the fragment and line', (t) => {
  const error = t.throws(() => parseConfig('CONFIG_A=y\nINTEL_IOMMU=y\n', 'debug.config'), { instanceOf: ConfigSyntaxError });
  t.is(error?.message, 'debug.config:2: not a config line: INTEL_IOMMU=y');
});

test('later fragments win and =n unsets', (t) => {
  const merged = mergeFragments([
    { name: 'base', text: 'CONFIG_A=y\nCONFIG_B=y\n' },
    { name: 'user', text: 'CONFIG_B=n\nCONFIG_C=m\n' },
  ]);
  t.deepEqual(Object.fromEntries(merged), { CONFIG_A: 'y', CONFIG_B: 'n', CONFIG_C: 'm' });
  t.is(applyOptions('CONFIG_B=y\nCONFIG_Z=y\n', merged), 'CONFIG_Z=y\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=m\n');
});

test('requested choice members come last, where Kconfig lets them win', (t) => {
  const tiny = 'CONFIG_UNWINDER_ORC=n\nCONFIG_UNWINDER_GUESS=y\n'.replace('CONFIG_UNWINDER_ORC=n', '# CONFIG_UNWINDER_ORC is not set');
  const merged = applyOptions(tiny, new Map([['CONFIG_UNWINDER_ORC', 'y']]));
  t.is(merged, 'CONFIG_UNWINDER_GUESS=y\nCONFIG_UNWINDER_ORC=y\n');
});

test('an option olddefconfig dropped is named with what it became', (t) => {
  const requested = new Map([
    ['CONFIG_VFIO', 'y'],
    ['CONFIG_IOMMUFD', 'y'],
    ['CONFIG_MODULES', 'n'],
  ]);
  const final = 'CONFIG_VFIO=y\n# CONFIG_IOMMUFD is not set\n';
  t.deepEqual(droppedOptions(requested, final), [{ option: 'CONFIG_IOMMUFD', requested: 'y', actual: 'n' }]);
  t.deepEqual(droppedOptions(new Map([['CONFIG_MODULES', 'n']]), 'CONFIG_MODULES=y\n'), [
    { option: 'CONFIG_MODULES', requested: 'n', actual: 'y' },
  ]);
});

test('the shipped fragments parse and ask for what the harness relies on', async (t) => {
  const requested = mergeFragments(await loadFragments([]));
  for (const option of ['CONFIG_INTEL_IOMMU', 'CONFIG_VIRTIO_IOMMU', 'CONFIG_VFIO_PCI', 'CONFIG_IOMMUFD', 'CONFIG_VFIO_DEVICE_CDEV', 'CONFIG_PROVE_LOCKING', 'CONFIG_DYNAMIC_DEBUG']) {
    t.is(requested.get(option), 'y', option);
  }
});
