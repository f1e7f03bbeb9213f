/**
 * Helpers for validation messages: listing the valid choices and suggesting
 * the closest one.
 *
 * @module
 */

/**
 * Edit distance between two strings (case-insensitive), counting a swap of
 * two adjacent letters as one edit (optimal string alignment): "lats" is one
 * edit from "last".
 */
function distance(a: string, b: string): number {
  a = a.toLowerCase();
  b = b.toLowerCase();
  let before: number[] = [];
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        cur[j] = Math.min(cur[j], before[j - 2] + 1);
      }
    }
    before = prev;
    prev = cur;
  }
  return prev[b.length];
}

/**
 * ` (did you mean "x"?)` when one of `choices` is close to `word`, else "".
 * Close means at most a third of the letters differ.
 */
export function didYouMean(word: string, choices: readonly string[]): string {
  let best = "";
  let bestD = Infinity;
  for (const c of choices) {
    const d = distance(word, c);
    if (d < bestD) [best, bestD] = [c, d];
  }
  const limit = Math.floor(Math.max(word.length, best.length) / 3);
  return bestD <= limit ? ` (did you mean "${best}"?)` : "";
}

/** Joins choices for a message, eliding the middle of very long lists. */
export function listChoices(choices: readonly string[], max = 40): string {
  if (choices.length === 0) return "(none)";
  if (choices.length <= max) return choices.join(", ");
  return `${choices.slice(0, max).join(", ")}, … (${choices.length} in all)`;
}

/** `1 row` / `3 rows`. */
export function plural(n: number, word: string, pluralWord = `${word}s`): string {
  return `${n} ${n === 1 ? word : pluralWord}`;
}
