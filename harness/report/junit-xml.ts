// The JUnit XML pieces both JUnit writers share: the nightly's (one testcase
// per matrix cell, harness/nightly/junit.ts) and a single run's
// (harness/report/junit-run.ts). Pure.

// XML 1.0 cannot carry most control characters even escaped; kernel consoles have them.
export function xmlEscape(text: string): string {
  return text
    .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

export interface JUnitCase {
  classname: string;
  name: string;
  seconds: number;
  /** What is not a pass: a finding (failure), a run that could not be judged (error), one that did not run (skipped). */
  outcome?: { element: 'failure' | 'error' | 'skipped'; message: string; type?: string; text?: string };
  systemOut?: string;
}

/** One <testcase>, as lines indented for a <testsuite>. */
export function testcaseXml(testcase: JUnitCase): string[] {
  const open = `    <testcase classname="${xmlEscape(testcase.classname)}" name="${xmlEscape(testcase.name)}" time="${testcase.seconds.toFixed(1)}"`;
  const { outcome } = testcase;
  const inner: string[] = [];
  if (outcome) {
    const attributes = `message="${xmlEscape(outcome.message)}"${outcome.type === undefined ? '' : ` type="${xmlEscape(outcome.type)}"`}`;
    inner.push(outcome.text === undefined ? `      <${outcome.element} ${attributes}/>` : `      <${outcome.element} ${attributes}>${xmlEscape(outcome.text)}</${outcome.element}>`);
  }
  if (testcase.systemOut !== undefined) inner.push(`      <system-out>${xmlEscape(testcase.systemOut)}</system-out>`);
  return inner.length ? [`${open}>`, ...inner, '    </testcase>'] : [`${open}/>`];
}
