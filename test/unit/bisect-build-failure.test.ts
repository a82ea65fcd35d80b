import test from 'ava';
import { isCodeError } from '../../harness/bisect/trial.ts';

test('a compiler or linker error at a source line is the commit\'s: skip it at once', (t) => {
  t.true(isCodeError(['/wt/drivers/iommu/iommu.c:192:53: error: expected expression before ‘}’ token']));
  t.true(isCodeError(['include/linux/iommu.h:12: fatal error: foo.h: No such file or directory']));
  t.true(isCodeError(['ld: vmlinux.o: in function `x`:', "iommu.c:(.text+0x1): undefined reference to `iommu_foo'"]));
});

test('a failure that names no source line may be the build directory\'s: worth one more try', (t) => {
  t.false(isCodeError(['make[2]: *** [/wt/Makefile:788: .config] Error 1']));
  t.false(isCodeError(['No space left on device']));
  t.false(isCodeError([]));
});
