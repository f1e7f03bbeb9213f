/**
 * The embedded synthetic relational database that `deno task train` uses
 * when it is given no data: `users`, `items`, `stores` and `transactions`
 * over time, written as CSV with a `schema.yaml` (store/schema.ts), and a
 * default query ({@link DEFAULT_QUERY}: will a user buy anything in the
 * next 30 days?) whose labels depend on multi-hop structure, so that a
 * graph model beats a per-entity model.
 *
 * ## Tables
 *
 * - `users(user_id, signup_at, age, region)`: `signup_at` is the time
 *   column (a user exists from sign-up); a third sign up in the first
 *   month, the rest over the first 80% of the span.
 * - `items(item_id, category, price, rating)`: static.
 * - `stores(store_id, region, size)`: static.
 * - `transactions(tx_id, user_id, item_id, store_id, ts, quantity,
 *   amount)`: `ts` is the time column; ids ascend with time. The items of
 *   one visit are one minute apart.
 *
 * ## The planted mechanism: satisfied customers come back
 *
 * Users make **visits**. A visit buys a basket of `1 + Poisson(b·r_u)`
 * items (`r_u` log-normal per user, `b` calibrated to the target number of
 * transactions), each from the user's three preferred categories (80%) or
 * from all items, by popularity, at the user's primary store (75%) or a
 * secondary one. A new user's first visit is in their first two weeks.
 *
 * Each item has a hidden **quality** `q_i = catQ[category] + 0.2·N(0, 1)`,
 * with a per-category effect `catQ` between -1.5 and 1.5; it shows in the
 * item's `category` and its `rating` (`3 + 0.8·q_i + N(0, 0.2²)`, clamped
 * to 1..5). The **satisfaction** of a visit is the mean quality of the
 * items bought (-1 when nothing was), less 0.5 when the store is in a bad
 * period. With probability `σ(4·satisfaction)` (from under 0.01 to over
 * 0.99) the user comes back **soon**, 5 to 25 days later; otherwise
 * **late**, 55 to 85 days later.
 *
 * Two latent factors change over time, and only other users' recent
 * behaviour shows them (3 hops: user → transactions → item or store →
 * other users' transactions):
 *
 * - **item trends**: a quarter of the items get worse at a random time
 *   (quality down by `1.5·|N(0, 1)|`); their `rating` stays, but they sell
 *   less (60% of the picks of such an item are dropped from the basket);
 * - **store periods**: each store alternates between good and bad periods
 *   (three months on average, a quarter of them bad); in a bad period a
 *   visit fails with probability 0.3 (nothing bought, a satisfaction of -1)
 *   and the others are less satisfying.
 *
 * So whether a user buys in the next 30 days (the label) depends on the
 * items of their latest visit (2 hops: user → transactions → items, their
 * `category` and `rating`): a user whose last visit was under 25 days ago
 * buys next month exactly when that visit satisfied them; and on the
 * trends and periods of those items and stores (3 hops). The user's own
 * history (counts, recency, mean amount) is only moderately predictive: it
 * cannot tell a satisfied visit from a disappointing one, and baskets make
 * transaction counts a noisy measure of visits. Nothing about the label is
 * in the user's own row (`age` and `region` are noise).
 *
 * Measured on the defaults (seed 0; seed 1 within 0.02): knowing the true
 * satisfaction of each user's last visit (hidden) gives validation / test
 * AUROC 0.90 / 0.89; a logistic regression on the user's own history
 * (counts over 7, 30, 90, 365 days and in all, recency, tenure, mean amount
 * and quantity, age) 0.68 / 0.70; the same with the last item's category ×
 * recency and its rating added 0.79 / 0.80. Among the rows whose last visit
 * was under 25 days before the anchor (43%), the label's correlation with
 * the mean rating of that visit's items is 0.56, with the user's own count
 * of purchases in the last 30 days 0.15 (models/synthetic_test.ts checks
 * this). `deno task train` (2-layer SAGE, 10 epochs, llvmpipe, about two
 * minutes) reached validation / test AUROC 0.77 / 0.76 against 0.67 / 0.70
 * for its per-user logistic-regression baseline.
 *
 * Deterministic for a seed (mulberry32; each user draws from their own
 * stream). The number of transactions is a target that the basket sizes
 * are calibrated to (the count is about linear in them; the result is
 * within about a percent, and at least one item per visit).
 *
 * @module
 */

import { mulberry32 } from "../store/training_table.ts";

