/**
 * `fanout plan`: the suggested plan for a database and query, as YAML.
 *
 * @module
 */

import { Split } from "../store/types.ts";
import { DEFAULT_QUERY, generateSyntheticDb } from "./synthetic.ts";
import { planToYaml } from "./plan.ts";
import { suggestPlanExplained } from "./plan_suggest.ts";
import { buildTable, openRunData, pick, rowsOf } from "./train_setup.ts";
import type { JobRecord, PlanRequest } from "./train_types.ts";

/** The suggested plan for a database and query, as YAML (`fanout plan`). */
export async function planText(req: PlanRequest): Promise<string> {
  let tmp: string | null = null;
  let record: JobRecord;
  if (req.data === undefined) {
    tmp = await Deno.makeTempDir({ prefix: "fanout-plan-" });
    const s = await generateSyntheticDb(tmp);
    record = {
      data: s.dir,
      schema: s.schemaPath,
      query: req.query ?? DEFAULT_QUERY,
      synthetic: true,
      seed: 0,
    };
  } else {
    record = {
      data: req.data,
      schema: req.schema!,
      query: req.query,
      table: req.table,
      tableOptions: req.tableOptions,
      synthetic: false,
      seed: 0,
    };
  }
  try {
    const { db, graph } = await openRunData(record, () => {});
    try {
      const { table } = await buildTable(db, record);
      const train = rowsOf(table, Split.Train);
      const { plan, notes } = suggestPlanExplained({
        graph,
        schema: db.schema,
        seedType: table.entityTable,
        task: table.task,
        targetType: table.link?.targetTable,
        trainRows: train.length,
        seeds: pick(table.entity, train),
        seedTimes: pick(table.anchorTime, train),
      });
      const header = [
        `Suggested plan for ${record.query ?? `table ${record.table?.path}`}`,
        ...notes,
        "Override any field in a file passed with --plan.",
      ].join("\n");
      return planToYaml(plan, { header });
    } finally {
      db.close();
    }
  } finally {
    if (tmp) await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}
