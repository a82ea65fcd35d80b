// SPDX-License-Identifier: Apache-2.0
// Derived from google/syzkaller pkg/report (linux.go: compile), Copyright syzkaller project authors,
// Apache License 2.0 (LICENSES/Apache-2.0.txt, NOTICE). Ported to TypeScript and modified for
// iommu-harness; the changes are this project's.
// syzkaller writes its oops table with a few placeholders; expanding them the same way keeps the
// table rows readable and close to the upstream ones they were ported from.
const placeholders: Array<[RegExp, string]> = [
  [/\{\{ADDR\}\}/g, '0x[0-9a-f]+'],
  [/\{\{PC\}\}/g, '\\[<?(?:0x)?[0-9a-f]+>?\\]'],
  [/\{\{FUNC\}\}/g, '([a-zA-Z0-9_]+)(?:\\.|\\+)'],
  [/\{\{SRC\}\}/g, '([a-zA-Z0-9\\-_/.]+\\.[a-z]+:[0-9]+)'],
];

export function compile(source: string): RegExp {
  let expanded = source;
  for (const [from, to] of placeholders) expanded = expanded.replace(from, to);
  return new RegExp(expanded);
}

export function matchesAny(text: string, res: readonly RegExp[]): boolean {
  return res.some((re) => re.test(text));
}