/** The default predictive query of the synthetic database. */
export const DEFAULT_QUERY = "PREDICT COUNT(transactions.*, 0, 30) > 0 FOR EACH users.user_id";

/** The constants of the planted mechanism (see the module doc). */
export interface Mechanism {
  /** Days to the next visit after a satisfying one, uniform in [min, max] (default [5, 25]). */
  soonDays: readonly [number, number];
  /** Days to the next visit after a disappointing one (default [55, 85]). */
  lateDays: readonly [number, number];
  /** Probability of coming back soon: `σ(returnBias + returnSlope·satisfaction)` (default 0). */
  returnBias: number;
  /** See `returnBias` (default 4). */
  returnSlope: number;
  /** Per-category quality effects, evenly spaced in [-catRange, catRange] (default 1.5; 12 categories). */
  catRange: number;
  /** Within-category spread of item quality (default 0.2). */
  itemSpread: number;
  /** Noise of `rating` (default 0.2). */
  ratingNoise: number;
  /** Share of items whose quality drops at a random time (default 0.25). */
  trendShare: number;
  /** Size of the drop: `trendDrop·|N(0, 1)|` (default 1.5). */
  trendDrop: number;
  /** Share of the picks of a worse item dropped from the basket (default 0.6). */
  trendSkip: number;
  /** Mean length of a store period, days (default 90). */
  periodDays: number;
  /** Share of store periods that are bad (default 0.25). */
  badShare: number;
  /** Probability that a visit to a store in a bad period buys nothing (default 0.3). */
  badFail: number;
  /** Satisfaction lost in a store in a bad period (default 0.5). */
  badHit: number;
  /** Spread (σ of the log) of the users' basket sizes (default 0.5). */
  rateSpread: number;
}

/** The default mechanism. */
export const DEFAULT_MECHANISM: Readonly<Mechanism> = {
  soonDays: [5, 25],
  lateDays: [55, 85],
  returnBias: 0,
  returnSlope: 4,
  catRange: 1.5,
  itemSpread: 0.2,
  ratingNoise: 0.2,
  trendShare: 0.25,
  trendDrop: 1.5,
  trendSkip: 0.6,
  periodDays: 90,
  badShare: 0.25,
  badFail: 0.3,
  badHit: 0.5,
  rateSpread: 0.5,
};

/** Options of {@link generateSyntheticDb}. */
export interface SyntheticOptions {
  /** Number of users (default 3000). */
  users?: number;
  /** Number of items (default 500). */
  items?: number;
  /** Number of stores (default 50). */
  stores?: number;
  /** Target number of transactions (default 60,000; met within about a percent). */
  transactions?: number;
  /** Random seed (default 0): the same seed gives the same files. */
  seed?: number;
  /** Days covered (default 365). */
  days?: number;
  /** First day, ISO date (default "2024-01-01"). */
  start?: string;
  /** Overrides of the mechanism's constants (default {@link DEFAULT_MECHANISM}). */
  mechanism?: Partial<Mechanism>;
  /** Called with each visit's user, day (from the start) and probability of coming back soon. */
  onVisit?: (user: number, day: number, pSoon: number) => void;
}

/** What {@link generateSyntheticDb} wrote. */
export interface SyntheticDb {
  /** The folder with the CSV files and `schema.yaml`. */
  dir: string;
  /** Path of `schema.yaml`. */
  schemaPath: string;
  /** Rows written per table. */
  rows: { users: number; items: number; stores: number; transactions: number };
  /** Seconds the generation took. */
  seconds: number;
}

/** The schema of the synthetic database (the YAML of store/schema.ts). */
export const SYNTHETIC_SCHEMA =
  `# The synthetic database of models/synthetic.ts (deno task train's default data).
tables:
  users:
    file: users.csv
    primary_key: user_id
    time_column: signup_at
    columns: { age: numerical, region: categorical }
  items:
    file: items.csv
    primary_key: item_id
    columns: { category: categorical, price: numerical, rating: numerical }
  stores:
    file: stores.csv
    primary_key: store_id
    columns: { region: categorical, size: numerical }
  transactions:
    file: transactions.csv
    primary_key: tx_id
    time_column: ts
    foreign_keys: { user_id: users, item_id: items, store_id: stores }
    columns: { quantity: numerical, amount: numerical }
`;

const REGIONS = 5;
const CATEGORIES = 12;
const DAY = 86400;

