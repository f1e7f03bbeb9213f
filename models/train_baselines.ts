/**
 * The baselines a run reports beside the model: a constant (global mean,
 * positive rate or class frequencies) and a linear model on the entity's
 * own features and own history (models/entity_features.ts); for link
 * prediction, the most popular targets and the entity's own past targets
 * (models/train_link.ts).
 *
 * @module
 */

import { evaluate } from "./metrics.ts";
import { constantBaseline, fitLinearBaseline } from "./baselines.ts";
import { entityFeatures } from "./entity_features.ts";
import { better, fmt, secs } from "./train_setup.ts";
import type { Prepared } from "./train_loop.ts";
import { linkBaselines } from "./train_link.ts";

/** L2 penalties tried for the entity baseline (the best on validation is kept). */
const BASELINE_L2 = [0.1, 1, 10, 100, 1000];

/** The baselines' metrics on validation and test, and their descriptions. */
export interface Baselines {
  constant: { val: Record<string, number>; test: Record<string, number> };
  entity: { val: Record<string, number>; test: Record<string, number> };
  constantDescription: string;
  entityDescription: string;
}

/** Fits the baselines on the training rows (CPU); the entity model's L2 is chosen on validation. */
export async function fitBaselines(run: Prepared): Promise<Baselines> {
  if (run.link) return linkBaselines(run);
  const { classes, trainLabels, truth, evalOpts, metric, table, log } = run;
  const task = run.task as Exclude<typeof run.task, "link">;
  const { train, val, test } = run.rows;
  const t0 = performance.now();
  const constant = task === "multiclass"
    ? constantBaseline("multiclass", trainLabels, { classes })
    : constantBaseline(task, trainLabels);
  const ef = await entityFeatures(
    run.db,
    table.entityTable,
    table.entity,
    table.anchorTime,
    run.reader,
  );
  const sub = (rows: Int32Array) => {
    const data = new Float64Array(rows.length * ef.cols);
    for (let i = 0; i < rows.length; i++) {
      data.set(ef.data.subarray(rows[i] * ef.cols, (rows[i] + 1) * ef.cols), i * ef.cols);
    }
    return { data, rows: rows.length, cols: ef.cols };
  };
  // The L2 penalty is chosen on the validation split (the model's epochs are too).
  const xTrain = sub(train), xVal = sub(val);
  let linear = null as ReturnType<typeof fitLinearBaseline> | null, bestL2 = NaN;
  let bestVal = NaN;
  for (const l2 of BASELINE_L2) {
    const fit = fitLinearBaseline(task, xTrain, trainLabels, { ...evalOpts, l2 });
    const v = evaluate(task, fit.predict(xVal), truth.val, evalOpts)[metric];
    if (linear === null || better(metric, v, bestVal)) [linear, bestL2, bestVal] = [fit, l2, v];
  }
  const out: Baselines = {
    constant: {
      val: evaluate(task, constant.predict(val.length), truth.val, evalOpts),
      test: evaluate(task, constant.predict(test.length), truth.test, evalOpts),
    },
    entity: {
      val: evaluate(task, linear!.predict(xVal), truth.val, evalOpts),
      test: evaluate(task, linear!.predict(sub(test)), truth.test, evalOpts),
    },
    constantDescription: constant.description,
    entityDescription: `${
      task === "regression" ? "ridge regression" : "logistic regression"
    } on ${ef.cols} own-row and own-history features, L2 ${bestL2} chosen on validation`,
  };
  log(
    `baselines (${secs(t0)}): val ${metric} constant ${fmt(out.constant.val[metric])}, ` +
      `entity ${fmt(out.entity.val[metric])}`,
  );
  return out;
}
