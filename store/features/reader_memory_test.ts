/**
 * The memory bound. The gathers run in a child process (reader_memory_probe.ts):
 * `deno test --parallel` runs test modules as workers of one process, so an
 * in-process measure of resident size would count other tests' memory.
 */
import assert from "node:assert/strict";
import { writeTestStore } from "./reader_testing.ts";

Deno.test("memory stays within the cache budget plus a fixed margin on a larger file", async () => {
  const big = await Deno.makeTempDir({ prefix: "fanout-reader-big-" });
  try {
    const rows = (160 << 20) / 256; // a 160 MiB file of 256-byte rows
    await writeTestStore(big, [{ name: "big", rows, numWidth: 64, catWidth: 0, fill: "random" }]);
    const budget = 8 << 20, margin = 40 << 20;
    const probe = new URL("./reader_memory_probe.ts", import.meta.url).pathname;
    const res = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", probe, big, String(rows), String(budget)],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(res.success, new TextDecoder().decode(res.stderr));
    const { grown, read, evictions } = JSON.parse(new TextDecoder().decode(res.stdout));
    assert.ok(evictions > 0, "the file did not exceed the cache");
    assert.ok(read > 2 * (budget + margin)); // a leak of what was read would show
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
