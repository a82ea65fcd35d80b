// The environments the harness's children get. What the user's shell exports
// must not change what is built or where git writes: an inherited GIT_DIR
// redirects every `git -C`, KCFLAGS or CROSS_COMPILE change the kernel while
// its cache key says nothing of them. Messages are read by the harness
// (git's "patch does not apply", "No space left on device"), so they are in
// the C locale.

/** Variables a compiler or make is allowed to see: where programs and home are, and ccache's own settings. */
const buildPassThrough = /^(PATH|HOME|USER|LOGNAME|TMPDIR|CCACHE_[A-Z_]+)$/;

/**
 * make, gcc and tar: nothing but the pass-through variables, so Kbuild's
 * environment knobs (KCFLAGS, KCPPFLAGS, CROSS_COMPILE, ARCH, O, KCONFIG_CONFIG,
 * KBUILD_*, LOCALVERSION, MAKEFLAGS...), gcc's (CPATH, GCC_EXEC_PREFIX...) and
 * tar's (TAR_OPTIONS) never reach them.
 */
export function buildEnv(extra: Record<string, string> = {}, env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && buildPassThrough.test(name)) kept[name] = value;
  }
  return { ...kept, LC_ALL: 'C', ...extra };
}

/**
 * git: the user's environment without any GIT_* variable (GIT_DIR, GIT_WORK_TREE,
 * GIT_INDEX_FILE, GIT_OBJECT_DIRECTORY, GIT_CONFIG_PARAMETERS...), which would
 * point the harness's git at another repository or index. HOME stays, for the
 * user's global config (safe.directory); the risky settings are overridden
 * on the command line instead (see source/git.ts).
 */
export function gitEnv(extra: Record<string, string> = {}, env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && !name.startsWith('GIT_') && !/^(LANG|LANGUAGE|LC_[A-Z]+)$/.test(name)) kept[name] = value;
  }
  return { ...kept, LC_ALL: 'C', ...extra };
}
