// Prints the Debian packages of the requirement registry, one per line, for
// scripts/install-deps.sh and .ci/run. Arguments: purposes (default: what a
// user installs: harness, kernel build, default source, tests).
import { installPurposes, packagesFor, type Purpose } from '../harness/host/requirements.ts';

const purposes = process.argv.slice(2) as Purpose[];
process.stdout.write(`${packagesFor(purposes.length > 0 ? purposes : installPurposes).join('\n')}\n`);