/** Random draws on top of mulberry32. */
class Rng {
  #u: () => number;
  constructor(seed: number) {
    this.#u = mulberry32(seed);
  }
  /** Uniform in [0, 1). */
  u(): number {
    return this.#u();
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.#u() * n);
  }
  /** Standard normal (Box–Muller). */
  normal(): number {
    const a = 1 - this.#u(), b = this.#u();
    return Math.sqrt(-2 * Math.log(a)) * Math.cos(2 * Math.PI * b);
  }
  /** Exponential with the given mean. */
  exp(mean: number): number {
    return -Math.log(1 - this.#u()) * mean;
  }
}

/** The probability that a user comes back soon after a visit of satisfaction `s`. */
export function returnProbability(s: number, m: Mechanism = DEFAULT_MECHANISM): number {
  return 1 / (1 + Math.exp(-(m.returnBias + m.returnSlope * s)));
}

/** The hidden state of a synthetic world. */
type World = ReturnType<typeof makeWorld>;

function cumulative(w: ArrayLike<number>): Float64Array {
  const c = new Float64Array(w.length);
  let s = 0;
  for (let i = 0; i < w.length; i++) c[i] = s += w[i];
  return c;
}

/** Index drawn with probability proportional to its weight (`cum`: cumulative weights). */
function pick(cum: Float64Array, x: number): number {
  let lo = 0, hi = cum.length - 1;
  const target = x * cum[hi];
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cum[mid] > target) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

function makeWorld(
  n: { users: number; items: number; stores: number },
  days: number,
  seed: number,
  m: Mechanism,
) {
  const r = new Rng(seed * 7919 + 1);
  // Category quality effects evenly spaced in [-catRange, catRange], shuffled.
  const catQ = Float64Array.from(
    { length: CATEGORIES },
    (_, c) => m.catRange * (2 * c / (CATEGORIES - 1) - 1),
  );
  for (let i = CATEGORIES - 1; i > 0; i--) {
    const j = r.int(i + 1);
    [catQ[i], catQ[j]] = [catQ[j], catQ[i]];
  }
  const itemCat = new Int32Array(n.items), itemQ = new Float64Array(n.items);
  // Day the item gets worse (Infinity: never) and its quality after.
  const itemDropAt = new Float64Array(n.items), itemQAfter = new Float64Array(n.items);
  const itemPrice = new Float64Array(n.items), itemRating = new Float64Array(n.items);
  const pop = new Float64Array(n.items);
  for (let i = 0; i < n.items; i++) {
    const c = itemCat[i] = r.int(CATEGORIES);
    itemQ[i] = catQ[c] + m.itemSpread * r.normal();
    itemRating[i] = Math.min(5, Math.max(1, 3 + 0.8 * itemQ[i] + m.ratingNoise * r.normal()));
    itemPrice[i] = 20 * Math.exp(0.7 * r.normal());
    pop[i] = Math.exp(0.8 * r.normal());
    const drops = r.u() < m.trendShare, at = r.u() * days, by = Math.abs(r.normal());
    itemDropAt[i] = drops ? at : Infinity;
    itemQAfter[i] = itemQ[i] - m.trendDrop * by;
  }
  const catItems = Array.from({ length: CATEGORIES }, (_, c) => {
    const ids: number[] = [];
    for (let i = 0; i < n.items; i++) if (itemCat[i] === c) ids.push(i);
    return Int32Array.from(ids.length ? ids : [c % n.items]);
  });
  const catCum = catItems.map((ids) => cumulative(Array.from(ids, (i) => pop[i])));
  const storeRegion = new Int32Array(n.stores), storeSize = new Float64Array(n.stores);
  const byRegion: number[][] = Array.from({ length: REGIONS }, () => []);
  const periods: { ends: number[]; bad: boolean[] }[] = [];
  for (let s = 0; s < n.stores; s++) {
    storeRegion[s] = s < REGIONS ? s : r.int(REGIONS);
    byRegion[storeRegion[s]].push(s);
    storeSize[s] = Math.round(Math.exp(Math.log(400) + 0.5 * r.normal()));
    const ends: number[] = [], bad: boolean[] = [];
    let t = -r.u() * m.periodDays;
    do {
      t += r.exp(m.periodDays);
      ends.push(t);
      bad.push(r.u() < m.badShare);
    } while (t < days);
    periods.push({ ends, bad });
  }
  const userSignup = new Float64Array(n.users), userAge = new Int32Array(n.users);
  const userRegion = new Int32Array(n.users), userRate = new Float64Array(n.users);
  const userStores = new Int32Array(2 * n.users), userCats = new Int32Array(3 * n.users);
  for (let u = 0; u < n.users; u++) {
    userSignup[u] = r.u() < 1 / 3 ? r.u() * 30 : r.u() * 0.8 * days;
    userAge[u] = 18 + r.int(60);
    userRegion[u] = r.int(REGIONS);
    userRate[u] = Math.exp(m.rateSpread * r.normal());
    const local = byRegion[userRegion[u]];
    userStores[2 * u] = local.length ? local[r.int(local.length)] : r.int(n.stores);
    userStores[2 * u + 1] = r.int(n.stores);
    for (let k = 0; k < 3; k++) userCats[3 * u + k] = r.int(CATEGORIES);
  }
  const allCum = cumulative(pop);
  // deno-fmt-ignore
  return { itemCat, itemQ, itemDropAt, itemQAfter, itemPrice, itemRating, allCum, catItems, catCum,
    storeRegion, storeSize, periods, userSignup, userAge, userRegion, userRate,
    userStores /* primary, secondary */, userCats /* 3 per user */ };
}

function storeBad(w: World, s: number, t: number): boolean {
  const { ends, bad } = w.periods[s];
  let lo = 0, hi = ends.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ends[mid] > t) hi = mid;
    else lo = mid + 1;
  }
  return bad[lo];
}

