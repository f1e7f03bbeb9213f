/**
 * `deno task bench [subsystem…]`: runs benchmarks and prints JSON lines.
 * Subsystems: core, store, sampler, features, train. With no argument, all of them.
 *
 * @module
 */

const SUITES: Record<string, () => Promise<void>> = {
  core: async () => (await import("./core.ts")).benchCore({ quick: Deno.args.includes("--quick") }),
  store: async () =>
    (await import("./store.ts")).benchStore({ quick: Deno.args.includes("--quick") }),
  sampler: async () =>
    (await import("./sampler.ts")).benchSampler({ quick: Deno.args.includes("--quick") }),
  features: async () =>
    (await import("./features.ts")).benchFeatures({ quick: Deno.args.includes("--quick") }),
  train: async () =>
    (await import("./train.ts")).benchTrain({ quick: Deno.args.includes("--quick") }),
};

const wanted = Deno.args.filter((a) => !a.startsWith("--"));
for (const name of wanted) {
  if (!(name in SUITES)) {
    console.error(
      `fanout bench: unknown suite "${name}"; choose from: ${Object.keys(SUITES).join(", ")}`,
    );
    Deno.exit(2);
  }
}
for (const name of wanted.length ? wanted : Object.keys(SUITES)) await SUITES[name]();
