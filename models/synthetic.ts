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
 *   amount)`: `ts` is the time column; ids ascend with time.
 *
 * ## The planted mechanism: replenishment
 *
 * Most purchases are **re-purchases**. Every item belongs to one of 12
 * categories, and each category has a hidden replenishment cycle `C_c`
 * between 30 and 240 days. After a user buys item `i` at time `t`, they buy
 * it again around `t + C_c` (±10%) with the item's **renewal
 * probability** `ρ_i = σ(1.5 + 3·q_i)`, where `q_i` is the item's hidden
 * quality: about 0.05 for the worst items, 0.8 for middling ones, 0.998 for
 * the best. A chain of re-purchases goes on until a renewal fails. Quality
 * is `q_i = catQ[category] + 0.6·N(0, 1)` with a per-category effect
 * between -1.5 and 1.5, and shows, noisily, in the item's `rating`
 * (`3 + 0.8·q_i + N(0, 0.5²)`, clamped to 1..5); `price` is noise
 * (log-normal), so a transaction's `amount` says nothing of the cycle.
 *
 * Chains start with **discoveries**: a new user buys a few new items in
 * their first two weeks (Poisson, with a log-normal per-user mean that is
 * calibrated to the target number of transactions), then one a year on
 * average; a discovery is an item from the user's three preferred
 * categories (80%) or from all items, by popularity.
 *
 * Two latent factors change over time, and only other users' recent
 * behaviour shows them:
 *
 * - **item trends**: a quarter of the items get worse at a random time
 *   (their quality drops by `1.5·|N(0, 1)|`); their `rating` does not
 *   change, but every user's renewals of them drop (3 hops: user →
 *   transactions → item → other users' transactions);
 * - **store periods**: each store alternates between good and bad periods
 *   (three months on average, a quarter of them bad); a purchase attempted
 *   at a store in a bad period fails with probability 0.3, which ends the
 *   chain (a user buys at their primary store 75% of the time, else at a
 *   secondary one).
 *
 * So whether a user buys in the next 30 days (the label) depends mostly on
 * which of their past purchases fall due in the window: the time since
 * each purchase (1 hop) against the cycle of its item's category and the
 * item's renewal probability (`category`, `rating`: 2 hops, user →
 * transactions → items), then on the trends of those items and the periods
 * of the user's stores (3 hops). The user's own counts and recency are
 * only moderately predictive: a user who bought a 60-day item 45 days ago
 * buys next month, one who bought a 30-day item 45 days ago does not (the
 * chain broke), and one who bought a poorly rated item last week will not
 * renew it. Nothing about the label is in the user's own row (`age` and
 * `region` are noise).
 *
 * Measured on the defaults (seed 0; models/synthetic_test.ts checks the
 * correlations): the label's correlation with the number of the user's
 * items that fall due in the window (each item's cycle estimated from all
 * users' re-purchase gaps in its category) is 0.42, with the user's own
 * count of the last 30 days 0.12; a logistic regression on the user's own
 * history (counts over 30 and 90 days and in all, recency, tenure) reaches
 * validation / test AUROC 0.75 / 0.75, the same with the due counts added
 * 0.84 / 0.83.
 *
 * Deterministic for a seed (mulberry32). The number of transactions is a
 * target that the onboarding discoveries are calibrated to (the count is
 * about linear in them; the result is within half a percent or so).
 *
 * @module
 */

import { mulberry32 } from "../store/training_table.ts";

/** The default predictive query of the synthetic database. */
export const DEFAULT_QUERY = "PREDICT COUNT(transactions.*, 0, 30) > 0 FOR EACH users.user_id";

/** The constants of the planted mechanism (see the module doc). */
export interface Mechanism {
  /** Replenishment cycle of each category, days (12 categories). */
  cycles: readonly number[];
  /** Relative spread (σ of the log) of a re-purchase's delay around the cycle (default 0.1). */
  cycleJitter: number;
  /** Renewal probability `σ(renewBias + renewSlope·q)` (default 1.5). */
  renewBias: number;
  /** See `renewBias` (default 3). */
  renewSlope: number;
  /** Within-category spread of item quality (default 0.6). */
  itemSpread: number;
  /** Share of items whose quality drops at a random time (default 0.25). */
  trendShare: number;
  /** Size of the drop: `trendDrop·|N(0, 1)|` (default 1.5). */
  trendDrop: number;
  /** Mean length of a store period, days (default 90). */
  periodDays: number;
  /** Share of store periods that are bad (default 0.25). */
  badShare: number;
  /** Probability that an attempt at a store in a bad period fails and ends the chain (0.3). */
  badFail: number;
  /** Spread (σ of the log) of the users' onboarding discoveries (default 0.5). */
  rateSpread: number;
  /** Days over which a new user makes their first discoveries (default 14). */
  onboardingDays: number;
  /** Mean days between later discoveries (default 365). */
  discoveryDays: number;
}

/** The default mechanism. */
export const DEFAULT_MECHANISM: Readonly<Mechanism> = {
  cycles: [30, 40, 50, 60, 75, 90, 105, 120, 150, 180, 210, 240],
  cycleJitter: 0.1,
  renewBias: 1.5,
  renewSlope: 3,
  itemSpread: 0.6,
  trendShare: 0.25,
  trendDrop: 1.5,
  periodDays: 90,
  badShare: 0.25,
  badFail: 0.3,
  rateSpread: 0.5,
  onboardingDays: 14,
  discoveryDays: 365,
};

/** Options of {@link generateSyntheticDb}. */
export interface SyntheticOptions {
  /** Number of users (default 3000). */
  users?: number;
  /** Number of items (default 500). */
  items?: number;
  /** Number of stores (default 50). */
  stores?: number;
  /** Target number of transactions (default 60,000; met within a few percent). */
  transactions?: number;
  /** Random seed (default 0): the same seed gives the same files. */
  seed?: number;
  /** Days covered (default 365). */
  days?: number;
  /** First day, ISO date (default "2024-01-01"). */
  start?: string;
  /** Overrides of the mechanism's constants (default {@link DEFAULT_MECHANISM}). */
  mechanism?: Partial<Mechanism>;
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

/** The renewal probability of an item of quality `q` under mechanism `m`. */
export function renewalProbability(q: number, m: Mechanism = DEFAULT_MECHANISM): number {
  return 1 / (1 + Math.exp(-(m.renewBias + m.renewSlope * q)));
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
  const cats = m.cycles.length;
  // Category quality effects evenly spaced in [-1.5, 1.5], shuffled against the cycles.
  const catQ = Float64Array.from({ length: cats }, (_, c) => -1.5 + 3 * c / Math.max(cats - 1, 1));
  for (let i = cats - 1; i > 0; i--) {
    const j = r.int(i + 1);
    [catQ[i], catQ[j]] = [catQ[j], catQ[i]];
  }
  const itemCat = new Int32Array(n.items), itemCycle = new Float64Array(n.items);
  const itemQ = new Float64Array(n.items), itemDropAt = new Float64Array(n.items);
  const itemQAfter = new Float64Array(n.items), itemPrice = new Float64Array(n.items);
  const itemRating = new Float64Array(n.items), pop = new Float64Array(n.items);
  for (let i = 0; i < n.items; i++) {
    const c = itemCat[i] = r.int(cats);
    itemCycle[i] = m.cycles[c];
    itemQ[i] = catQ[c] + m.itemSpread * r.normal();
    itemRating[i] = Math.min(5, Math.max(1, 3 + 0.8 * itemQ[i] + ((m as unknown as Record<string, number>).ratingNoise ?? 0.5) * r.normal()));
    itemPrice[i] = 20 * Math.exp(0.7 * r.normal());
    pop[i] = Math.exp(0.8 * r.normal());
    const drops = r.u() < m.trendShare, at = r.u() * days, by = Math.abs(r.normal());
    itemDropAt[i] = drops ? at : Infinity;
    itemQAfter[i] = itemQ[i] - m.trendDrop * by;
  }
  const catItems = Array.from({ length: cats }, (_, c) => {
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
    for (let k = 0; k < 3; k++) userCats[3 * u + k] = r.int(cats);
  }
  const allCum = cumulative(pop);
  // deno-fmt-ignore
  return { itemCat, itemCycle, itemQ, itemDropAt, itemQAfter, itemPrice, itemRating, allCum,
    catItems, catCum, storeRegion, storeSize, periods, userSignup, userAge, userRegion, userRate,
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

interface Txns {
  user: number[];
  item: number[];
  store: number[];
  day: number[];
  quantity: number[];
}

/**
 * Runs every user's discoveries and re-purchase chains: `onboarding·rate_u`
 * discoveries (Poisson) in the user's first weeks, then one every
 * `m.discoveryDays` on average. Each user draws from their own stream, so a
 * user's history does not depend on the others'.
 */
function simulate(w: World, m: Mechanism, days: number, onboarding: number, seed: number): Txns {
  const out: Txns = { user: [], item: [], store: [], day: [], quantity: [] };
  const dueAt: number[] = [], dueItem: number[] = [], dueNew: boolean[] = [];
  for (let u = 0; u < w.userSignup.length; u++) {
    const r = new Rng((seed * 104729 + u * 2654435761 + 2) >>> 0);
    dueAt.length = dueItem.length = dueNew.length = 0;
    // Onboarding discoveries: Poisson(onboarding·rate_u) by inversion, uniform in the first weeks.
    const mean = onboarding * w.userRate[u];
    let k = 0;
    for (let p = Math.exp(-mean), c = p, x = r.u(); x > c && k < 1000; c += p *= mean / ++k);
    for (let j = 0; j < Math.max(k, 1); j++) {
      dueAt.push(w.userSignup[u] + r.u() * m.onboardingDays);
      dueItem.push(-1);
      dueNew.push(true);
    }
    dueAt.push(w.userSignup[u] + r.exp(m.discoveryDays));
    dueItem.push(-1);
    dueNew.push(false);
    for (;;) {
      let e = 0;
      for (let j = 1; j < dueAt.length; j++) if (dueAt[j] < dueAt[e]) e = j;
      const t = dueAt[e];
      if (t >= days) break;
      let i = dueItem[e];
      if (i < 0) {
        if (!dueNew[e]) dueAt[e] = t + r.exp(m.discoveryDays); // the next later discovery
        else dueAt.splice(e, 1), dueItem.splice(e, 1), dueNew.splice(e, 1);
        if (r.u() < 0.8) {
          const c = w.userCats[3 * u + r.int(3)];
          i = w.catItems[c][pick(w.catCum[c], r.u())];
        } else i = pick(w.allCum, r.u());
        if (dueItem.includes(i)) continue; // already buying it regularly
      } else {
        dueAt.splice(e, 1), dueItem.splice(e, 1), dueNew.splice(e, 1);
      }
      const s = w.userStores[2 * u + (r.u() < 0.75 ? 0 : 1)];
      const fail = r.u(), renew = r.u(), jitter = r.normal(), qty = r.u();
      if (storeBad(w, s, t) && fail < m.badFail) continue;
      out.user.push(u), out.item.push(i), out.store.push(s), out.day.push(t);
      out.quantity.push(qty < 0.7 ? 1 : qty < 0.9 ? 2 : 3);
      const q = t < w.itemDropAt[i] ? w.itemQ[i] : w.itemQAfter[i];
      if (w.itemCycle[i] > 0 && renew < renewalProbability(q, m)) {
        dueAt.push(t + w.itemCycle[i] * Math.exp(m.cycleJitter * jitter));
        dueItem.push(i);
        dueNew.push(false);
      }
    }
  }
  return out;
}

export let DEBUG_VISITS: number[][] | null = null;
export function setDebugVisits(v: number[][] | null) { DEBUG_VISITS = v; }
function simulateSat(w: World, m: Mechanism, days: number, basket: number, seed: number): Txns {
  const out: Txns = { user: [], item: [], store: [], day: [], quantity: [] };
  const mm = m as unknown as Record<string, number>;
  const soon = [mm.soonMin ?? 5, mm.soonMax ?? 25], late = [mm.lateMin ?? 55, mm.lateMax ?? 85];
  for (let u = 0; u < w.userSignup.length; u++) {
    const r = new Rng((seed * 104729 + u * 2654435761 + 2) >>> 0);
    let t = w.userSignup[u] + r.u() * m.onboardingDays;
    while (t < days) {
      // A visit: a basket of 1 + Poisson(basket·rate_u) items at one store.
      const mean = basket * w.userRate[u];
      let k = 0;
      for (let p = Math.exp(-mean), c = p, x = r.u(); x > c && k < 50; c += p *= mean / ++k);
      const s = w.userStores[2 * u + (r.u() < 0.75 ? 0 : 1)];
      const bad = storeBad(w, s, t), fail = r.u(), renew = r.u(), gap = r.u();
      let qSum = 0;
      for (let j = 0; j <= k; j++) {
        let i: number;
        if (r.u() < 0.8) {
          const c = w.userCats[3 * u + r.int(3)];
          i = w.catItems[c][pick(w.catCum[c], r.u())];
        } else i = pick(w.allCum, r.u());
        const dropped = t >= w.itemDropAt[i];
        const skip = r.u(), qty = r.u();
        if (dropped && skip < 0.6) continue; // worse items sell less
        if (bad && fail < m.badFail) continue;
        qSum += dropped ? w.itemQAfter[i] : w.itemQ[i];
        out.user.push(u), out.item.push(i), out.store.push(s), out.day.push(t + j / 1440);
        out.quantity.push(qty < 0.7 ? 1 : qty < 0.9 ? 2 : 3);
      }
      const q = qSum / (k + 1) - (bad ? 1 : 0);
      if (DEBUG_VISITS) DEBUG_VISITS.push([u, t, renewalProbability(q, m)]);
      const [lo, hi] = renew < renewalProbability(q, m) ? soon : late;
      t += lo + gap * (hi - lo);
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
  if (m.cycles.length < 1 || m.cycles.some((c) => !(c >= 0))) {
    throw new Error("mechanism.cycles must be a non-empty list of numbers of days >= 0");
  }
  const start = startMs / 1000;

  const w = makeWorld({ users, items, stores }, days, seed, m);
  // The count is about linear in the onboarding discoveries: a few proportional steps suffice.
  let onboarding = 2;
  const sim = (m as unknown as Record<string, number>).sat ? simulateSat : simulate;
  let tx = sim(w, m, days, onboarding, seed);
  for (let it = 0; it < 5 && Math.abs(tx.day.length / target - 1) > 0.005; it++) {
    onboarding *= target / Math.max(tx.day.length, 1);
    tx = sim(w, m, days, onboarding, seed);
    if (Deno.env.get("SYN_DEBUG")) console.log("calib", onboarding, tx.day.length);
  }

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