/** Transactions in simulation order (days from the start), and the number of visits. */
interface Txns {
  user: number[];
  item: number[];
  store: number[];
  day: number[];
  quantity: number[];
  visits: number;
}

/** Poisson draw by inversion (small means). */
function poisson(r: Rng, mean: number): number {
  let k = 0;
  for (let p = Math.exp(-mean), c = p, x = r.u(); x > c && k < 100; c += p *= mean / ++k);
  return k;
}

/**
 * Runs every user's visits (see the module doc) with baskets of
 * `1 + Poisson(basket·r_u)` items. Each user draws from their own stream,
 * so a user's history does not depend on the others'. `onVisit` sees each
 * visit's user, day and probability of coming back soon (for tests).
 */
function simulate(
  w: World,
  m: Mechanism,
  days: number,
  basket: number,
  seed: number,
  onVisit?: (user: number, day: number, pSoon: number) => void,
): Txns {
  const out: Txns = { user: [], item: [], store: [], day: [], quantity: [], visits: 0 };
  for (let u = 0; u < w.userSignup.length; u++) {
    const r = new Rng((seed * 104729 + u * 2654435761 + 2) >>> 0);
    let t = w.userSignup[u] + r.u() * 14;
    while (t < days) {
      out.visits++;
      const k = 1 + poisson(r, basket * w.userRate[u]);
      const s = w.userStores[2 * u + (r.u() < 0.75 ? 0 : 1)];
      const bad = storeBad(w, s, t), turnedAway = bad && r.u() < m.badFail;
      let qSum = 0, bought = 0;
      for (let j = 0; j < k; j++) {
        const c = r.u() < 0.8 ? w.userCats[3 * u + r.int(3)] : -1;
        const i = c < 0 ? pick(w.allCum, r.u()) : w.catItems[c][pick(w.catCum[c], r.u())];
        const worse = t >= w.itemDropAt[i], skip = r.u(), qty = r.u();
        if (turnedAway || (worse && skip < m.trendSkip)) continue;
        qSum += worse ? w.itemQAfter[i] : w.itemQ[i];
        out.user.push(u), out.item.push(i), out.store.push(s), out.day.push(t + bought++ / 1440);
        out.quantity.push(qty < 0.7 ? 1 : qty < 0.9 ? 2 : 3);
      }
      const satisfaction = (bought ? qSum / bought : -1) - (bad ? m.badHit : 0);
      const pSoon = returnProbability(satisfaction, m);
      onVisit?.(u, t, pSoon);
      const [lo, hi] = r.u() < pSoon ? m.soonDays : m.lateDays;
      t += lo + r.u() * (hi - lo);
    }
  }
  return out;
}

function positive(v: number | undefined, dflt: number, what: string): number {
  const x = v ?? dflt;
  if (!Number.isInteger(x) || x < 1) {
    throw new Error(`${what} must be a positive integer, not ${x}`);
  }
  return x;
}

/** `YYYY-MM-DD HH:MM:SS` (UTC) of epoch seconds. */
function stamp(sec: number): string {
  return new Date(sec * 1000).toISOString().slice(0, 19).replace("T", " ");
}

