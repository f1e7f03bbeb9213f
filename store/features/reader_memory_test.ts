/**
 * The memory bound, alone in its file so that no other test's garbage or
 * threads share the process whose resident size it measures.
 */
import assert from "node:assert/strict";
import { FeatureReader } from "./reader.ts";
import { writeTestStore } from "./reader_testing.ts";

Deno.test("memory stays within the cache budget plus a fixed margin on a larger file", async () => {
  const big = await Deno.makeTempDir({ prefix: "fanout-reader-big-" });
  try {
    const rows = (160 << 20) / 256; // a 160 MiB file of 256-byte rows
    await writeTestStore(big, [{ name: "big", rows, numWidth: 64, catWidth: 0, fill: "random" }]);
    const budget = 8 << 20, margin = 40 << 20;
    const before = Deno.memoryUsage().rss;
    const reader = await FeatureReader.open(big, { cacheBytes: budget });
    let peak = 0, read = 0;
    try {
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
      const s = reader.stats();
      assert.ok(s.evictions > 0);
    } finally {
      reader.close();
    }
    assert.ok(read > 2 * (budget + margin)); // a leak of what was read would show
    const grown = peak - before;
    assert(
      grown <= budget + margin,
      `RSS grew by ${(grown / 2 ** 20).toFixed(1)} MiB, budget ${budget >> 20} MiB + ${
        margin >> 20
      } MiB margin`,
    );
  } finally {
    await Deno.remove(big, { recursive: true });
  }
});
