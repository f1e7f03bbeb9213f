import fc from "fast-check";
import {
  constant,
  cosine,
  exponential,
  linearWarmup,
  LRScheduler,
  type Schedule,
  stepLR,
} from "./schedule.ts";

function near(a: number, b: number, what: string): void {
  if (!(Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b)))) {
    throw new Error(`${what}: ${a}, expected ${b}`);
  }
}

function values(s: Schedule, steps: number[], base = 1): number[] {
  return steps.map((t) => s(t, base));
}

Deno.test("stepLR: base · gamma^floor(t / stepSize)", () => {
  const got = values(stepLR(3, 0.5), [0, 1, 2, 3, 5, 6, 9], 0.8);
  [0.8, 0.8, 0.8, 0.4, 0.4, 0.2, 0.1].forEach((e, i) => near(got[i], e, `t${i}`));
  near(exponential(0.9)(2, 1), 0.81, "exponential");
  near(constant()(1000, 0.3), 0.3, "constant");
});

Deno.test("cosine: endpoints, midpoint, quarter, flat after T", () => {
  const s = cosine(100, 0.1);
  near(s(0, 1), 1, "t=0");
  near(s(50, 1), 0.55, "t=T/2");
  near(s(25, 1), 0.1 + 0.9 * (1 + Math.SQRT1_2) / 2, "t=T/4");
  near(s(100, 1), 0.1, "t=T");
  near(s(500, 1), 0.1, "after T");
});

Deno.test("linearWarmup then cosine", () => {
  const s = linearWarmup(4, cosine(10, 0));
  const got = values(s, [0, 1, 2, 3, 4, 9, 14, 20], 2);
  [0.5, 1, 1.5, 2, 2, 1, 0, 0].forEach((e, i) => near(got[i], e, `value ${i}`));
  near(linearWarmup(10)(99, 3), 3, "default then = constant");
});

Deno.test("schedules stay within [min, base] (property)", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 1000 }),
      fc.integer({ min: 1, max: 100 }),
      fc.integer({ min: 0, max: 5000 }),
      fc.double({ min: 1e-6, max: 1, noNaN: true }),
      (total, warm, t, base) => {
        const lr = linearWarmup(warm, cosine(total, base / 10))(t, base);
        return lr > 0 && lr <= base * (1 + 1e-12) && (t < warm || lr >= base / 10 * (1 - 1e-12));
      },
    ),
  );
});

Deno.test("LRScheduler sets the optimizer's lr for step 0, then after each step()", () => {
  const opt = { lr: 0.1 };
  const sched = new LRScheduler(opt, linearWarmup(2, stepLR(1, 0.5)));
  near(opt.lr, 0.05, "step 0");
  near(sched.step(), 0.1, "step 1");
  sched.step();
  near(opt.lr, 0.1, "step 2");
  sched.step();
  near(opt.lr, 0.05, "step 3");
  const state = sched.stateDict();
  const opt2 = { lr: 0.1 };
  const sched2 = new LRScheduler(opt2, linearWarmup(2, stepLR(1, 0.5)));
  sched2.loadStateDict(state);
  near(opt2.lr, 0.05, "restored");
  if (sched2.t !== 3) throw new Error("t not restored");
  const bad = new LRScheduler({ lr: 1 }, constant());
  let threw = false;
  try {
    new LRScheduler({ lr: 1 }, () => NaN);
  } catch (e) {
    threw = (e as Error).message.includes("learning rate NaN at step 0");
  }
  if (!threw || bad.lr !== 1) throw new Error("bad schedule not reported");
});
