// Pure helpers for patch files: which tool applies them, and what failed.

export type PatchFormat = 'mbox' | 'diff';

/**
 * `git format-patch` output and mailed patches (mbox) carry authorship and a
 * message, so `git am` keeps them as real commits; a bare diff goes through
 * `git apply`.
 */
export function detectPatchFormat(text: string): PatchFormat {
  const head = text.slice(0, 4096);
  if (/^From [0-9a-f]{40} /m.test(head) || /^From [^\n]*\d{4}$/m.test(head.split('\n')[0] ?? '')) return 'mbox';
  if (/^From: /m.test(head) && /^Subject: /m.test(head)) return 'mbox';
  return 'diff';
}

/** Files a patch touches, from its `diff --git` or `+++` lines. */
export function filesTouched(text: string): string[] {
  const files = new Set<string>();
  for (const match of text.matchAll(/^\+\+\+ (?:b\/)?(\S+)/gm)) {
    if (match[1] && match[1] !== '/dev/null') files.add(match[1]);
  }
  return [...files];
}

/**
 * The file git names when a patch does not apply. git apply and git am print
 * `error: patch failed: FILE:LINE` or `error: FILE: patch does not apply`
 * (or `does not exist in index`).
 */
export function failingFile(gitOutput: string): string | undefined {
  const patterns = [
    /^error: patch failed: (.+?):\d+$/m,
    /^error: (.+?): patch does not apply$/m,
    /^error: (.+?): does not exist in index$/m,
    /^error: (.+?): No such file or directory$/m,
  ];
  for (const pattern of patterns) {
    const match = pattern.exec(gitOutput);
    if (match?.[1]) return match[1];
  }
  return undefined;
}

/**
 * git's output without its advice: `hint:` lines and git am's "run git am
 * --continue / --skip / --abort", which would be wrong to follow in the
 * harness's own worktree (the harness aborts the am itself).
 */
export function withoutGitAdvice(lines: readonly string[]): string[] {
  const advice = [
    /^hint:/,
    /git am --(continue|skip|abort|show-current-patch)/,
    /^When you have resolved this problem/,
    /^If you prefer to skip this patch/,
    /^To restore the original branch/,
    /^The copy of the patch that failed is found in/,
    /^Use 'git am --show-current-patch/,
  ];
  return lines.filter((line) => line.trim() && !advice.some((pattern) => pattern.test(line.trim())));
}
