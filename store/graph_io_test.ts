import assert from "node:assert/strict";
import fc from "fast-check";
import { buildGraph } from "./graph_build.ts";
import { loadGraph, MANIFEST, saveGraph } from "./graph_io.ts";
import {
  arbDb,
  assertSameGraph,
  buildInputOf,
  checkAgainstBrute,
  throwsWith,
} from "./graph_testing.ts";
import { xxh32 } from "./checksum.ts";

async function rejectsWith(p: Promise<unknown>, text: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof Error && e.message.includes(text), `expected "${text}" in: ${e}`);
    return true;
  });
}

function small() {
  return buildGraph({
    nodes: [
      { name: "users", count: 3, primaryKey: "id", keys: ["u1", "u2", "u0"] },
      { name: "tx", count: 4, times: Float64Array.of(5e8, 5e8 + 9, 5e8 + 1, NaN) },
    ],
    foreignKeys: [{
      table: "tx",
      column: "uid",
      parent: "users",
      childRow: Int32Array.of(0, 1, 2, 3),
      parentRow: Int32Array.of(2, 2, 0, 2),
    }],
  });
}

Deno.test("xxh32 matches reference vectors", () => {
  const enc = new TextEncoder();
  assert.equal(xxh32(enc.encode("")), 0x02cc5d05);
  assert.equal(xxh32(enc.encode("abc")), 0x32d153ff);
  assert.equal(xxh32(enc.encode("Nobody inspects the spammish repetition")), 0xe2293b2f);
  const odd = new Uint8Array(23).map((_, i) => i * 7);
  assert.equal(xxh32(odd.subarray(1)), xxh32(odd.slice(1))); // unaligned view path
});

Deno.test("property: save → load round-trips exactly", async () => {
  const root = await Deno.makeTempDir();
  try {
    await fc.assert(
      fc.asyncProperty(arbDb(), async (db) => {
        const g = buildGraph(buildInputOf(db));
        await saveGraph(g, `${root}/g`);
        const h = await loadGraph(`${root}/g`);
        assertSameGraph(g, h);
        checkAgainstBrute(h, db);
        for (const e of h.data.edges) assert.ok(e.nbr.buffer instanceof SharedArrayBuffer);
      }),
      { numRuns: 40 },
    );
    const left = [...Deno.readDirSync(root)].map((d) => d.name);
    assert.deepEqual(left, ["g"], "no temporary directories left behind");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("load names a corrupt or truncated file; refuses other formats", async () => {
  const root = await Deno.makeTempDir();
  try {
    const dir = `${root}/graph`;
    const m = await saveGraph(small(), dir);
    const file = Object.keys(m.files).find((f) => f.includes("nbrTime"))!;
    const bytes = await Deno.readFile(`${dir}/${file}`);
    bytes[2] ^= 1;
    await Deno.writeFile(`${dir}/${file}`, bytes);
    await rejectsWith(loadGraph(dir), `${file}: checksum mismatch`);
    await loadGraph(dir, { verify: false }); // lengths still fine
    await Deno.writeFile(`${dir}/${file}`, bytes.subarray(0, bytes.length - 1));
    await rejectsWith(loadGraph(dir, { verify: false }), `${file}: truncated`);
    const manifest = JSON.parse(await Deno.readTextFile(`${dir}/${MANIFEST}`));
    await Deno.writeTextFile(
      `${dir}/${MANIFEST}`,
      JSON.stringify({ ...manifest, formatVersion: 99 }),
    );
    await rejectsWith(loadGraph(dir), "graph format version 99");
    await Deno.mkdir(`${root}/other`);
    await Deno.writeTextFile(`${root}/other/x.txt`, "keep me");
    await rejectsWith(saveGraph(small(), `${root}/other`), "not a saved graph");
    await saveGraph(small(), dir); // replaces the damaged graph
    assertSameGraph(await loadGraph(dir), small());
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("string keys and null times survive a round trip", async () => {
  const root = await Deno.makeTempDir();
  try {
    await saveGraph(small(), `${root}/g`);
    const g = await loadGraph(`${root}/g`);
    assert.equal(g.idOf("users", "u0"), 2);
    assert.equal(g.keyOf("users", 1), "u2");
    assert.deepEqual([...g.neighbors("users.id->tx.uid", 2).ids], [0, 1, 3]);
    assert.deepEqual([...g.neighbors("users.id->tx.uid", 2, g.toTick(5e8 + 8)).ids], [0]);
    throwsWith(() => g.keyOf("users", 3), "out of range");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