/**
 * Writes the synthetic database into `dir` (created if needed; files of
 * the same names are replaced): `users.csv`, `items.csv`, `stores.csv`,
 * `transactions.csv` and `schema.yaml` ({@link SYNTHETIC_SCHEMA}). See the
 * module doc for the mechanism. The defaults (3000 users, 500 items, 50
 * stores, about 60,000 transactions over 365 days) take about a second.
 */
export async function generateSyntheticDb(
  dir: string,
  opts: SyntheticOptions = {},
): Promise<SyntheticDb> {
  const t0 = performance.now();
  const users = positive(opts.users, 3000, "users");
  const items = positive(opts.items, 500, "items");
  const stores = positive(opts.stores, 50, "stores");
  const target = positive(opts.transactions, 60_000, "transactions");
  const days = positive(opts.days, 365, "days");
  const seed = opts.seed ?? 0;
  if (!Number.isInteger(seed)) throw new Error(`seed must be an integer, not ${seed}`);
  const startMs = Date.parse(`${opts.start ?? "2024-01-01"}T00:00:00Z`);
  if (Number.isNaN(startMs)) throw new Error(`start must be an ISO date, not "${opts.start}"`);
  const m: Mechanism = { ...DEFAULT_MECHANISM, ...opts.mechanism };
  for (const key of ["soonDays", "lateDays"] as const) {
    const [lo, hi] = m[key];
    if (!(lo >= 0 && hi >= lo)) {
      throw new Error(`mechanism.${key} must be [min, max] days, 0 <= min <= max`);
    }
  }
  const start = startMs / 1000;

  const w = makeWorld({ users, items, stores }, days, seed, m);
  // The count is about linear in the basket size: a few proportional steps suffice.
  let basket = 1;
  let tx = simulate(w, m, days, basket, seed);
  for (let it = 0; it < 6 && Math.abs(tx.day.length / target - 1) > 0.003; it++) {
    const extra = (tx.day.length - tx.visits) || 1; // items beyond the first of each visit
    basket = Math.max(0, basket * (target - tx.visits) / extra);
    tx = simulate(w, m, days, basket, seed);
  }
  if (opts.onVisit) simulate(w, m, days, basket, seed, opts.onVisit);

  // Transactions in time order (whole seconds; ties by user, then draw order).
  const n = tx.day.length;
  const sec = Float64Array.from(tx.day, (d) => Math.floor(start + d * DAY));
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) =>
    sec[a] - sec[b] || tx.user[a] - tx.user[b] || a - b
  );
  await Deno.mkdir(dir, { recursive: true });
  const lines: string[] = ["tx_id,user_id,item_id,store_id,ts,quantity,amount"];
  order.forEach((i, id) => {
    const amount = (w.itemPrice[tx.item[i]] * tx.quantity[i]).toFixed(2);
    lines.push(
      `${id},${tx.user[i]},${tx.item[i]},${tx.store[i]},${stamp(sec[i])},${
        tx.quantity[i]
      },${amount}`,
    );
  });
  await Deno.writeTextFile(`${dir}/transactions.csv`, lines.join("\n") + "\n");
  const table = (header: string, count: number, row: (i: number) => string) =>
    [header, ...Array.from({ length: count }, (_, i) => `${i},${row(i)}`)].join("\n") + "\n";
  await Deno.writeTextFile(
    `${dir}/users.csv`,
    table(
      "user_id,signup_at,age,region",
      users,
      (u) =>
        `${stamp(Math.floor(start + w.userSignup[u] * DAY))},${w.userAge[u]},r${w.userRegion[u]}`,
    ),
  );
  await Deno.writeTextFile(
    `${dir}/items.csv`,
    table(
      "item_id,category,price,rating",
      items,
      (i) => `c${w.itemCat[i]},${w.itemPrice[i].toFixed(2)},${w.itemRating[i].toFixed(1)}`,
    ),
  );
  await Deno.writeTextFile(
    `${dir}/stores.csv`,
    table("store_id,region,size", stores, (s) => `r${w.storeRegion[s]},${w.storeSize[s]}`),
  );
  const schemaPath = `${dir}/schema.yaml`;
  await Deno.writeTextFile(schemaPath, SYNTHETIC_SCHEMA);
  return {
    dir,
    schemaPath,
    rows: { users, items, stores, transactions: n },
    seconds: (performance.now() - t0) / 1000,
  };
}
