/**
 * Run as its own process by reader_memory_test.ts: gathers from a feature
 * store larger than the cache budget and prints the resident-size growth,
 * so that no other test shares the process whose memory is measured.
 *
 * Usage: deno run -A reader_memory_probe.ts <store dir> <rows> <budget bytes>
 *
 * @module
 */
import { FeatureReader } from "./reader.ts";

const [dir, rowsArg, budgetArg] = Deno.args;
const rows = Number(rowsArg), budget = Number(budgetArg);
const before = Deno.memoryUsage().rss;
const reader = await FeatureReader.open(dir, { cacheBytes: budget });
let peak = before, read = 0;
const ids = new Int32Array(8192);
const out = new Uint8Array(ids.length * 256);
let x = 12345;
for (let b = 0; b < 60; b++) {
  if (b % 3 === 0) {
    for (let i = 0; i < ids.length; i++) ids[i] = (b / 3 * ids.length + i) % rows; // a scan
  } else {
    for (let i = 0; i < ids.length; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      ids[i] = x % (i % 2 ? rows : 40_000); // half of them from a hot region
    }
  }
  reader.gather("big", ids, out);
  read += out.length;
  peak = Math.max(peak, Deno.memoryUsage().rss);
}
const evictions = reader.stats().evictions;
reader.close();
console.log(JSON.stringify({ grown: peak - before, read, evictions }));
