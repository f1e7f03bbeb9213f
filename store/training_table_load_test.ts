import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { Split } from "./types.ts";
import type { Database } from "./database.ts";
import { openYaml, tempDir } from "./test_util.ts";
import { loadTrainingTable, type LoadTrainingTableOptions } from "./training_table.ts";

const YAML = `tables:
  users: { file: users.csv, primary_key: id }
  items: { file: items.csv, primary_key: iid }
  notes: { file: notes.csv }
`;

const FILES = {
  "users.csv": "id,age\nu1,30\nu2,40\nu3,50\n",
  "items.csv": "iid,price\n10,1\n20,2\n",
  "notes.csv": "text\nhello\n",
  "train.csv": "user,at,y,part\n" +
    "u2,2024-01-01,1,train\nu1,2024-01-01,0,train\nu3,2024-02-01,true,VAL\nu1,2024-03-01,false,2\n",
  "notime.csv": "user,at,y\nu1,2024-01-01,3.5\nu2,2024-01-02,1\nu3,2024-01-03,2\nu1,2024-01-03,0\n",
  "links.csv":
    "user,at,item\nu1,2024-01-01,20\nu1,2024-01-01,10\nu2,2024-01-01,20\nu1,2024-02-01,10\n",
  "bad.csv": "user,at,y,part\nu1,2024-01-01,2,train\nu9,soon,1,later\nu1,,x,test\n",
  "empty.csv": "user,at,y\n",
  "num.csv": "user,at,y\nu1,1.5,1\n",
  "table.txt2": "x\n",
};

async function withDb(fn: (db: Database, dir: string) => Promise<void>): Promise<void> {
  const dir = await tempDir(FILES);
  const db = await openYaml(dir, YAML);
  try {
    await fn(db, dir);
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
}

const BASE: LoadTrainingTableOptions = {
  entityTable: "users",
  keyColumn: "user",
  timeColumn: "at",
  labelColumn: "y",
  task: "binary",
};

Deno.test("a supplied CSV with a split column; Parquet reads the same", async () => {
  await withDb(async (db, dir) => {
    const tt = await loadTrainingTable(db, `${dir}/train.csv`, { ...BASE, splitColumn: "part" });
    assertEquals(tt.task, "binary");
    assertEquals([...tt.entity], [0, 1, 2, 0]); // ordered by split, anchor, entity
    assertEquals([...tt.split], [Split.Train, Split.Train, Split.Val, Split.Test]);
    assertEquals([...tt.label], [0, 1, 1, 0]);
    assertEquals(tt.anchorTime[2], Date.UTC(2024, 1, 1) / 1000);
    await db.query(`COPY (SELECT * FROM read_csv('${dir}/train.csv')) TO '${dir}/t.parquet'`);
    const pq = await loadTrainingTable(db, `${dir}/t.parquet`, { ...BASE, splitColumn: "part" });
    assertEquals([...pq.entity], [...tt.entity]);
    assertEquals([...pq.label], [...tt.label]);
  });
});

Deno.test("without a split column: latest anchor test, the one before validation; or cutoffs", async () => {
  await withDb(async (db, dir) => {
    const reg = await loadTrainingTable(db, `${dir}/notime.csv`, { ...BASE, task: "regression" });
    assertEquals([...reg.split], [0, 1, 2, 2]);
    assertEquals([...reg.label], [3.5, 1, 0, 2]);
    const cut = await loadTrainingTable(db, `${dir}/notime.csv`, {
      ...BASE,
      task: "multiclass",
      valCutoff: "2024-01-02",
      testCutoff: "2024-01-03T00:00:00Z",
    });
    assertEquals([...cut.split], [0, 1, 2, 2]);
    assertEquals(cut.classes, ["0", "1", "2", "3.5"]);
    assertEquals([...cut.label], [3, 1, 0, 2]);
  });
});

Deno.test("a supplied link table: labels are target keys, grouped per (entity, anchor)", async () => {
  await withDb(async (db, dir) => {
    const tt = await loadTrainingTable(db, `${dir}/links.csv`, {
      ...BASE,
      labelColumn: "item",
      task: "link",
      targetTable: "items",
      valCutoff: "2024-01-15",
      testCutoff: "2024-01-20",
    });
    assertEquals([...tt.entity], [0, 1, 0]);
    assertEquals([...tt.split], [0, 0, 2]);
    assertEquals([...tt.link!.offsets], [0, 2, 3, 4]);
    assertEquals([...tt.link!.targets], [0, 1, 1, 0]);
    assertEquals(tt.link!.targetTable, "items");
  });
});

Deno.test("every supplied-table error has a message", async () => {
  await withDb(async (db, dir) => {
    const cases: [string, Partial<LoadTrainingTableOptions>, string | RegExp][] = [
      [
        "train.csv",
        { task: "binar" as "binary" },
        'unknown task "binar"; valid: binary, regression, multiclass, link (did you mean "binary"?)',
      ],
      [
        "train.csv",
        { entityTable: "user" },
        'unknown entity table "user"; tables: users, items, notes (did you mean "users"?)',
      ],
      ["train.csv", { entityTable: "notes" }, 'entity table "notes" has no primary key'],
      [
        "links.csv",
        { task: "link" },
        "link tasks need targetTable (the table the labels are keys of)",
      ],
      ["train.csv", { targetTable: "items" }, "targetTable is only for link tasks, not binary"],
      ["table.txt2", {}, "not a CSV or Parquet file (by its extension)"],
      ["missing.csv", {}, "file not found"],
      [
        "train.csv",
        { keyColumn: "usr", splitColumn: "split" },
        'keyColumn "usr" is not a column of the file (did you mean "user"?); splitColumn "split" is ' +
        "not a column of the file; columns: user, at, y, part",
      ],
      ["empty.csv", {}, "the file has no rows"],
      ["num.csv", {}, 'time column "at" has type DOUBLE, which holds no times'],
      [
        "bad.csv",
        { splitColumn: "part" },
        '1 keys not found in users.id (row 2: "u9"); 2 anchor times missing or unreadable ' +
        '(row 2: "soon", row 3: empty); 2 labels that are not 0/1 or true/false (row 1: "2", ' +
        'row 3: "x"); 1 splits that are not train/val/test or 0/1/2 (row 2: "later")',
      ],
      ["bad.csv", { task: "regression" }, /; 1 labels that are not finite numbers \(row 3: "x"\)$/],
      [
        "links.csv",
        { task: "link", targetTable: "users", labelColumn: "item" },
        /: 4 labels that are not keys of users.id \(row 1: "20", row 2: "10"/,
      ],
      ["train.csv", { valCutoff: "2024-01-01" }, "give both valCutoff and testCutoff, or neither"],
      [
        "train.csv",
        { valCutoff: "2024-01-02", testCutoff: "2024-01-01" },
        "valCutoff must be before testCutoff",
      ],
    ];
    const bad: string[] = [];
    for (const [file, opts, want] of cases) {
      const path = `${dir}/${file}`;
      try {
        await loadTrainingTable(db, path, { ...BASE, ...opts });
        bad.push(`${file} ${JSON.stringify(opts)}: no error`);
      } catch (e) {
        const msg = (e as Error).message;
        const ok = typeof want === "string"
          ? msg === `training table ${path}: ${want}`
          : want.test(msg);
        if (!ok) bad.push(`${file} ${JSON.stringify(opts)}\n  got:  ${msg}\n  want: ${want}`);
      }
    }
    assertEquals(bad, []);
  });
});
